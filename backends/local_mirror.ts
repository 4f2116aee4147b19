/**
 * The unpacked mirror of a local bundle (its hot copy), used only through the local store
 * (local.ts): its output files as plain files plus a small record, so that a local hit
 * links or copies files (src/cache/hot_link.ts) instead of decompressing the bundle and writing
 * every byte again. A mirror is written only beside a bundle just stored or just verified, by
 * hard links to the files the build has (a miss's outputs, a hit's files just written) while
 * they are still the inodes those bytes were read from or written to, else from the bytes. Every
 * file's stat signature (size, mtime, inode) is checked before it is served: a file changed since
 * in any way (a `strip` through a link to it) makes the mirror void and the hit falls back to the
 * bundle. A file also linked from a target dir costs the cache no disk of its own.
 * @module
 */

import { join } from "node:path";
import { mirrorPathOf, stagingDirOf } from "./local_layout.ts";
import { hotModeOf, hotSignature } from "../src/cache/hot_link.ts";
import {
  type Bundle,
  type BundleMeta,
  OUTPUT_ROLES,
  type OutputRole,
} from "../src/bundle/bundle.ts";
import { exists } from "../src/stat_checks.ts";

const RECORD = "mirror.json";

/**
 * Whether the bundle a mirror copies was signed: with a signing key configured, only mirrors of
 * signed bundles are served, exactly as only signed bundles are.
 */
export type MirrorTrust = "signed" | "unsigned";

/**
 * Where a mirror's output comes from: a file the build has (linked while its stat is still
 * `signature`, when given; copied when it cannot be linked), or verified bundle bytes, or both
 * (the bytes when the file is no longer what was written).
 */
export type MirrorSource =
  | { role: OutputRole; path: string; signature?: string; bytes?: Uint8Array }
  | { role: OutputRole; bytes: Uint8Array };

/** A bundle's content as files: what a hit restores from, without decompressing. */
export interface MirrorEntry extends Omit<Bundle, "files"> {
  /** The path of each output's file inside the mirror. */
  files: Map<OutputRole, string>;
}

interface MirrorRecord {
  /** 2: files linked from and into target dirs, signatures without ctime (a link changes it). */
  format: 2;
  /** The store slot the mirror copies (meta.key is the cache key; a variant has its own slot). */
  key: string;
  trust: MirrorTrust;
  meta: BundleMeta;
  depInfo?: string;
  stdout: string;
  stderr: string;
  /** Each output's stat signature when the mirror was written. */
  stats: Record<string, string>;
}

/**
 * Writes the mirror of `bundle`, stored under `slot` (its key, or a variant's key), each output
 * from `outputs`. Staged in the cache's temp dir and renamed into place; a mirror that already
 * exists is left as it is. Resolves to the bytes it costs the disk (linked files cost none).
 */
export function writeMirror(
  cacheDir: string,
  slot: string,
  bundle: Omit<Bundle, "files">,
  outputs: ReadonlyArray<MirrorSource>,
  trust: MirrorTrust,
): number {
  const target = mirrorPathOf(cacheDir, slot);
  if (exists(target)) return 0;
  const staging = join(stagingDirOf(cacheDir), `${crypto.randomUUID()}.mirror`);
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
      // A hit links or copies the mirror's file with its mode: a build script stays executable.
      Deno.chmodSync(file, hotModeOf(output.role === "bin" || output.role === "dylib"));
      stats[output.role] = hotSignature(Deno.statSync(file));
    }
    const record: MirrorRecord = {
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
    // Another dispatcher mirrored the same entry first: theirs is as good as ours.
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
 * The mirror of `key`, or undefined when there is none or it cannot be trusted (then it is
 * removed). With `signedOnly`, mirrors of unsigned bundles from elsewhere are not served.
 */
export function readMirror(
  cacheDir: string,
  key: string,
  signedOnly: boolean,
): MirrorEntry | undefined {
  const dir = mirrorPathOf(cacheDir, key);
  let record: MirrorRecord;
  try {
    record = JSON.parse(Deno.readTextFileSync(join(dir, RECORD)));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) removeMirror(cacheDir, key);
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
    removeMirror(cacheDir, key);
    return undefined;
  }
  const entry: MirrorEntry = {
    meta: record.meta,
    files,
    stdout: record.stdout,
    stderr: record.stderr,
  };
  if (record.depInfo !== undefined) entry.depInfo = record.depInfo;
  return entry;
}

/** Whether `key` has a mirror on disk (valid or not). */
export function hasMirror(cacheDir: string, key: string): boolean {
  try {
    Deno.statSync(join(mirrorPathOf(cacheDir, key), RECORD));
    return true;
  } catch {
    return false;
  }
}

/**
 * The bytes the mirror of `key` costs the disk: its files that no target dir links too (those
 * would take their disk without the cache: they count once, there). The record is not counted.
 * 0 when there is none. A mirror whose files are all in use is free, and never trimmed.
 */
export function mirrorBytes(cacheDir: string, key: string): number {
  const dir = mirrorPathOf(cacheDir, key);
  let total = 0;
  try {
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.name === RECORD) continue;
      const info = Deno.lstatSync(join(dir, entry.name));
      if ((info.nlink ?? 1) <= 1) total += info.size;
    }
  } catch {
    // gone meanwhile, or never written
  }
  return total;
}

/** Removes the mirror of `key`, if any. */
export function removeMirror(cacheDir: string, key: string): void {
  try {
    Deno.removeSync(mirrorPathOf(cacheDir, key), { recursive: true });
  } catch {
    // gone already, or not ours to remove: a mirror that stays invalid is never served
  }
}

function signatureOf(path: string): string | undefined {
  try {
    return hotSignature(Deno.statSync(path));
  } catch {
    return undefined;
  }
}
