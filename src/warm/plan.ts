/**
 * What a warm-up builds: scratch cargo workspaces whose members each depend on one combination
 * of registry crates (a tier entry with one feature set, a stack, a re-warm set), resolved
 * against the user's registry with entries that cannot be resolved dropped with a warning.
 * @module
 */

import { join } from "node:path";
import type { TierList } from "./tiers.ts";
import { runCargoText } from "./_cargo.ts";

/** One registry dependency of a scratch member. */
export interface MemberDep {
  name: string;
  /** A version requirement (`"1"`, `"=1.0.152"`). */
  version: string;
  features: string[];
  defaultFeatures: boolean;
  /**
   * A build dependency: compiled for the host, where resolver 2 unifies its features with the
   * proc-macros' dependencies rather than with the normal ones.
   */
  host?: boolean;
}

/** One combination of crates built together, as one project would. */
export interface WarmMember {
  /** What the member stands for, in progress lines and warnings: `serde 1 [derive]`. */
  label: string;
  deps: MemberDep[];
  /** Profiles to build this member with; the warm-up's profiles when absent. */
  profiles?: string[];
}

/** One `cargo build` of a group: its arguments and the packages whose dependencies it builds. */
export interface GroupBuild {
  label: string;
  /** Package selection arguments, e.g. `["-p", "warm-003-serde"]` or `["--workspace"]`. */
  args: string[];
  /** Workspace packages whose registry dependencies the build compiles. */
  roots: string[];
  profiles?: string[];
}

/** A directory cargo builds in, with the builds to run there. */
export interface WarmGroup {
  dir: string;
  builds: GroupBuild[];
  /** Global cargo arguments for every command in the group, e.g. `--config FILE`. */
  configArgs?: string[];
}

/**
 * The members for tiers (or a `--tier-file` list): each crate once per feature set, then each
 * stack, then (for a list marked `union`) all of its crates together.
 *
 * @example
 * ```ts
 * import { membersOfTiers } from "./plan.ts";
 * import { parseTierList } from "./tiers.ts";
 * const list = await parseTierList('[crates]\nserde = { version = "1", features = [[], ["derive"]] }');
 * console.log(membersOfTiers([list]).map((member) => member.label)); // ["serde 1", "serde 1 [derive]"]
 * ```
 */
export function membersOfTiers(lists: TierList[]): WarmMember[] {
  const members: WarmMember[] = [];
  const allCrates = lists.flatMap((list) => list.crates);
  for (const list of lists) {
    for (const entry of list.crates) {
      for (const features of entry.featureSets) {
        members.push({
          label: `${entry.name} ${entry.version}${
            features.length ? ` [${features.join(",")}]` : ""
          }`,
          deps: [{ ...entry, features }],
        });
      }
    }
    for (const stack of list.stacks) {
      const deps: MemberDep[] = [];
      for (const item of stack.crates) {
        const [spec = item, featureText = ""] = item.split("/");
        const [name, version] = spec.split("@");
        const entry = allCrates.find((candidate) =>
          candidate.name === name && (version === undefined || candidate.version === version)
        );
        const features = featureText.split(",").filter((feature) => feature !== "");
        deps.push(
          entry === undefined
            ? { name: name ?? spec, version: version ?? "*", features, defaultFeatures: true }
            : { ...entry, features },
        );
      }
      members.push({ label: `stack ${stack.name}`, deps });
    }
    if (list.union && list.crates.length > 1) {
      members.push({
        label: `${list.source.replace(/^.*\//, "")} together`,
        deps: list.crates.map((entry) => ({
          ...entry,
          features: [...new Set(entry.featureSets.flat())].sort(),
        })),
      });
    }
  }
  return members;
}

/** The package name of member `index`, a valid and readable cargo package name. */
function memberPackage(index: number, member: WarmMember): string {
  const first = member.label.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "");
  return `warm-${String(index).padStart(3, "0")}-${first.slice(0, 40)}`.replace(/-+$/, "");
}

/** Writes a scratch workspace at `dir` with one library member per entry of `members`. */
async function writeWorkspace(dir: string, members: WarmMember[]): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const names = members.map((member, index) => memberPackage(index, member));
  const root = [
    "# Written by cargo-warmup init: one member per combination of crates to warm.",
    "[workspace]",
    'resolver = "2"',
    `members = [${names.map((name) => JSON.stringify(name)).join(", ")}]`,
    "",
  ];
  await Deno.writeTextFile(join(dir, "Cargo.toml"), root.join("\n"));
  await Promise.all(members.map(async (member, index) => {
    const name = names[index]!;
    await Deno.mkdir(join(dir, name), { recursive: true });
    await Deno.writeTextFile(join(dir, name, "lib.rs"), "");
    if (member.deps.some((dep) => dep.host)) {
      await Deno.writeTextFile(join(dir, name, "build.rs"), "fn main() {}\n");
    }
    await Deno.writeTextFile(join(dir, name, "Cargo.toml"), memberManifest(name, member));
  }));
  return names;
}

function memberManifest(name: string, member: WarmMember): string {
  const lines = [
    `# ${member.label}`,
    "[package]",
    `name = "${name}"`,
    'version = "0.0.0"',
    'edition = "2021"',
    "publish = false",
    "",
    ...(member.deps.some((dep) => dep.host) ? ['build = "build.rs"'] : []),
    "",
    "[lib]",
    'path = "lib.rs"',
    "",
  ];
  const normal = member.deps.filter((dep) => !dep.host);
  const host = member.deps.filter((dep) => dep.host);
  if (normal.length > 0) lines.push("[dependencies]", ...dependencyLines(normal), "");
  if (host.length > 0) lines.push("[build-dependencies]", ...dependencyLines(host), "");
  return lines.join("\n");
}

function dependencyLines(deps: MemberDep[]): string[] {
  const lines: string[] = [];
  deps.forEach((dep, index) => {
    const fields = [
      `package = ${JSON.stringify(dep.name)}`,
      `version = ${JSON.stringify(dep.version)}`,
      `default-features = ${dep.defaultFeatures}`,
      `features = [${dep.features.map((feature) => JSON.stringify(feature)).join(", ")}]`,
    ];
    lines.push(`d${index}_${dep.name.replace(/-/g, "_")} = { ${fields.join(", ")} }`);
  });
  return lines;
}

/** A member that could not be resolved, with cargo's reason. */
export interface Skipped {
  label: string;
  reason: string;
}

/**
 * Resolves `members` in a scratch workspace under `dir`, dropping those the registry cannot
 * satisfy. Returns the groups to build (one workspace, or one per member when they only resolve
 * apart) and what was skipped.
 */
export async function resolveMembers(
  dir: string,
  members: WarmMember[],
  env: Record<string, string>,
  onCheck: (done: number, total: number) => void = () => {},
): Promise<{ groups: WarmGroup[]; skipped: Skipped[] }> {
  const together = join(dir, "warm");
  if (await tryResolve(together, members, env) === undefined) {
    return { groups: [groupOf(together, members)], skipped: [] };
  }
  // Find the members that fail on their own, a few cargo processes at a time.
  const skipped: Skipped[] = [];
  const ok: WarmMember[] = [];
  const results: Array<string | undefined> = new Array(members.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < members.length) {
      const index = next++;
      results[index] = await tryResolve(join(dir, `check-${index}`), [members[index]!], env);
      await Deno.remove(join(dir, `check-${index}`), { recursive: true }).catch(() => {});
      onCheck(++done, members.length);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  // A crate that fails on its own is left out of the stacks and unions that name it, which are
  // then checked again without it.
  const missing = new Set<string>();
  members.forEach((member, index) => {
    const dep = member.deps[0];
    if (results[index] !== undefined && member.deps.length === 1 && dep) {
      missing.add(`${dep.name}@${dep.version}`);
    }
  });
  for (const [index, member] of members.entries()) {
    let reason = results[index];
    let kept = member;
    if (reason !== undefined && member.deps.length > 1) {
      const deps = member.deps.filter((dep) => !missing.has(`${dep.name}@${dep.version}`));
      if (deps.length > 0 && deps.length < member.deps.length) {
        kept = { ...member, deps };
        reason = await tryResolve(join(dir, `retry-${index}`), [kept], env);
        await Deno.remove(join(dir, `retry-${index}`), { recursive: true }).catch(() => {});
      }
    }
    if (reason === undefined) ok.push(kept);
    else skipped.push({ label: member.label, reason });
  }
  if (ok.length === 0) return { groups: [], skipped };
  await Deno.remove(together, { recursive: true }).catch(() => {});
  if (await tryResolve(together, ok, env) === undefined) {
    return { groups: [groupOf(together, ok)], skipped };
  }
  // Each resolves alone but not all together (say two crates link the same native library):
  // build each member in a workspace of its own.
  const groups: WarmGroup[] = [];
  for (const [index, member] of ok.entries()) {
    const single = join(dir, `alone-${index}`);
    if (await tryResolve(single, [member], env) === undefined) {
      groups.push(groupOf(single, [member]));
    }
  }
  return { groups, skipped };
}

async function tryResolve(
  dir: string,
  members: WarmMember[],
  env: Record<string, string>,
): Promise<string | undefined> {
  await writeWorkspace(dir, members);
  const result = await runCargoText(["generate-lockfile"], { cwd: dir, env });
  if (result.code === 0) return undefined;
  return cargoReason(result.stderr);
}

function groupOf(dir: string, members: WarmMember[]): WarmGroup {
  const names = members.map((member, index) => memberPackage(index, member));
  return {
    dir,
    builds: members.map((member, index) => ({
      label: member.label,
      args: ["-p", names[index]!],
      roots: [names[index]!],
      ...(member.profiles ? { profiles: member.profiles } : {}),
    })),
  };
}

/** The informative line of a cargo error: the first `error:` line, or the last line. */
export function cargoReason(stderr: string): string {
  const lines = stderr.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  const error = lines.find((line) => line.startsWith("error:"));
  return (error ?? lines.at(-1) ?? "cargo failed").replace(/^error:\s*/, "");
}
