/**
 * What differs between two recipes (the inputs two cache keys hashed), named as a user knows
 * them: the rustc release, a feature, a `-C` flag, an environment value, the linker, a
 * dependency. A dependency whose artefact differs is returned as such, for `explain` to follow
 * down to that dependency's own miss.
 * @module
 */

/** One input that differs. */
export interface Difference {
  /** What a user reads: "feature `span-locations` added". */
  text: string;
  /** Set when only a dependency's artefact differs: its `--extern` name. */
  dependency?: string;
}

type Inputs = Record<string, unknown>;

/** Fields compared by a rule of their own; every other field is compared as a whole. */
const RULES: Record<string, (now: unknown, then: unknown) => Difference[]> = {
  rustc: (now, then) => [{ text: `rustc ${releaseOf(then)} → ${releaseOf(now)}` }],
  target: (now, then) => [{ text: `target ${String(then)} → ${String(now)}` }],
  args: (now, then) => listChanges(now, then, "flag"),
  unorderedArgs: (now, then) => listChanges(now, then, "flag"),
  env: (now, then) => envChanges(now, then),
  externs: (now, then) => externChanges(now, then),
  linker: () => [{ text: "linker or C library differs (a linked output)" }],
  nativeCpu: () => [{ text: "what -C target-cpu=native means on this machine differs" }],
  source: (now, then) => [{ text: `source ${String(then)} → ${String(now)}` }],
  binary: () => [{ text: "the build script's binary differs", dependency: "build script" }],
  compilers: () => [{ text: "the C/C++ compiler or archiver differs" }],
  cToolchain: (now, then) => envChanges(now, then),
  libc: () => [{ text: "the C library differs" }],
  buildScript: () => [{ text: "what the package's build script left (OUT_DIR, watched files)" }],
  bundledLibraries: () => [{ text: "a static library the build script left differs" }],
  targetFiles: () => [{ text: "a library in another package's build output (OUT_DIR) differs" }],
};

/**
 * The inputs of `now` (a miss) that differ from `then` (a stored entry), in recipe order.
 *
 * @example
 * ```ts
 * import { differencesOf } from "./recipe_diff.ts";
 * const then = { unorderedArgs: ['--cfg feature="std"'], externs: [["", "log", "aa"]] };
 * const now = { unorderedArgs: ['--cfg feature="std"', '--cfg feature="serde"'], externs: [["", "log", "bb"]] };
 * console.log(differencesOf(now, then));
 * // [{ text: "feature `serde` added" }, { text: "dependency log differs", dependency: "log" }]
 * ```
 */
export function differencesOf(now: Inputs, then: Inputs): Difference[] {
  const differences: Difference[] = [];
  const fields = new Set([...Object.keys(now), ...Object.keys(then)]);
  for (const field of fields) {
    if (field === "format") continue;
    const a = now[field];
    const b = then[field];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    const rule = RULES[field];
    const found = rule ? rule(a, b) : [{ text: `${field} ${brief(b)} → ${brief(a)}` }];
    // A rule that sees no difference its way still leaves one.
    differences.push(...(found.length > 0 ? found : [{ text: `${field} differs` }]));
  }
  if (now.format !== then.format) {
    differences.push({ text: "stored by another version of cargo-warmup (key format)" });
  }
  return differences;
}

/** `rustc 1.95.0 (…)` from a `rustc -vV` identity. */
function releaseOf(identity: unknown): string {
  const text = String(identity);
  return /^release: (.+)$/m.exec(text)?.[1] ?? /^rustc (\S+)/.exec(text)?.[1] ?? brief(text);
}

/** Items added and removed between two lists of flags; features by name. */
function listChanges(now: unknown, then: unknown, what: string): Difference[] {
  const before = countsOf(then);
  const after = countsOf(now);
  const changes: Difference[] = [];
  for (const [item, count] of after) {
    if ((before.get(item) ?? 0) < count) changes.push({ text: `${nameOf(item, what)} added` });
  }
  for (const [item, count] of before) {
    if ((after.get(item) ?? 0) < count) changes.push({ text: `${nameOf(item, what)} removed` });
  }
  return changes;
}

function nameOf(item: string, what: string): string {
  const feature = /^--cfg feature="(.*)"$/.exec(item);
  return feature ? `feature \`${feature[1]}\`` : `${what} \`${item}\``;
}

function countsOf(list: unknown): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of Array.isArray(list) ? list : []) {
    counts.set(String(item), (counts.get(String(item)) ?? 0) + 1);
  }
  return counts;
}

/**
 * `NAME=value` lists compared by name. A build-script run sees features as `CARGO_FEATURE_<NAME>`
 * (and all of them again in `CARGO_CFG_FEATURE`): those are named as the feature.
 */
function envChanges(now: unknown, then: unknown): Difference[] {
  const before = variables(then);
  const after = variables(now);
  const changes: Difference[] = [];
  for (const [name, value] of after) {
    const old = before.get(name);
    if (name === "CARGO_CFG_FEATURE") continue;
    if (old === undefined) {
      changes.push({ text: featureOf(name, "added") ?? `env ${name} set to ${brief(value)}` });
    } else if (old !== value) changes.push({ text: `env ${name} ${brief(old)} → ${brief(value)}` });
  }
  for (const name of before.keys()) {
    if (!after.has(name) && name !== "CARGO_CFG_FEATURE") {
      changes.push({ text: featureOf(name, "removed") ?? `env ${name} unset` });
    }
  }
  return changes;
}

/** `feature \`span-locations\` added` for `CARGO_FEATURE_SPAN_LOCATIONS`. */
function featureOf(variable: string, change: string): string | undefined {
  const feature = /^CARGO_FEATURE_(.+)$/.exec(variable)?.[1];
  return feature && `feature \`${feature.toLowerCase().replaceAll("_", "-")}\` ${change}`;
}

function variables(list: unknown): Map<string, string> {
  const map = new Map<string, string>();
  for (const item of Array.isArray(list) ? list : []) {
    const text = String(item);
    const eq = text.indexOf("=");
    map.set(eq === -1 ? text : text.slice(0, eq), eq === -1 ? "" : text.slice(eq + 1));
  }
  return map;
}

/** `[options, name, digest]` lists compared by name. */
function externChanges(now: unknown, then: unknown): Difference[] {
  const before = externsByName(then);
  const after = externsByName(now);
  const changes: Difference[] = [];
  for (const [name, extern] of after) {
    const old = before.get(name);
    if (old === undefined) changes.push({ text: `dependency ${name} added` });
    else if (old !== extern) changes.push({ text: `dependency ${name} differs`, dependency: name });
  }
  for (const name of before.keys()) {
    if (!after.has(name)) changes.push({ text: `dependency ${name} removed` });
  }
  return changes;
}

function externsByName(list: unknown): Map<string, string> {
  const map = new Map<string, string>();
  for (const item of Array.isArray(list) ? list : []) {
    if (Array.isArray(item)) map.set(String(item[1]), JSON.stringify(item));
  }
  return map;
}

/** A value short enough for a line. */
function brief(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? "(none)";
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}
