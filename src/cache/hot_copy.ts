/**
 * Hot copies: a local bundle's output files kept unpacked, as plain files plus a small record, so
 * that a local hit links or copies files (hot_link.ts) instead of decompressing the bundle and
 * writing every byte again. A hot copy is written only beside a bundle just stored or just
 * verified, by hard links to the files the build has (a miss's outputs, a hit's files just
 * written) while they are still the inodes those bytes were read from or written to, else from
 * the bytes. Every file's stat signature (size, mtime, inode) is checked before it is served: a
 * file changed since in any way (a `strip` through a link to it) makes the copy void and the hit
 * falls back to the bundle. A file also linked from a target dir costs the cache no disk. They live where the local level's layout puts them
 * (backends/local_layout.ts), are removed with their bundle, and have a budget of their own
 * inside the size cap (here; the size keeper in size_cap.ts applies it).
 * @module
 */

import { join } from "node:path";
import { hotCopyPathOf, stagingDirOf } from "../../backends/local_layout.ts";
import type { StoredEntry } from "../../backends/store.ts";
import { hotModeOf, hotSignature } from "./hot_link.ts";
import { type Bundle, type BundleMeta, OUTPUT_ROLES, type OutputRole } from "../bundle/bundle.ts";
import { exists } from "../stat_checks.ts";

/** The record beside the files (named when hot copies were called mirrors: those on disk keep it). */
const RECORD = "mirror.json";

/**
 * Whether the bundle a hot copy copies was signed: with a signing key configured, only hot copies of
 * signed bundles are served, exactly as only signed bundles are.
 */
export type HotCopyTrust = "signed" | "unsigned";

/**
 * Where a hot copy's output comes from: a file the build has (linked while its stat is still
 * `signature`, when given; copied when it cannot be linked), or verified bundle bytes, or both
 * (the bytes when the file is no longer what was written).
 */
export type HotCopySource =
  | { role: OutputRole; path: string; signature?: string; bytes?: Uint8Array }
  | { role: OutputRole; bytes: Uint8Array };

/** A bundle's content as files: what a hit restores from, without decompressing. */
export interface HotCopy extends Omit<Bundle, "files"> {
  /** The path of each output's file inside the hot copy. */
  files: Map<OutputRole, string>;
}

interface HotCopyRecord {
  /** 2: files linked from and into target dirs, signatures without ctime (a link changes it). */
  format: 2;
  /** The store slot the hot copy copies (meta.key is the cache key; a variant has its own slot). */
  key: string;
  trust: HotCopyTrust;
  meta: BundleMeta;
  depInfo?: string;
  stdout: string;
  stderr: string;
  /** Each output's stat signature when the hot copy was written. */
  stats: Record<string, string>;
}

/**
 * Writes the hot copy of `bundle`, stored under `slot` (its key, or a variant's key), each output
 * from `outputs`. Staged in the cache's temp dir and renamed into place; a hot copy that already
 * exists is left as it is. Returns the bytes it costs the disk (linked files cost none).
 */
export function writeHotCopy(
  cacheDir: string,
  slot: string,
  bundle: Omit<Bundle, "files">,
  outputs: ReadonlyArray<HotCopySource>,
  trust: HotCopyTrust,
): number {
  const target = hotCopyPathOf(cacheDir, slot);
  if (exists(target)) return 0;
  const staging = join(stagingDirOf(cacheDir), `${crypto.randomUUID()}.hot-copy`);
  Deno.mkdirSync(staging, { recursive: true });
  let cost = 0;
  try {
    const stats: Record<string, string> = {};
    for (const output of outputs) {
      const file = join(staging, `out.${output.role}`);
      const from = "path" in output ? fileUnchanged(output.path, file, output.signature) : "none";
      if (from !== "linked") {
        if (from === "none") {
          if (output.bytes === undefined) {
            throw new Error(`${output.role} changed since it was read`);
          }
          Deno.writeFileSync(file, output.bytes);
        }
        cost += Deno.statSync(file).size;
      }
      // A hit links or copies the hot copy's file with its mode: a build script stays executable.
      Deno.chmodSync(file, hotModeOf(output.role === "bin" || output.role === "dylib"));
      stats[output.role] = hotSignature(Deno.statSync(file));
    }
    const record: HotCopyRecord = {
      format: 2,
      key: slot,
      trust,
      meta: bundle.meta,
      ...(bundle.depInfo === undefined ? {} : { depInfo: bundle.depInfo }),
      stdout: bundle.stdout,
      stderr: bundle.stderr,
      stats,
    };
    Deno.writeTextFileSync(join(staging, RECORD), JSON.stringify(record));
    Deno.mkdirSync(join(target, ".."), { recursive: true });
    Deno.renameSync(staging, target);
    return cost;
  } catch (error) {
    try {
      Deno.removeSync(staging, { recursive: true });
    } catch {
      // a leftover staging dir is swept with the other stale temporaries
    }
    // Another dispatcher wrote the same hot copy first: theirs is as good as ours.
    if (!exists(target)) throw error;
    return 0;
  }
}

/**
 * Puts `path` at `file` while it is still the file of stat `signature` (any when undefined): a
 * link, or a copy from another device; "none" when it is another file by now.
 */
function fileUnchanged(
  path: string,
  file: string,
  signature: string | undefined,
): "linked" | "copied" | "none" {
  let placed: "linked" | "copied" = "linked";
  try {
    Deno.linkSync(path, file);
  } catch {
    Deno.copyFileSync(path, file);
    placed = "copied";
  }
  // A copy is checked against its source after the copy: unchanged throughout.
  const now = hotSignature(Deno.statSync(placed === "linked" ? file : path));
  if (signature === undefined || now === signature) return placed;
  Deno.removeSync(file);
  return "none";
}

/**
 * The hot copy of `key`, or undefined when there is none or it cannot be trusted (then it is
 * removed). With `signedOnly`, hot copies of unsigned bundles from elsewhere are not served.
 */
export function readHotCopy(
  cacheDir: string,
  key: string,
  signedOnly: boolean,
): HotCopy | undefined {
  const dir = hotCopyPathOf(cacheDir, key);
  let record: HotCopyRecord;
  try {
    record = JSON.parse(Deno.readTextFileSync(join(dir, RECORD)));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) removeHotCopy(cacheDir, key);
    return undefined;
  }
  if (signedOnly && record.trust === "unsigned") return undefined;
  const files = new Map<OutputRole, string>();
  const valid = record.format === 2 && record.key === key && typeof record.meta === "object" &&
    record.meta.outputs.every((output) => {
      const path = join(dir, `out.${output.role}`);
      files.set(output.role, path);
      return OUTPUT_ROLES.has(output.role) && signatureOf(path) === record.stats[output.role];
    });
  if (!valid) {
    removeHotCopy(cacheDir, key);
    return undefined;
  }
  const entry: HotCopy = {
    meta: record.meta,
    files,
    stdout: record.stdout,
    stderr: record.stderr,
  };
  if (record.depInfo !== undefined) entry.depInfo = record.depInfo;
  return entry;
}

/** Whether `key` has a hot copy on disk (valid or not). */
export function hasHotCopy(cacheDir: string, key: string): boolean {
  try {
    Deno.statSync(join(hotCopyPathOf(cacheDir, key), RECORD));
    return true;
  } catch {
    return false;
  }
}

/** Removes the hot copy of `key`, if any. */
export function removeHotCopy(cacheDir: string, key: string): void {
  try {
    Deno.removeSync(hotCopyPathOf(cacheDir, key), { recursive: true });
  } catch {
    // gone already, or not ours to remove: a hot copy that stays invalid is never served
  }
}

function signatureOf(path: string): string | undefined {
  try {
    return hotSignature(Deno.statSync(path));
  } catch {
    return undefined;
  }
}

/**
 * Without a `hot-size`, hot copies may take 0.6 times the bytes of the bundles: the cache then
 * stays within 1.6 times its compressed size, about 0.3 times the target dirs it serves (bundles
 * are about a fifth of them). Only copies' files no target dir links count (backends/local.ts): those in use
 * cost nothing, so every entry the recent builds used stays hot whatever the budget.
 */
const DEFAULT_HOT_SHARE = 0.6;
/**
 * Entries whose outputs are smaller than this get no hot copy written from bytes: they decompress
 * in about a millisecond, so a copy would cost disk and save nothing (a linked one costs nothing).
 */
export const MIN_HOT_BYTES = 512 * 1024;

/** The hot copies' budget for a level whose bundles take `bundleBytes`. */
export function hotCapOf(hotSize: number | undefined, bundleBytes: number): number {
  return hotSize ?? Math.floor(bundleBytes * DEFAULT_HOT_SHARE);
}

/** What a local level's listing says of its bundles and hot copies, and the copies' budget. */
export function hotBudgetOf(
  hotSize: number | undefined,
  entries: ReadonlyArray<StoredEntry>,
): { bundleBytes: number; hotBytes: number; hotCap: number } {
  const hotBytes = entries.reduce((sum, entry) => sum + (entry.hotSize ?? 0), 0);
  const bundleBytes = entries.reduce((sum, entry) => sum + entry.size, 0) - hotBytes;
  return { bundleBytes, hotBytes, hotCap: hotCapOf(hotSize, bundleBytes) };
}

/**
 * Removes the least recently used hot copies in `cacheDir` until they take at most `hotCap` bytes
 * (the bundles stay: a hit on them decompresses instead), never one in `protect`.
 */
export function trimHotCopies(
  cacheDir: string,
  entries: ReadonlyArray<StoredEntry>,
  hotCap: number,
  options: { dryRun?: boolean; protect?: ReadonlySet<string> } = {},
): { before: number; after: number; evicted: number } {
  // One copy larger than the whole budget goes first: least recently used order would otherwise
  // remove every other copy before it, and then it too.
  const hot = entries.filter((entry) => (entry.hotSize ?? 0) > 0)
    .sort((a, b) =>
      Number(b.hotSize! > hotCap) - Number(a.hotSize! > hotCap) || a.lastUsed - b.lastUsed
    );
  const before = hot.reduce((sum, entry) => sum + entry.hotSize!, 0);
  let total = before;
  let evicted = 0;
  for (const entry of hot) {
    if (total <= hotCap) break;
    if (options.protect?.has(entry.key)) continue;
    if (!options.dryRun) removeHotCopy(cacheDir, entry.key);
    total -= entry.hotSize!;
    evicted++;
  }
  return { before, after: total, evicted };
}
