/**
 * The projects builds came from, remembered so that `init --rewarm` can rebuild their whole
 * dependency graphs through cargo after a toolchain change: cargo then decides host and target
 * units, profiles and feature unification exactly as the project's own build does.
 *
 * Each project (by workspace root) keeps, under `<cache>/warm/projects/<id>/`, a `project.json`
 * (root, the cargo command's selection and feature flags, profile, when and with which rustc it
 * was last built) and a `tree/` with copies of its lockfile, manifests, toolchain file and
 * `.cargo/config.toml`, plus empty files where its targets are, so a deleted worktree can still be
 * re-warmed. The most recent `[warmup] projects` (default 20) are kept.
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";
import { sha256Hex } from "../digest.ts";
import { isFile } from "../stat_checks.ts";
import { workspaceRootFrom } from "../workspace_root.ts";
import { WARMING_ENV } from "../config/config.ts";
import { warmDir } from "./warm_dir.ts";
import { writeFileAtomicSync } from "../write_atomic.ts";

/** What is remembered of one project. */
export interface ProjectRecord {
  /** The workspace root (where its Cargo.lock is). */
  root: string;
  /** cargo's package selection, feature and target flags, as given (`-p server --features x`). */
  args: string[];
  /** The profile it was built with (`dev`, `release` or a custom one). */
  profile: string;
  /** The build (cargo's pid) that last recorded it: a build records its project once. */
  buildId: string;
  lastUsed: string;
  /** The rustc release of that build. */
  rustc: string;
}

/** A remembered project and where its copied tree is. */
export interface RecordedProject extends ProjectRecord {
  tree: string;
}

/** Beyond this many manifests (or this deep), a tree is not worth copying on a build. */
const MAX_MANIFESTS = 300;
const MAX_DEPTH = 6;
/** cargo flags that take a value and select what is built. */
const SELECTION_WITH_VALUE = new Set(["-p", "--package", "-F", "--features", "--target"]);
const SELECTION_SWITCHES = new Set([
  "--workspace",
  "--all",
  "--all-features",
  "--no-default-features",
  "--lib",
  "--bins",
]);
/** cargo options before the subcommand that take a value. */
const GLOBAL_WITH_VALUE = new Set(["--config", "-Z", "-C", "--color"]);

/** Where project records live. */
function projectsDir(cacheDir: string): string {
  return join(warmDir(cacheDir), "projects");
}

/**
 * Records the project of the build `buildId` (cargo's pid; its command line and working
 * directory come from /proc), once per build; keeps the newest `limit`. Never throws: a project
 * that cannot be recorded is only not re-warmed.
 */
export function recordProjectOfBuild(
  cacheDir: string,
  build: {
    buildId: string;
    cargoCwd: string;
    env: Record<string, string>;
    /** cargo's arguments after the program name; default: read from /proc. */
    cargoArgs?: string[];
  },
  rustcRelease: string,
  limit: number,
): void {
  if (limit === 0 || build.env[WARMING_ENV]) return;
  try {
    const command = build.cargoArgs
      ? parseCargoCommand(build.cargoArgs)
      : cargoCommandOf(build.buildId);
    if (command === undefined) return;
    const start = command.manifestPath
      ? dirname(resolve(build.cargoCwd, command.manifestPath))
      : build.cargoCwd;
    const root = workspaceRootFrom(start);
    if (root === undefined) return;
    const dir = join(projectsDir(cacheDir), sha256Hex(root).slice(0, 16));
    const previous = readRecord(dir);
    if (previous?.buildId === build.buildId) return;
    const record: ProjectRecord = {
      root,
      args: command.args,
      profile: command.profile,
      buildId: build.buildId,
      lastUsed: new Date().toISOString(),
      rustc: rustcRelease,
    };
    writeTree(root, dir);
    writeFileAtomicSync(join(dir, "project.json"), JSON.stringify(record) + "\n");
    if (previous === undefined) pruneProjects(cacheDir, limit);
  } catch {
    // Remembering is a convenience for a later re-warm; the build goes on either way.
  }
}

/** The remembered projects, most recently built first. */
export function recordedProjects(cacheDir: string): RecordedProject[] {
  const projects: RecordedProject[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(projectsDir(cacheDir))];
  } catch {
    return [];
  }
  for (const entry of entries) {
    const dir = join(projectsDir(cacheDir), entry.name);
    const record = readRecord(dir);
    if (record) projects.push({ ...record, tree: join(dir, "tree") });
  }
  return projects.sort((a, b) => b.lastUsed.localeCompare(a.lastUsed));
}

/** The cargo command of process `pid`: its selection flags, profile and manifest path. */
export function cargoCommandOf(
  pid: string,
): { args: string[]; profile: string; manifestPath?: string } | undefined {
  let argv: string[];
  try {
    argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter((arg) => arg !== "");
  } catch {
    return undefined;
  }
  return parseCargoCommand(argv.slice(1));
}

/**
 * Reads the arguments of a cargo command line (after the program name): what it selects and
 * with which profile, or undefined when it is not a build-like command.
 *
 * @example
 * ```ts
 * import { parseCargoCommand } from "./project_graphs.ts";
 * const command = parseCargoCommand(["build", "--release", "-p", "server", "--locked"]);
 * console.log(command); // { args: ["-p", "server"], profile: "release" }
 * ```
 */
export function parseCargoCommand(
  args: string[],
): { args: string[]; profile: string; manifestPath?: string } | undefined {
  let index = 0;
  while (index < args.length && args[index]!.startsWith("-")) {
    const [flag] = args[index]!.split("=", 1);
    index += GLOBAL_WITH_VALUE.has(flag!) && !args[index]!.includes("=") ? 2 : 1;
  }
  const subcommand = args[index];
  // `run` and `test` build the same library units as `build`; `check` and `clippy` emit only
  // metadata, a different unit each: re-warming those is left to their own next build.
  if (!["build", "b", "run", "r", "test", "t", "bench", "install"].includes(subcommand ?? "")) {
    return undefined;
  }
  const selection: string[] = [];
  let profile = subcommand === "bench" || subcommand === "install" ? "release" : "dev";
  let manifestPath: string | undefined;
  for (let i = index + 1; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") break;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq !== -1 ? arg.slice(0, eq) : arg;
    const value = () => (flag !== arg ? arg.slice(eq + 1) : args[++i]);
    if (flag === "--release" || flag === "-r") profile = "release";
    else if (flag === "--profile") profile = value() ?? profile;
    else if (flag === "--manifest-path") manifestPath = value();
    else if (SELECTION_SWITCHES.has(flag)) selection.push(flag);
    else if (SELECTION_WITH_VALUE.has(flag)) {
      const given = value();
      if (given !== undefined) selection.push(flag, given);
    }
  }
  return { args: selection, profile, ...(manifestPath ? { manifestPath } : {}) };
}

function readRecord(dir: string): ProjectRecord | undefined {
  try {
    const record = JSON.parse(Deno.readTextFileSync(join(dir, "project.json")));
    const valid = typeof record.root === "string" && Array.isArray(record.args) &&
      record.args.every((arg: unknown) => typeof arg === "string") &&
      typeof record.profile === "string" && typeof record.lastUsed === "string";
    return valid ? record as ProjectRecord : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Copies what cargo needs to resolve and build the project's graph into `dir/tree` (replacing
 * the previous copy): the lockfile, toolchain files and project config of the root, every
 * manifest below it, and an empty file where each manifest's targets are.
 */
function writeTree(root: string, dir: string): void {
  const fresh = join(dir, `tree.${crypto.randomUUID()}`);
  const copy = (path: string) => {
    const target = join(fresh, relative(root, path));
    Deno.mkdirSync(dirname(target), { recursive: true });
    Deno.copyFileSync(path, target);
  };
  const placeholder = (path: string) => {
    const target = join(fresh, relative(root, path));
    Deno.mkdirSync(dirname(target), { recursive: true });
    Deno.writeTextFileSync(target, "");
  };
  Deno.mkdirSync(fresh, { recursive: true });
  try {
    for (
      const name of ["Cargo.lock", "rust-toolchain", "rust-toolchain.toml", ".cargo/config.toml"]
    ) {
      if (isFile(join(root, name))) copy(join(root, name));
    }
    for (const manifest of manifestsUnder(root)) {
      copy(manifest);
      for (const target of targetFiles(manifest)) placeholder(target);
    }
    try {
      Deno.removeSync(join(dir, "tree"), { recursive: true });
    } catch {
      // the first record of this project
    }
    Deno.renameSync(fresh, join(dir, "tree"));
  } catch (error) {
    Deno.removeSync(fresh, { recursive: true });
    throw error;
  }
}

/** Every Cargo.toml under `root`, build output and hidden directories left out; bounded. */
function manifestsUnder(root: string): string[] {
  const found: string[] = [];
  const visit = (dir: string, depth: number) => {
    if (depth > MAX_DEPTH) return;
    const entries = [...Deno.readDirSync(dir)];
    if (entries.some((entry) => entry.isFile && entry.name === "Cargo.toml")) {
      found.push(join(dir, "Cargo.toml"));
      if (found.length > MAX_MANIFESTS) throw new Error(`over ${MAX_MANIFESTS} manifests`);
    }
    for (const entry of entries) {
      if (!entry.isDirectory || entry.name === "target" || entry.name.startsWith(".")) continue;
      visit(join(dir, entry.name), depth + 1);
    }
  };
  visit(root, 0);
  return found;
}

/**
 * The source files that make a package's targets, so that cargo finds the same targets in the
 * copy: the conventional ones that exist and every `path = "….rs"` of the manifest.
 */
function targetFiles(manifest: string): string[] {
  const dir = dirname(manifest);
  const files = ["src/lib.rs", "src/main.rs", "build.rs"].map((path) => join(dir, path))
    .filter(isFile);
  try {
    for (const entry of Deno.readDirSync(join(dir, "src/bin"))) {
      const path = join(dir, "src/bin", entry.name);
      if (entry.isFile && entry.name.endsWith(".rs")) files.push(path);
      else if (entry.isDirectory && isFile(join(path, "main.rs"))) {
        files.push(join(path, "main.rs"));
      }
    }
  } catch {
    // no src/bin
  }
  const text = Deno.readTextFileSync(manifest);
  for (const match of text.matchAll(/^\s*path\s*=\s*"([^"]+\.rs)"/gm)) {
    const path = resolve(dir, match[1]!);
    if (!relative(dir, path).startsWith("..")) files.push(path);
  }
  return files;
}

/** Removes the least recently built projects beyond `limit`. */
function pruneProjects(cacheDir: string, limit: number): void {
  for (const project of recordedProjects(cacheDir).slice(limit)) {
    Deno.removeSync(dirname(project.tree), { recursive: true });
  }
}
