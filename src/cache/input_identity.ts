/**
 * The identity a recorded input has now, for checking an entry's inputs on a hit (variants.ts):
 * a file's SHA-256, a directory tree's identity, or that nothing is there. A build-script run
 * records the system files and trees its output names this way (dispatch/system_inputs.ts).
 * @module
 */

import { join } from "node:path";
import { sha256Hex } from "../digest.ts";
import { digestFile, type DigestMemo } from "../index/file_digest.ts";

/** The digest recorded for a path that does not exist: it must not exist on a hit either. */
export const MISSING = "missing";
/** A named tree with more directories than this is not worth checking on every hit. */
export const MAX_TREE_DIRS = 2_000;

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
