/**
 * What a build-script run's directives name outside the build (a pkg-config probe's
 * `rustc-link-search=native=/usr/lib/x86_64-linux-gnu` and `rustc-link-lib=git2`, an
 * `include=/usr/include`), as inputs recorded with the run and checked on every hit like its
 * watched files (variants.ts), so that a run is served only where they resolve the same:
 *
 * - each library it links, in each directory it names for linking (`lib<name>.so`, `.a`, `.dylib`
 *   there): by SHA-256, or as missing. The rest of such a directory (thousands of other
 *   libraries) is not what the run used;
 * - each other file it names: by SHA-256, or as missing;
 * - each other directory (an include dir, a prefix): by its tree identity
 *   (cache/input_identity.ts), the headers under it being what a script reads there.
 * @module
 */

import { join } from "node:path";
import type { DigestMemo } from "../index/file_digest.ts";
import type { BundleMeta } from "../bundle/bundle.ts";
import { currentDigest, MAX_TREE_DIRS } from "../cache/input_identity.ts";
import { type PathRoots, toTemplate } from "../cache/path_roots.ts";

/** The file names a linker looks for when asked for `-l <name>`. */
const LIBRARY_FILES = (name: string) => [`lib${name}.so`, `lib${name}.a`, `lib${name}.dylib`];

/**
 * The inputs a successful run's stdout names outside `roots` (OUT_DIR, the package, the build dir,
 * CARGO_HOME), or why they cannot be identified (a tree too large). Paths of directories end in
 * `/`; their digest is the tree identity.
 */
export function systemInputsOf(
  stdout: string,
  roots: PathRoots,
  memo: DigestMemo,
): { sources: BundleMeta["sources"] } | { uncacheable: string } {
  const linkDirs = new Set<string>();
  const libraries = new Set<string>();
  const named = new Set<string>();
  const outside = (path: string) => path.startsWith("/") && toTemplate(path, roots) === path;
  for (const [, directive, value] of stdout.matchAll(/^cargo::?([\w-]+)=(.*)$/gm)) {
    switch (directive) {
      case "warning": // printed, not used
      case "rerun-if-env-changed": // a variable's name
      case "rerun-if-changed": // watched files: recorded with their digests (build_script_run.ts)
        continue;
      case "rustc-link-search": {
        const path = value!.slice(value!.indexOf("=") + 1);
        if (outside(path)) linkDirs.add(path.replace(/\/+$/, ""));
        continue;
      }
      case "rustc-link-lib":
        libraries.add(libraryName(value!));
        continue;
      case "rustc-flags":
        for (const [, flag, arg] of value!.matchAll(/-([Ll])\s*(\S+)/g)) {
          if (flag === "l") libraries.add(libraryName(arg!));
          else if (outside(arg!.slice(arg!.indexOf("=") + 1))) {
            linkDirs.add(arg!.slice(arg!.indexOf("=") + 1));
          }
        }
        continue;
    }
    for (const [path] of value!.matchAll(/(?<![^\s=,:;"'(])(?:-[A-Za-z])?\/[^\s,;:"')]*/g)) {
      const absolute = path.replace(/^-[A-Za-z]/, "").replace(/(.)\/+$/, "$1");
      if (outside(absolute)) named.add(absolute);
    }
  }

  const sources: BundleMeta["sources"] = [];
  for (const dir of linkDirs) {
    for (const library of libraries) {
      const files = library.startsWith(":") ? [library.slice(1)] : LIBRARY_FILES(library);
      for (const file of files) {
        const path = join(dir, file);
        const digest = currentDigest(path, memo);
        if (digest === undefined) {
          return { uncacheable: `build script links ${path}, which cannot be read` };
        }
        sources.push({ path, digest });
      }
    }
  }
  for (const path of named) {
    if (linkDirs.has(path)) continue;
    const isTree = isDirectory(path);
    const recorded = isTree ? `${path}/` : path;
    const digest = currentDigest(recorded, memo);
    if (digest === undefined) {
      return {
        uncacheable:
          `build script output names ${path}, which cannot be identified (unreadable, or a tree of over ${MAX_TREE_DIRS} directories)`,
      };
    }
    sources.push({ path: recorded, digest });
  }
  return { sources };
}

/** `static:+verbatim=foo.o` → `:foo.o`; `dylib=ssl` → `ssl`; `z:zlib` (renamed) → `z`. */
function libraryName(spec: string): string {
  const eq = spec.indexOf("=");
  const kind = eq === -1 ? "" : spec.slice(0, eq);
  const name = (eq === -1 ? spec : spec.slice(eq + 1)).split(":")[0]!;
  return kind.includes("+verbatim") ? `:${name}` : name;
}

/** Whether `path` is a directory (following links). */
function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}
