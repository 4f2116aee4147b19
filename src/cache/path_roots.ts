/**
 * The directories that differ between two builds of the same crate (this build's output dir, the
 * package's source dir, its OUT_DIR, CARGO_HOME, the workspace root of a workspace crate) and the placeholders that stand for them, so
 * that no path enters a cache key and restored files point at this build's own directories.
 * @module
 */

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
  roots.sort((a, b) => b[1].length - a[1].length);
  // Without an extra filename the stem is the crate name alone, the same in every build.
  if (sources.extraFilename !== "") roots.push(["@@WARMUP_STEM@@", sources.outputStem]);
  return roots;
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
