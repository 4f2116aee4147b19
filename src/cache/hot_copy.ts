/**
 * Hot copies: a local bundle's output files kept unpacked, as plain files plus a small record, so
 * that a local hit copies files in the kernel (copy_file_range) instead of decompressing the
 * bundle and writing every byte again, several times faster for large crates. A hot copy is
 * written only beside a bundle just stored or just verified, and every file's stat signature is
 * checked before it is served: a file changed since, in any way, makes the copy void and the hit
 * falls back to the bundle. They live where the local level's layout puts them
 * (backends/local_layout.ts), are removed with their bundle, and have a budget of their own
 * inside the size cap (here; the size keeper in size_cap.ts applies it).
 * @module
 */

import { join } from "node:path";
import { hotCopyPathOf, stagingDirOf } from "../../backends/local_layout.ts";
import type { StoredEntry } from "../../backends/store.ts";
import { statSignature } from "../digest.ts";
import { type Bundle, type BundleMeta, OUTPUT_ROLES, type OutputRole } from "../bundle/bundle.ts";
import { exists } from "../stat_checks.ts";

/** The record beside the files (named when hot copies were called mirrors: those on disk keep it). */
const RECORD = "mirror.json";

/**
 * Whether the bundle a hot copy copies was signed: with a signing key configured, only hot copies of
 * signed bundles are served, exactly as only signed bundles are.
 */
export type HotCopyTrust = "signed" | "unsigned";

/** Where a hot copy's output comes from: a file this build just wrote, or verified bundle bytes. */
export type HotCopySource =
  | { role: OutputRole; path: string }
  | { role: OutputRole; bytes: Uint8Array };

/** A bundle's content as files: what a hit restores from, without decompressing. */
export interface HotCopy extends Omit<Bundle, "files"> {
  /** The path of each output's file inside the hot copy. */
  files: Map<OutputRole, string>;
}

interface HotCopyRecord {
  format: 1;
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
 * from `outputs` (files this build just wrote, or the bytes of a verified bundle). Staged in the
 * cache's temp dir and renamed into place; a hot copy that already exists is left as it is.
 */
export function writeHotCopy(
  cacheDir: string,
  slot: string,
  bundle: Omit<Bundle, "files">,
  outputs: ReadonlyArray<HotCopySource>,
  trust: HotCopyTrust,
): void {
  const target = hotCopyPathOf(cacheDir, slot);
  if (exists(target)) return;
  const staging = join(stagingDirOf(cacheDir), `${crypto.randomUUID()}.hot-copy`);
  Deno.mkdirSync(staging, { recursive: true });
  try {
    const stats: Record<string, string> = {};
    for (const output of outputs) {
      const file = join(staging, `out.${output.role}`);
      // A hit copies the hot copy's file with its mode: a build script must stay executable.
      const mode = output.role === "bin" ? 0o755 : 0o644;
      if ("bytes" in output) Deno.writeFileSync(file, output.bytes, { mode });
      else Deno.copyFileSync(output.path, file);
      stats[output.role] = statSignature(Deno.statSync(file));
    }
    const record: HotCopyRecord = {
      format: 1,
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
  } catch (error) {
    try {
      Deno.removeSync(staging, { recursive: true });
    } catch {
      // a leftover staging dir is swept with the other stale temporaries
    }
    // Another dispatcher wrote the same hot copy first: theirs is as good as ours.
    if (!exists(target)) throw error;
  }
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
  const valid = record.format === 1 && record.key === key && typeof record.meta === "object" &&
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
    return statSignature(Deno.statSync(path));
  } catch {
    return undefined;
  }
}

/**
 * Without a `hot-size`, hot copies may take 0.6 times the bytes of the bundles: the cache then
 * stays within 1.6 times its compressed size, about 0.3 times the target dirs it serves (bundles
 * are about a fifth of them).
 */
const DEFAULT_HOT_SHARE = 0.6;
/**
 * Entries whose outputs are smaller than this get no hot copy: they decompress in about a
 * millisecond, so a copy would cost disk and save nothing.
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
