/**
 * Hashing helpers shared by the key, the bundle format and the index: the SHA-256 of bytes, and
 * the stat signature that says whether a file may have changed since it was hashed.
 * @module
 */

import { createHash } from "node:crypto";

/**
 * The hex SHA-256 of `bytes`.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./digest.ts";
 * console.log(sha256Hex("abc").slice(0, 8)); // "ba7816bf"
 * ```
 */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Size, mtime, inode and ctime: any rewrite of the file changes at least one of them. */
export function statSignature(info: Deno.FileInfo): string {
  return `${info.size}:${info.mtime?.getTime() ?? 0}:${info.ino ?? 0}:${
    info.ctime?.getTime() ?? 0
  }`;
}
