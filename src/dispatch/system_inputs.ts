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
 *   ({@linkcode directoryIdentity}), the headers under it being what a script reads there.
 * @module
 */

import { join } from "node:path";
import { sha256Hex } from "../digest.ts";
import { digestFile, type DigestMemo } from "../index/file_digest.ts";
import type { BundleMeta } from "../bundle/bundle.ts";
import { type PathRoots, toTemplate } from "./path_roots.ts";

/** The digest recorded for a path that does not exist: it must not exist on a hit either. */
export const MISSING = "missing";
/** A named tree with more directories than this is not worth checking on every hit. */
const MAX_TREE_DIRS = 2_000;
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
    const isTree = kindOf(path) === "directory";
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

/**
 * The digest a recorded input has now: a regular file's SHA-256, a directory's tree identity (its
 * path ends in `/`), {@linkcode MISSING} for nothing there; undefined for anything else (a device,
 * a file where a directory was, a tree too large) or what cannot be read.
 */
export function currentDigest(path: string, memo: DigestMemo): string | undefined {
  if (path.length > 1 && path.endsWith("/")) {
    const dir = path.slice(0, -1);
    const kind = kindOf(dir);
    return kind === "missing" ? MISSING : kind === "directory" ? directoryIdentity(dir) : undefined;
  }
  // One stat, as before this module: the hit path checks every source of a crate this way.
  try {
    return digestFile(path, memo);
  } catch (error) {
    const gone = error instanceof Deno.errors.NotFound ||
      error instanceof Deno.errors.NotADirectory;
    return gone ? MISSING : undefined;
  }
}

/** What is at `path`, following links. */
function kindOf(path: string): "file" | "directory" | "other" | "missing" {
  try {
    const info = Deno.statSync(path);
    return info.isFile ? "file" : info.isDirectory ? "directory" : "other";
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return "missing";
    }
    return "other";
  }
}

/** `static:+verbatim=foo.o` → `:foo.o`; `dylib=ssl` → `ssl`; `z:zlib` (renamed) → `z`. */
function libraryName(spec: string): string {
  const eq = spec.indexOf("=");
  const kind = eq === -1 ? "" : spec.slice(0, eq);
  const name = (eq === -1 ? spec : spec.slice(eq + 1)).split(":")[0]!;
  return kind.includes("+verbatim") ? `:${name}` : name;
}

/** Trees whose identity is known, with the modification times it was computed from. */
const trees = new Map<string, { dirs: Array<[string, number]>; identity: string }>();

/**
 * A directory tree's identity: the SHA-256 of the relative path and modification time of it and
 * of every directory under it. A package manager installs, upgrades and removes a file by
 * creating, renaming or unlinking it, each of which changes its directory's mtime, so any such
 * change anywhere in the tree changes the identity; unpacked from the same image (a CI
 * container), a tree keeps its mtimes. A file edited in place is not seen. Rechecked by a stat per
 * directory (about 3 ms for Debian's /usr/include, 829 directories); undefined for a tree of more
 * than {@linkcode MAX_TREE_DIRS} directories or one that cannot be read.
 */
export function directoryIdentity(root: string): string | undefined {
  const known = trees.get(root);
  if (known && known.dirs.every(([dir, mtime]) => mtimeOf(dir) === mtime)) return known.identity;
  const dirs: Array<[string, number]> = [];
  const visit = (dir: string): boolean => {
    const mtime = mtimeOf(dir);
    if (mtime === undefined || dirs.length >= MAX_TREE_DIRS) return false;
    dirs.push([dir, mtime]);
    const entries = [...Deno.readDirSync(dir)].filter((entry) => entry.isDirectory)
      .map((entry) => entry.name).sort();
    return entries.every((name) => visit(join(dir, name)));
  };
  try {
    if (!visit(root)) return undefined;
  } catch {
    return undefined;
  }
  const identity = sha256Hex(
    JSON.stringify(dirs.map(([dir, mtime]) => [dir.slice(root.length), mtime])),
  );
  trees.set(root, { dirs, identity });
  return identity;
}

function mtimeOf(dir: string): number | undefined {
  try {
    return Deno.statSync(dir).mtime?.getTime();
  } catch {
    return undefined;
  }
}
