/**
 * Where the local store keeps things: each bundle under `bundles/`, and beside it its hot copy
 * (src/cache/hot_copy.ts) under `unpacked/`, that hits copy from without decompressing. Both are named by cache key and evicted together. The cache-key format itself
 * lives here too, for every store.
 * @module
 */

import { join } from "node:path";

const KEY_PATTERN = /^[0-9a-f]{64}$/;

/** Throws TypeError unless `key` is a cache key (64 lowercase hex characters). */
export function assertCacheKey(key: string): void {
  if (!KEY_PATTERN.test(key)) throw new TypeError(`Invalid cache key "${key}"`);
}

/** Whether `key` is a cache key. */
export function isCacheKey(key: string): boolean {
  return KEY_PATTERN.test(key);
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
