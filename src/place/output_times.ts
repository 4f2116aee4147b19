/**
 * Which of a placed unit's outputs are hard links to hot copies, and the mtime every file placed
 * by copy gets, so that cargo finds the placed set fresh. Cargo's one mtime rule between units
 * (`check_filesystem` in its fingerprint module): a unit is dirty when a dependency's output is
 * newer than its own newest output; a build-script run's output is its `output` file, which must
 * also be no older than the files its `rerun-if-changed` lines name.
 *
 * A link keeps the hot copy's mtime (one inode with the cache and every target dir linking it,
 * which must never be touched), and hot copies were linked from the build that compiled them,
 * in its order, so a unit's hot files are usually newer than its dependencies'. Where they are
 * not (a hot copy rewritten later from its bundle), one output is copied instead and given a time
 * just after its dependencies' newest: the lowest time that keeps the order, so that the units
 * above it can still link. Copies never take "now", which would force every unit above them to
 * be copied too. Times are set in whole milliseconds, one past the newest compared: cargo compares
 * nanoseconds, a stat here shows milliseconds.
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import { clonesFiles } from "../cache/hot_link.ts";

/** An output to place: its role, where it goes, and its source (a hot file's path, or bytes). */
export interface OutputToPlace {
  role: string;
  dest: string;
  source: Uint8Array | string;
}

/** How a unit's outputs are placed. */
export interface OutputPlan {
  /** Roles placed as hard links to their hot files. */
  linked: Set<string>;
  /** The mtime (ms) of every output placed by copy. */
  copyMtimeMs: number;
  /** The unit's newest output as placed (ms): what its dependents are compared with. */
  newestMs: number;
}

/**
 * Plans `outputs` of a unit whose dependencies' newest placed output is `dependencyMs`; `floorMs`
 * is the lowest time a copy gets (its package's manifest: never older than its own source).
 */
export function planOutputs(
  outputs: ReadonlyArray<OutputToPlace>,
  dependencyMs: number,
  floorMs: number,
): OutputPlan {
  const copyMtimeMs = Math.max(dependencyMs + 1, floorMs);
  const hot = new Map<string, { size: number; mtimeMs: number }>();
  for (const output of outputs) {
    if (typeof output.source !== "string") continue;
    const info = statOrUndefined(output.source);
    if (info === undefined || !mayLink(info, dirname(output.dest))) continue;
    hot.set(output.role, { size: info.size, mtimeMs: info.mtime?.getTime() ?? 0 });
  }
  const newestOf = (roles: Iterable<string>) =>
    Math.max(0, ...[...roles].map((role) => hot.get(role)!.mtimeMs));
  const linked = new Set(hot.keys());
  if (linked.size === outputs.length && linked.size > 0 && newestOf(linked) <= dependencyMs) {
    // Every output would be older than a dependency: the smallest (a library's .rmeta) is copied.
    const smallest = [...linked].sort((a, b) => hot.get(a)!.size - hot.get(b)!.size)[0];
    if (smallest !== undefined) linked.delete(smallest);
  }
  const anyCopied = outputs.length > linked.size;
  return { linked, copyMtimeMs, newestMs: Math.max(newestOf(linked), anyCopied ? copyMtimeMs : 0) };
}

/**
 * The time a build-script run's `output` file gets: after its dependencies (its script, the runs
 * it reads) and after every file its `rerun-if-changed` lines name (relative to the package).
 */
export function runOutputMtime(
  outputText: string,
  packageDir: string,
  dependencyMs: number,
  floorMs: number,
): number {
  let newest = dependencyMs;
  for (const line of outputText.split("\n")) {
    const match = /^cargo::?rerun-if-changed=(.*)$/.exec(line.trimEnd());
    const named = match?.[1];
    if (named === undefined) continue;
    const path = isAbsolute(named) ? named : join(packageDir, named);
    newest = Math.max(newest, statOrUndefined(path)?.mtime?.getTime() ?? 0);
  }
  return Math.max(newest + 1, floorMs);
}

/** The lowest time a unit's copies get: its package's manifest's mtime (0 when unreadable). */
export function floorOf(packageDir: string): number {
  return statOrUndefined(join(packageDir, "Cargo.toml"))?.mtime?.getTime() ?? 0;
}

/** Sets a file's mtime (its atime to the same: nothing reads it). */
export function setMtime(path: string, ms: number): void {
  const time = new Date(ms);
  Deno.utimeSync(path, time, time);
}

/** A hot file may be linked into `dir` on one device that does not clone (a clone is a copy). */
function mayLink(hot: Deno.FileInfo, dir: string): boolean {
  const target = statOrUndefined(dir);
  return target !== undefined && target.dev === hot.dev && !clonesFiles(hot.dev);
}

function statOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}
