/**
 * Where the local store keeps things: each bundle under `bundles/`, and beside it its hot copy
 * (src/cache/hot_copy.ts) under `unpacked/`, that hits copy from without decompressing. Both are
 * named by cache key and evicted together. The cache-key format itself lives here too, for every
 * store, and the reserved names a store keeps beside its bundles.
 * @module
 */

import { join } from "node:path";

const KEY_PATTERN = /^[0-9a-f]{64}$/;
/**
 * A reserved name: a word, a dash and 64 hex digits (`manifest-…`). Stores keep what is put under
 * one beside their bundles, through the same get, put and delete, but never list it as a bundle,
 * count it or record its use: it is the cache's own bookkeeping (a team manifest), not an entry.
 */
const RESERVED_PATTERN = /^[a-z]+-[0-9a-f]{64}$/;

/** Throws TypeError unless `key` is a cache key (64 lowercase hex characters). */
export function assertCacheKey(key: string): void {
  if (!KEY_PATTERN.test(key)) throw new TypeError(`Invalid cache key "${key}"`);
}

/** Whether `key` is a cache key. */
export function isCacheKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** Whether `name` is a reserved name: a word, a dash and 64 hex digits. */
export function isReservedName(name: string): boolean {
  return RESERVED_PATTERN.test(name);
}

/**
 * Throws TypeError unless `name` is one a store keeps: a cache key or a reserved name.
 *
 * @example
 * ```ts
 * import { assertStoreName } from "./local_layout.ts";
 * assertStoreName("a".repeat(64));
 * assertStoreName(`manifest-${"b".repeat(64)}`);
 * ```
 */
export function assertStoreName(name: string): void {
  if (!KEY_PATTERN.test(name) && !RESERVED_PATTERN.test(name)) {
    throw new TypeError(`Invalid cache key "${name}"`);
  }
}

/** Where the cache directory `dir` keeps what reserved names hold: apart from the bundles. */
export function reservedDirOf(dir: string): string {
  return join(dir, "reserved");
}

/** The file of the reserved name `name` in the cache directory `dir`. */
export function reservedPathOf(dir: string, name: string): string {
  if (!isReservedName(name)) throw new TypeError(`Invalid reserved name "${name}"`);
  return join(reservedDirOf(dir), name);
}

/** The bundle file of `key` in the cache directory `dir`. */
export function bundlePathOf(dir: string, key: string): string {
  assertCacheKey(key);
  return join(dir, "bundles", key.slice(0, 2), `${key}.tzst`);
}

/** The hot copy (a directory) of `key` in the cache directory `dir`. */
export function hotCopyPathOf(dir: string, key: string): string {
  assertCacheKey(key);
  return join(dir, "unpacked", key.slice(0, 2), key);
}

/** Where writers stage files before renaming them into place. */
export function stagingDirOf(dir: string): string {
  return join(dir, "tmp");
}
