/**
 * Workspace members and path dependencies as cacheable units (`[warmup] workspace`: a new
 * worktree's first build, CI's next commit): which of their compiles may be cached and where, the
 * identity that stands for their sources (the package's place in the workspace, never its
 * absolute path), and what their build script left that the key must hold. Their sources are mutable, so they are not in the key: each
 * stored compile records the files it read (variants.ts), and a hit must match them all.
 * @module
 */

import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { digestFile, type DigestMemo } from "../index/file_digest.ts";
import { filesUnder } from "./files_under.ts";
import { type PathRoots, toTemplate } from "../cache/path_roots.ts";
import type { RustcArgs } from "./rustc_args.ts";
import { exists } from "../stat_checks.ts";

/** Crate types of a workspace compile that may be cached: libraries, which others link. */
const LIBRARY_TYPES = new Set(["lib", "rlib", "proc-macro"]);
/** A directory a build script watches, or its OUT_DIR, with more files than this is not keyed. */
const MAX_WATCHED_FILES = 10_000;

/** How a workspace or path compile is cached, or why it is not. */
export type WorkspacePolicy = { reason: string } | { localOnly: boolean };

/**
 * Whether a workspace compile (`member`: of a workspace member, else of a path crate) is cached
 * under the `[warmup] workspace` setting, and on which levels. By default (`"incremental"`) only
 * a developer's incremental compiles are, on local disk: CI's non-incremental ones, and the
 * shared levels, need `true`, since some platforms build their users' code and must keep none of
 * it elsewhere. Binaries, examples, tests and build scripts are the project's end products:
 * they are linked again whenever anything below them changes, and nothing else reuses them.
 *
 * @example
 * ```ts
 * import { parseRustcArgs } from "./rustc_args.ts";
 * import { workspacePolicyOf } from "./workspace_unit.ts";
 * const parsed = parseRustcArgs(["--crate-name", "m", "src/lib.rs", "--crate-type", "lib",
 *   "--out-dir", "/t/deps", "-C", "incremental=/t/incremental"]);
 * if (parsed.cacheable) console.log(workspacePolicyOf(parsed.args, "incremental", true)); // { localOnly: true }
 * ```
 */
export function workspacePolicyOf(
  args: RustcArgs,
  setting: boolean | "incremental",
  member: boolean,
): WorkspacePolicy {
  const what = member ? "workspace member" : "path crate";
  if (setting === false) return { reason: what };
  const incremental = args.codegen.has("incremental");
  if (setting === "incremental" && !incremental) return { reason: `non-incremental ${what}` };
  if (!args.crateTypes.every((type) => LIBRARY_TYPES.has(type))) {
    return { reason: "workspace binary" };
  }
  return { localOnly: setting === "incremental" };
}

/**
 * The source identity of a workspace or path package: its directory relative to the workspace
 * root. Cargo runs rustc for such a package in the workspace root (`cwd`) and names its sources
 * relative to it, so two checkouts in different directories get the same identity and key.
 *
 * @example
 * ```ts
 * import { workspaceSourceOf } from "./workspace_unit.ts";
 * console.log(workspaceSourceOf("/ci/run-7/crates/model", "/ci/run-7")); // "workspace:crates/model"
 * ```
 */
export function workspaceSourceOf(manifestDir: string, cwd: string): string {
  const inWorkspace = relative(cwd, manifestDir);
  // A path dependency outside the workspace: cargo runs its rustc in the package itself.
  if (inWorkspace.startsWith("..") || isAbsolute(inWorkspace)) return "path:outside-workspace";
  return `workspace:${inWorkspace || "."}`;
}

/**
 * What the package's build script left for this compile, for the key: its directives (the
 * `output` file beside OUT_DIR), every file in OUT_DIR, and every file that makes cargo run it
 * again (a proc-macro may read those without rustc knowing): the `rerun-if-changed` paths, or,
 * when it declared none, the whole package, as cargo watches it then. Empty without a build
 * script. Paths are templated; contents go in as digests.
 */
export function buildScriptInputs(
  outDirEnv: string | undefined,
  manifestDir: string,
  roots: PathRoots,
  memo: DigestMemo,
): string[] {
  if (!outDirEnv) return [];
  const inputs: string[] = [];
  let directives = "";
  try {
    directives = Deno.readTextFileSync(join(dirname(outDirEnv), "output"));
  } catch (error) {
    // Another build-dir layout: OUT_DIR and the watched files still key the run's results.
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  inputs.push(`directives\0${toTemplate(directives, roots)}`);
  for (const file of filesUnder(outDirEnv, MAX_WATCHED_FILES)) {
    inputs.push(`out-dir\0${relative(outDirEnv, file)}\0${digestFile(file, memo)}`);
  }
  const watched = watchedPaths(directives);
  if (!/^cargo::?rerun-if-(env-)?changed=/m.test(directives)) {
    for (const file of filesUnder(manifestDir, MAX_WATCHED_FILES, isPackageFile)) {
      inputs.push(`package\0${relative(manifestDir, file)}\0${digestFile(file, memo)}`);
    }
  }
  for (const watchedPath of watched) {
    const path = resolve(manifestDir, watchedPath);
    for (const file of filesUnder(path, MAX_WATCHED_FILES)) {
      inputs.push(`watched\0${toTemplate(file, roots)}\0${digestFile(file, memo)}`);
    }
    // A watched path that does not exist yet must exist or not alike for a hit.
    if (!exists(path)) inputs.push(`watched\0${toTemplate(path, roots)}\0missing`);
  }
  return inputs;
}

/** The paths of `cargo:rerun-if-changed` (and `cargo::`) directives. */
function watchedPaths(directives: string): string[] {
  return [...directives.matchAll(/^cargo::?rerun-if-changed=(.*)$/gm)].map((match) => match[1]!);
}

/** Whether a directory entry of a package is one of its files: not build output, not hidden. */
function isPackageFile(name: string): boolean {
  return name !== "target" && !name.startsWith(".");
}
