/**
 * SHA-256 digests of files, memoised in the index by path and stat signature, so that a
 * dependency's rlib is hashed once per change rather than once per dependent crate.
 * @module
 */

import { sha256Hex, statSignature } from "../digest.ts";

/**
 * The digest of the file at `path`, from the memo when its stat signature still matches.
 *
 * @example
 * ```ts
 * import { digestFile } from "./file_digest.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * console.log(digestFile(path)); // "ba7816bf…"
 * ```
 */
export function digestFile(path: string, memo?: DigestMemo): string {
  // Synchronous: it runs for every dependency on every hit, where an async stat's thread-pool
  // round trip costs more than the stat.
  const info = Deno.statSync(path);
  // A device or FIFO (a hostile entry's recorded source) would be read forever.
  if (!info.isFile) throw new Deno.errors.InvalidData(`${path} is not a regular file`);
  const signature = statSignature(info);
  const known = memo?.lookup(path, signature);
  if (known !== undefined) return known;
  const digest = sha256Hex(Deno.readFileSync(path));
  memo?.remember(path, signature, digest);
  return digest;
}

/** Records a digest already known (a file just written from bytes we hold) under its new stat. */
export function rememberWrittenFile(path: string, digest: string, memo: DigestMemo): void {
  memo.remember(path, statSignature(Deno.statSync(path)), digest);
}

/** Where digests are remembered; a failing memo only costs a re-hash. */
export interface DigestMemo {
  lookup(path: string, signature: string): string | undefined;
  remember(path: string, signature: string, digest: string): void;
  /** Makes what was remembered visible to other processes (a memo may write in batches). */
  flush?(): void;
}
