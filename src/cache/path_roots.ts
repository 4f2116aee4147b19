/**
 * The directories that differ between two builds of the same crate (this build's output dir, the
 * package's source dir, its OUT_DIR, CARGO_HOME, the target dir, the workspace root of a workspace
 * crate) and the placeholders that stand for them, so that no path enters a cache key and restored
 * files point at this build's own directories.
 * @module
 */

import { basename, dirname } from "node:path";

/** The placeholder of the target dir (see {@linkcode targetDirOf}). */
export const TARGET_ROOT = "@@WARMUP_TARGET@@";

/** The directories of one invocation, by placeholder. */
export type PathRoots = ReadonlyArray<readonly [placeholder: string, path: string]>;

/** What {@linkcode pathRootsOf} needs to know about an invocation. */
export interface RootSources {
  outDir: string;
  /** `crate_name` + `-C extra-filename`: the per-project stem of every output file name. */
  outputStem: string;
  extraFilename: string;
  manifestDir?: string | undefined;
  outDirEnv?: string | undefined;
  cargoHome?: string | undefined;
  /** Set for workspace and path crates only: for a registry crate it is the package dir. */
  workspaceRoot?: string | undefined;
  /** The `--target` triple, which names a directory of the target dir. */
  target?: string | undefined;
}

/**
 * The roots of an invocation, longest path first so that nested roots resolve to the closest.
 *
 * @example
 * ```ts
 * import { pathRootsOf, toTemplate } from "./path_roots.ts";
 * const roots = pathRootsOf({ outDir: "/p/target/debug/deps", outputStem: "serde-1a", extraFilename: "-1a" });
 * console.log(toTemplate("/p/target/debug/deps/libserde-1a.rlib", roots));
 * // "@@WARMUP_OUT@@/lib@@WARMUP_STEM@@.rlib"
 * ```
 */
export function pathRootsOf(sources: RootSources): PathRoots {
  const roots: Array<[string, string]> = [];
  const add = (placeholder: string, path: string | undefined) => {
    const trimmed = path?.replace(/\/+$/, "");
    if (trimmed) roots.push([placeholder, trimmed]);
  };
  add("@@WARMUP_OUT@@", sources.outDir);
  add("@@WARMUP_PKG@@", sources.manifestDir);
  add("@@WARMUP_OUT_DIR_ENV@@", sources.outDirEnv);
  add("@@WARMUP_CARGO_HOME@@", sources.cargoHome);
  add("@@WARMUP_WORKSPACE@@", sources.workspaceRoot);
  add(TARGET_ROOT, targetDirOf(sources.outDir, sources.target));
  roots.sort((a, b) => b[1].length - a[1].length);
  // Without an extra filename the stem is the crate name alone, the same in every build.
  if (sources.extraFilename !== "") roots.push(["@@WARMUP_STEM@@", sources.outputStem]);
  return roots;
}

/**
 * The target dir a compile writes into, from its `--out-dir` as cargo lays it out:
 * `<target>[/<triple>]/<profile>/deps` for crates, `…/<profile>/build/<pkg>-<hash>` for build
 * scripts. Other build scripts' OUT_DIRs (`-L native=…/build/<pkg>-<hash>/out`) lie in it, host
 * and target ones alike. Undefined for another layout, or a target dir that is `/`.
 *
 * @example
 * ```ts
 * import { targetDirOf } from "./path_roots.ts";
 * console.log(targetDirOf("/p/target/x86_64-unknown-linux-gnu/debug/deps", "x86_64-unknown-linux-gnu")); // "/p/target"
 * ```
 */
export function targetDirOf(outDir: string, target?: string): string | undefined {
  const trimmed = outDir.replace(/\/+$/, "");
  const profileDir = basename(trimmed) === "deps"
    ? dirname(trimmed)
    : basename(dirname(trimmed)) === "build"
    ? dirname(dirname(trimmed))
    : undefined;
  if (profileDir === undefined) return undefined;
  let targetDir = dirname(profileDir);
  if (target !== undefined && basename(targetDir) === target) targetDir = dirname(targetDir);
  return targetDir === "/" || targetDir === "." || !targetDir.startsWith("/")
    ? undefined
    : targetDir;
}

/** Replaces every root in `text` by its placeholder (also in the `\ `-escaped form of .d files). */
export function toTemplate(text: string, roots: PathRoots): string {
  let result = text;
  for (const [placeholder, path] of roots) {
    result = result.replaceAll(path, placeholder);
    if (path.includes(" ")) result = result.replaceAll(path.replaceAll(" ", "\\ "), placeholder);
  }
  return result;
}

/** Replaces every placeholder in `template` by this invocation's path. */
export function fromTemplate(template: string, roots: PathRoots, escapeSpaces = false): string {
  let result = template;
  for (const [placeholder, path] of roots) {
    result = result.replaceAll(placeholder, escapeSpaces ? path.replaceAll(" ", "\\ ") : path);
  }
  return result;
}
