/**
 * Warming one project's registry dependencies (`init --manifest` / `--lockfile`) without
 * building the project itself: its manifests and lockfile are copied into a scratch directory
 * with every target replaced by an empty stub, so cargo resolves and unifies features exactly as
 * in the project, compiles every registry crate, and spends next to nothing on the stubs.
 * @module
 */

import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { runCargoText } from "./_cargo.ts";
import { cargoReason, type GroupBuild, type WarmGroup, type WarmMember } from "./plan.ts";
import { cargoHomeOf } from "../config/cargo_home.ts";

/** Beyond this many members, only the default selection and `--workspace` are warmed. */
const MAX_PER_MEMBER_BUILDS = 20;

interface PackageInfo {
  id: string;
  name: string;
  manifest_path: string;
  targets: Array<{ name: string; kind: string[]; src_path: string }>;
  dependencies: Array<{ path?: string }>;
}

/**
 * Copies the project of `manifestPath` as stubs into `scratch` and returns the group to build:
 * what `cargo build` selects, `--workspace` when that is more, and each member alone.
 */
export async function stubProject(
  manifestPath: string,
  lockfile: string | undefined,
  scratch: string,
  env: Record<string, string>,
): Promise<WarmGroup> {
  const manifest = resolve(manifestPath);
  const metadata = await runCargoText(
    ["metadata", "--format-version", "1", "--no-deps", "--manifest-path", manifest],
    { cwd: dirname(manifest), env },
  );
  if (metadata.code !== 0) {
    throw new Error(`Cannot read the project "${manifest}": ${cargoReason(metadata.stderr)}`);
  }
  const data = JSON.parse(metadata.stdout) as {
    packages: PackageInfo[];
    workspace_members: string[];
    workspace_default_members?: string[];
    workspace_root: string;
  };
  const memberIds = new Set(data.workspace_members);
  const defaultIds = new Set(data.workspace_default_members ?? data.workspace_members);
  const packages = new Map<string, PackageInfo>();
  for (const pkg of data.packages) packages.set(pkg.manifest_path, pkg);
  await addPathDependencies(packages, env);

  const workspaceRoot = data.workspace_root;
  const dirs = [workspaceRoot, ...[...packages.keys()].map((path) => dirname(path))];
  const commonRoot = dirs.reduce(commonAncestor);
  const mirror = (path: string) => join(scratch, "project", relative(commonRoot, path));

  const { parse, stringify } = await import("smol-toml");
  const rootManifest = join(workspaceRoot, "Cargo.toml");
  if (![...packages.keys()].includes(rootManifest)) {
    await Deno.mkdir(mirror(workspaceRoot), { recursive: true });
    await Deno.copyFile(rootManifest, mirror(rootManifest));
  }
  for (const pkg of packages.values()) {
    const document = parse(await Deno.readTextFile(pkg.manifest_path)) as Record<string, unknown>;
    const stubbed = stubManifest(document, pkg);
    await Deno.mkdir(dirname(mirror(pkg.manifest_path)), { recursive: true });
    await Deno.writeTextFile(mirror(pkg.manifest_path), stringify(stubbed) + "\n");
    for (const target of stubTargets(pkg)) {
      await Deno.mkdir(dirname(mirror(target.path)), { recursive: true });
      await Deno.writeTextFile(mirror(target.path), target.bin ? "fn main() {}\n" : "");
    }
  }
  const lock = lockfile ?? join(workspaceRoot, "Cargo.lock");
  await Deno.copyFile(lock, join(mirror(workspaceRoot), "Cargo.lock")).catch((error) => {
    if (lockfile !== undefined) throw new Error(`Cannot read lockfile "${lockfile}": ${error}`);
  });
  for (const name of ["rust-toolchain.toml", "rust-toolchain"]) {
    await Deno.copyFile(join(workspaceRoot, name), join(mirror(workspaceRoot), name)).catch(
      () => {},
    );
  }

  const names = (ids: Set<string>) =>
    data.packages.filter((pkg) => ids.has(pkg.id)).map((pkg) => pkg.name);
  const defaults = names(defaultIds);
  const members = names(memberIds);
  const builds: GroupBuild[] = [{ label: "the project", args: [], roots: defaults }];
  if (members.length > defaults.length) {
    builds.push({ label: "the project (--workspace)", args: ["--workspace"], roots: members });
  }
  if (members.length > 1 && members.length <= MAX_PER_MEMBER_BUILDS) {
    for (const member of members) {
      builds.push({ label: `-p ${member}`, args: ["-p", member], roots: [member] });
    }
  }
  return { dir: mirror(workspaceRoot), builds, configArgs: await configArgs(workspaceRoot, env) };
}

/**
 * The members to warm for a lockfile with no manifest beside it: every registry package at its
 * locked version with default features (feature choices are not in a lockfile).
 */
export async function membersOfLockfile(path: string): Promise<WarmMember[]> {
  const { parse } = await import("smol-toml");
  const document = parse(await Deno.readTextFile(path)) as {
    package?: Array<{ name: string; version: string; source?: string }>;
  };
  const deps = (document.package ?? [])
    .filter((pkg) => /^(registry|sparse)\+/.test(pkg.source ?? ""))
    .map((pkg) => ({
      name: pkg.name,
      version: `=${pkg.version}`,
      features: [],
      defaultFeatures: true,
    }));
  return deps.length === 0 ? [] : [{ label: `registry crates of ${path}`, deps }];
}

/** Path dependencies outside the workspace are stubbed too, so their deps resolve the same. */
async function addPathDependencies(
  packages: Map<string, PackageInfo>,
  env: Record<string, string>,
) {
  const queue = [...packages.values()];
  while (queue.length > 0) {
    const pkg = queue.pop()!;
    for (const dep of pkg.dependencies) {
      if (dep.path === undefined) continue;
      const manifest = join(dep.path, "Cargo.toml");
      if (packages.has(manifest)) continue;
      const metadata = await runCargoText(
        ["metadata", "--format-version", "1", "--no-deps", "--manifest-path", manifest],
        { cwd: dep.path, env },
      );
      if (metadata.code !== 0) continue;
      const found = (JSON.parse(metadata.stdout) as { packages: PackageInfo[] }).packages
        .find((candidate) => candidate.manifest_path === manifest);
      if (found) {
        packages.set(manifest, found);
        queue.push(found);
      }
    }
  }
}

/** The manifest with build scripts, examples, tests and benches gone and targets on stubs. */
function stubManifest(document: Record<string, unknown>, pkg: PackageInfo) {
  const dir = dirname(pkg.manifest_path);
  const packageTable = { ...(document.package as Record<string, unknown> ?? {}) };
  packageTable.build = false;
  delete packageTable.links;
  for (const auto of ["autobins", "autoexamples", "autotests", "autobenches", "autolib"]) {
    packageTable[auto] = false;
  }
  const result: Record<string, unknown> = { ...document, package: packageTable };
  for (const section of ["example", "test", "bench", "bin", "lib"]) delete result[section];
  const lib = pkg.targets.find((target) => target.kind.some((kind) => LIB_KINDS.has(kind)));
  if (lib) {
    result.lib = {
      ...(document.lib as Record<string, unknown> ?? {}),
      path: relative(dir, lib.src_path),
    };
  }
  const bins = pkg.targets.filter((target) => target.kind.includes("bin"));
  if (bins.length > 0) {
    const declared = (document.bin as Array<Record<string, unknown>> | undefined) ?? [];
    result.bin = bins.map((bin) => ({
      ...(declared.find((entry) => entry.name === bin.name) ?? {}),
      name: bin.name,
      path: relative(dir, bin.src_path),
    }));
  }
  return result;
}

const LIB_KINDS = new Set(["lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro"]);

function stubTargets(pkg: PackageInfo): Array<{ path: string; bin: boolean }> {
  return pkg.targets
    .filter((target) => target.kind.some((kind) => LIB_KINDS.has(kind) || kind === "bin"))
    .map((target) => ({ path: target.src_path, bin: target.kind.includes("bin") }));
}

/** `--config FILE` for the project's own cargo config files, which the scratch copy lacks. */
async function configArgs(workspaceRoot: string, env: Record<string, string>): Promise<string[]> {
  const home = cargoHomeOf(env);
  const args: string[] = [];
  for (let dir = workspaceRoot;; dir = dirname(dir)) {
    if (resolve(dir, ".cargo") !== resolve(home)) {
      for (const name of ["config.toml", "config"]) {
        const path = join(dir, ".cargo", name);
        if (await Deno.stat(path).then(() => true, () => false)) {
          // Closer files win, as in cargo's own discovery; --config files given first win.
          args.push("--config", path);
          break;
        }
      }
    }
    if (dirname(dir) === dir) break;
  }
  return args;
}

function commonAncestor(a: string, b: string): string {
  const left = a.split(sep);
  const right = b.split(sep);
  let shared = 0;
  while (shared < left.length && left[shared] === right[shared]) shared++;
  const joined = left.slice(0, shared).join(sep);
  return joined === "" && isAbsolute(a) ? sep : joined;
}
