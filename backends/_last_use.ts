/**
 * Last use where the server keeps only write times (S3, plain HTTP): a read writes an empty marker
 * `used/<key>` beside the bundles, in the background and best effort, and a listing takes each
 * bundle's last use as the later of its own time and its marker's.
 * @module
 */

import type { StoredEntry } from "./store.ts";
import { isCacheKey } from "./local_layout.ts";

/** Where markers live, under the store's prefix. */
export const USED_DIR = "used/";

/** The marker writes of one store. */
export interface LastUseMarkers {
  /**
   * Records a read of `key` (does nothing when the store does not record use, or for a reserved
   * name: only bundles are evicted by last use).
   */
  touch(key: string): void;
  /** Waits for the marker writes in flight; never rejects. */
  settled(): Promise<void>;
}

/**
 * Markers written by `writeMarker` when `recordUse` (read-only clients do not record).
 *
 * @example
 * ```ts
 * import { lastUseMarkers } from "./_last_use.ts";
 * const written: string[] = [];
 * const markers = lastUseMarkers(true, async (key) => { written.push(key); });
 * markers.touch("a".repeat(64));
 * await markers.settled();
 * console.log(written.length); // 1
 * ```
 */
export function lastUseMarkers(
  recordUse: boolean,
  writeMarker: (key: string) => Promise<unknown>,
): LastUseMarkers {
  const background = new Set<Promise<void>>();
  return {
    touch(key) {
      if (!recordUse || !isCacheKey(key)) return;
      // Best effort: a client without write permission still reads.
      const marker = writeMarker(key).then(() => {}, () => {});
      background.add(marker);
      marker.finally(() => background.delete(marker));
    },
    async settled() {
      await Promise.all(background);
    },
  };
}

/**
 * The bundles with their last use moved forward to their markers' times (`used`: key → ms).
 *
 * @example
 * ```ts
 * import { withMarkedUse } from "./_last_use.ts";
 * const key = "a".repeat(64);
 * const [entry] = withMarkedUse([{ key, size: 1, lastUsed: 1000 }], new Map([[key, 5000]]));
 * console.log(entry?.lastUsed); // 5000
 * ```
 */
export function withMarkedUse(
  bundles: Iterable<StoredEntry>,
  used: ReadonlyMap<string, number>,
): StoredEntry[] {
  return [...bundles].map((entry) => ({
    ...entry,
    lastUsed: Math.max(entry.lastUsed, used.get(entry.key) ?? 0),
  }));
}
