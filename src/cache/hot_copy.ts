/**
 * The unpacked mirror of a local bundle, used only through the local store (local.ts): its output
 * files as plain files plus a small record, so that a local hit copies files in the kernel
 * (copy_file_range) instead of decompressing the bundle and writing every byte again, several
 * times faster for large crates. A mirror is written only beside a bundle just stored or just
 * verified, and every file's stat signature is checked before it is served: a file changed
 * since, in any way, makes the mirror void and the hit falls back to the bundle.
 * @module
 */

import { join } from "node:path";
import { mirrorPathOf, stagingDirOf } from "../../backends/local_layout.ts";
import { statSignature } from "../digest.ts";
import {
  type Bundle,
  type BundleMeta,
  OUTPUT_ROLES,
  type OutputRole,
} from "../bundle/bundle.ts";
import { exists } from "../stat_checks.ts";

const RECORD = "mirror.json";

/**
 * Whether the bundle a mirror copies was signed: with a signing key configured, only mirrors of
 * signed bundles are served, exactly as only signed bundles are.
 */
export type MirrorTrust = "signed" | "unsigned";

/** Where a mirror's output comes from: a file this build just wrote, or verified bundle bytes. */
export type MirrorSource =
  | { role: OutputRole; path: string }
  | { role: OutputRole; bytes: Uint8Array };

/** A bundle's content as files: what a hit restores from, without decompressing. */
export interface MirrorEntry extends Omit<Bundle, "files"> {
  /** The path of each output's file inside the mirror. */
  files: Map<OutputRole, string>;
}

interface MirrorRecord {
  format: 1;
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
 * from `outputs` (files this build just wrote, or the bytes of a verified bundle). Staged in the
 * cache's temp dir and renamed into place; a mirror that already exists is left as it is.
 */
export function writeMirror(
  cacheDir: string,
  slot: string,
  bundle: Omit<Bundle, "files">,
  outputs: ReadonlyArray<MirrorSource>,
  trust: MirrorTrust,
): void {
  const target = mirrorPathOf(cacheDir, slot);
  if (exists(target)) return;
  const staging = join(stagingDirOf(cacheDir), `${crypto.randomUUID()}.mirror`);
  Deno.mkdirSync(staging, { recursive: true });
  try {
    const stats: Record<string, string> = {};
    for (const output of outputs) {
      const file = join(staging, `out.${output.role}`);
      // A hit copies the mirror's file with its mode: a build script must stay executable.
      const mode = output.role === "bin" ? 0o755 : 0o644;
      if ("bytes" in output) Deno.writeFileSync(file, output.bytes, { mode });
      else Deno.copyFileSync(output.path, file);
      stats[output.role] = statSignature(Deno.statSync(file));
    }
    const record: MirrorRecord = {
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
    // Another dispatcher mirrored the same entry first: theirs is as good as ours.
    if (!exists(target)) throw error;
  }
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
  const valid = record.format === 1 && record.key === key && typeof record.meta === "object" &&
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
    return statSignature(Deno.statSync(path));
  } catch {
    return undefined;
  }
}
