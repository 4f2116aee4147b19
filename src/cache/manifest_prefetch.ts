/**
 * A team manifest's entries fetched into the local level ahead of a build: what
 * `cargo warmup prepare` does on a fresh machine (a CI step, a Dockerfile `RUN`), whose journal
 * predicts nothing, so that the `cargo build` after it reads every entry from local disk rather
 * than waiting on a round trip to the shared level for each. Many fetches are in flight at once,
 * as staging's are (a Redis connection pipelines them; S3 and HTTP servers answer in parallel),
 * and each entry is checked before it is kept, as every remote read is (levels.ts: signed by a
 * trusted key). A manifest that is missing, refused or stale costs its fetches only.
 * @module
 */

import type { Cache } from "./cache.ts";
import { MANIFEST_PARALLEL_FETCHES } from "./cache.ts";
import type { CacheCall } from "./call.ts";
import type { BuildShape } from "./build_shape.ts";

/** How fetching a manifest's entries went. */
export interface Prefetched {
  /** Entries the manifest names. */
  entries: number;
  /** Entries fetched from the shared level (the rest were on local disk, or not fetched). */
  fetched: number;
  /** Their bytes. */
  bytes: number;
  ms: number;
  /** Why the manifest was not used, when it was refused (altered, signed by another key). */
  refused?: string;
}

/**
 * Fetches into `cache`'s local level the entries of the team manifest of `shape` that it does not
 * hold, for `request` (whose build meets, and is warned of, an outage once); undefined when there
 * is no such manifest or no shared level to read it from. Never rejects for an entry.
 */
export async function prefetchTeamManifest(
  cache: Cache,
  shape: BuildShape,
  request: CacheCall,
): Promise<Prefetched | undefined> {
  const started = performance.now();
  const manifest = await cache.teamManifestOf(shape);
  if (manifest === undefined) return undefined;
  const ms = () => Math.round(performance.now() - started);
  if ("refused" in manifest) {
    return { entries: 0, fetched: 0, bytes: 0, ms: ms(), refused: manifest.refused };
  }
  let fetched = 0;
  let bytes = 0;
  // The lanes share one iterator: each takes the next entry in the build's order.
  const queue = manifest.entries.values();
  const lane = async () => {
    for (const entry of queue) {
      if (await cache.local.has(entry.slot)) continue;
      const got = await cache.get(entry.slot, request);
      if (got === undefined) continue;
      fetched++;
      bytes += got.length;
    }
  };
  const lanes = Math.min(MANIFEST_PARALLEL_FETCHES, manifest.entries.length);
  await Promise.all(Array.from({ length: lanes }, lane));
  return { entries: manifest.entries.length, fetched, bytes, ms: ms() };
}
