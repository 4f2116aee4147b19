/**
 * Builds warm groups through the dispatcher so every registry unit lands in the cache: one
 * `cargo build` per member and profile, its JSON messages counted into the progress line, its
 * dispatch log read back to tell what was served and what was compiled.
 * @module
 */

import { join } from "node:path";
import { runCargoText } from "./_cargo.ts";
import type { GroupBuild, WarmGroup } from "./plan.ts";
import type { ProgressReporter } from "./progress.ts";
import { cargoReason } from "./plan.ts";
import { queryRustcVersion } from "../rustc_version.ts";
import { WARMING_ENV } from "../config/config.ts";

/** How the warm-up went. */
export interface BuildOutcome {
  /** Registry units cargo reported (fresh ones included). */
  units: number;
  hits: number;
  misses: number;
  /** Cache keys of every registry unit the builds went through. */
  keys: Set<string>;
  failed: Array<{ label: string; profile: string; reason: string }>;
}

/** Inputs of {@linkcode buildGroups}. */
export interface BuildOptions {
  groups: WarmGroup[];
  profiles: string[];
  /** The program to set as RUSTC_WRAPPER. */
  wrapper: string;
  cacheDir: string;
  env: Record<string, string>;
  /** The dispatch log to use: the user's CARGO_WARMUP_LOG, or a private one. */
  dispatchLog: string;
  progress: ProgressReporter;
}

/** Counts the units of every build, then runs them, reporting progress. */
export async function buildGroups(options: BuildOptions): Promise<BuildOutcome> {
  const { progress } = options;
  const env = {
    ...options.env,
    RUSTC_WRAPPER: options.wrapper,
    CARGO_WARMUP_DIR: options.cacheDir,
    CARGO_WARMUP_LOG: options.dispatchLog,
    // The warm-up's scratch projects are not the user's: not remembered, no toolchain notice.
    [WARMING_ENV]: "1",
    // Their own crates are placeholders (empty sources, a re-warmed project's copied manifests):
    // entries of them would never be served.
    CARGO_WARMUP_WORKSPACE: "0",
  };
  const plans: Array<{ group: WarmGroup; build: GroupBuild; profile: string; units: number }> = [];
  for (const group of options.groups) {
    const counts = await unitCounts(group, env);
    for (const profile of options.profiles) {
      for (const build of group.builds) {
        if (build.profiles && !build.profiles.includes(profile)) continue;
        plans.push({ group, build, profile, units: counts.get(build) ?? 0 });
      }
    }
  }
  const total = plans.reduce((sum, plan) => sum + plan.units, 0);
  progress.update({ phase: "building", total, done: 0, current: "" });

  const logStart = await fileSize(options.dispatchLog);
  const failed: BuildOutcome["failed"] = [];
  let units = 0;
  let finished = 0;
  for (const plan of plans) {
    let seen = 0;
    const result = await runBuild(plan.group, plan.build.args, plan.profile, env, {
      onUnit: () => {
        seen++;
        progress.update({ done: finished + Math.min(seen, plan.units) });
      },
      onCompiling: (crate) => progress.update({ current: `${crate} (${plan.profile})` }),
    });
    units += seen;
    finished += plan.units;
    progress.update({ done: finished });
    if (result.code !== 0) {
      const reason = cargoReason(result.stderr);
      failed.push({ label: plan.build.label, profile: plan.profile, reason });
      progress.note(`warning: could not warm ${plan.build.label} (${plan.profile}): ${reason}`);
    }
    progress.milestone();
  }

  const outcome: BuildOutcome = { units, hits: 0, misses: 0, keys: new Set(), failed };
  for (const entry of await readLogFrom(options.dispatchLog, logStart)) {
    // Build scripts probe the compiler with test files that may not compile (anyhow does);
    // those are not units, and nothing is stored for them.
    if (entry.reason === "compile failed") continue;
    if (typeof entry.key === "string") outcome.keys.add(entry.key);
    if (entry.outcome === "hit") outcome.hits++;
    if (entry.outcome === "miss") outcome.misses++;
  }
  return outcome;
}

/** Registry units per build: the packages its roots depend on, plus their build scripts. */
async function unitCounts(group: WarmGroup, env: Record<string, string>) {
  const counts = new Map<GroupBuild, number>();
  const host = await hostTriple(env);
  const metadata = await runCargoText(
    [
      ...group.configArgs ?? [],
      "metadata",
      "--format-version",
      "1",
      ...(host ? ["--filter-platform", host] : []),
    ],
    { cwd: group.dir, env },
  );
  if (metadata.code !== 0) return counts;
  const data = JSON.parse(metadata.stdout) as CargoMetadata;
  const packages = new Map(data.packages.map((pkg) => [pkg.id, pkg]));
  const nodes = new Map(data.resolve?.nodes.map((node) => [node.id, node]) ?? []);
  const byName = new Map(
    data.packages.filter((pkg) => pkg.source === null).map((pkg) => [
      pkg.name,
      pkg.id,
    ]),
  );
  for (const build of group.builds) {
    const seen = new Set<string>();
    const queue = build.roots.map((root) => byName.get(root)).filter((id) => id !== undefined);
    while (queue.length > 0) {
      const id = queue.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      for (const dep of nodes.get(id)?.deps ?? []) {
        if (dep.dep_kinds.some((kind) => kind.kind !== "dev")) queue.push(dep.pkg);
      }
    }
    let units = 0;
    for (const id of seen) {
      const pkg = packages.get(id);
      if (!pkg || pkg.source === null) continue;
      units += 1 + (pkg.targets.some((target) => target.kind.includes("custom-build")) ? 1 : 0);
    }
    counts.set(build, units);
  }
  return counts;
}

interface CargoMetadata {
  packages: Array<{
    id: string;
    name: string;
    source: string | null;
    targets: Array<{ kind: string[] }>;
  }>;
  resolve: {
    nodes: Array<
      { id: string; deps: Array<{ pkg: string; dep_kinds: Array<{ kind: string | null }> }> }
    >;
  } | null;
}

async function hostTriple(env: Record<string, string>): Promise<string | undefined> {
  const { host } = await queryRustcVersion(env);
  return host === "unknown" ? undefined : host;
}

/** Runs one `cargo build`, calling back per registry artefact and per "Compiling" line. */
async function runBuild(
  group: WarmGroup,
  selection: string[],
  profile: string,
  env: Record<string, string>,
  on: { onUnit: () => void; onCompiling: (crate: string) => void },
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(env.CARGO || "cargo", {
    args: [
      ...group.configArgs ?? [],
      "build",
      ...selection,
      "--profile",
      profile,
      "--message-format=json-render-diagnostics",
      "--target-dir",
      join(group.dir, "target"),
    ],
    cwd: group.dir,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderrTail: string[] = [];
  const readStdout = forEachLine(child.stdout, (line) => {
    if (!line.startsWith("{")) return;
    try {
      const message = JSON.parse(line);
      const registry = typeof message.package_id === "string" &&
        !message.package_id.startsWith("path+");
      if (message.reason === "compiler-artifact" && registry) on.onUnit();
    } catch {
      // not a message
    }
  });
  const readStderr = forEachLine(child.stderr, (line) => {
    // Workspace stubs print their path after the version; only registry crates are news.
    const compiling = /^\s*Compiling (\S+ v\S+)\s*$/.exec(line);
    if (compiling) on.onCompiling(compiling[1]!);
    stderrTail.push(line);
    if (stderrTail.length > 40) stderrTail.shift();
  });
  const [status] = await Promise.all([child.status, readStdout, readStderr]);
  return { code: status.code, stderr: stderrTail.join("\n") };
}

async function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  }
  if (pending) onLine(pending);
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

async function readLogFrom(
  path: string,
  offset: number,
): Promise<Array<{ key?: unknown; outcome?: unknown; reason?: unknown }>> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return [];
  }
  return new TextDecoder().decode(bytes.subarray(offset)).split("\n").flatMap((line) => {
    try {
      return line.trim() ? [JSON.parse(line)] : [];
    } catch {
      return [];
    }
  });
}
