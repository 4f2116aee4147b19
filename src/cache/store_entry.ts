/**
 * The one store every cached thing goes through after a miss, crate compiles and build-script
 * runs alike: collects the entry from what the build left, keeps the entry it replaces as an older
 * variant when that one was made from other inputs (variants.ts), packs, stores and records it,
 * and writes its hot copy when it is worth one. A failure anywhere is one warning, never a failed
 * build.
 * @module
 */

import { type HotCopySource, removeHotCopy } from "./hot_copy.ts";
import {
  type Bundle,
  BundleError,
  type BundleMeta,
  openBundle,
  packBundle,
} from "../bundle/bundle.ts";
import { errorMessage } from "../error_message.ts";
import type { ArtefactRow } from "../index/index_db.ts";
import type { CacheCall } from "./call.ts";
import { variantIdOf, variantKeyOf, variantsAfter } from "./variants.ts";
import { warnOncePerBuild } from "./warn_once.ts";
import type { Cache } from "./cache.ts";

/** An entry to store under `key`. */
export interface NewEntry {
  key: string;
  /** What is stored, for the warning when it cannot be: `serde 1.0.219's build script run`. */
  label: string;
  /**
   * The entry, from what the build left; undefined when it turns out not to be worth storing (it
   * depends on the machine). A throw stores nothing and warns.
   */
  collect(): Promise<Bundle | undefined>;
  /** The entry's index row, given its meta and stored size. */
  rowOf(meta: BundleMeta, size: number): ArtefactRow;
  /** The lookup found a stale entry in the key's slot: it stays, as an older variant. */
  replacesStale: boolean;
  /** The files to make the entry's hot copy from, when it may have one. */
  hotCopyFrom?: () => ReadonlyArray<HotCopySource>;
}

/** Stores `entry`; resolves once it is stored or given up (never rejects). */
export async function storeEntry(
  entry: NewEntry,
  cache: Cache,
  request: CacheCall,
): Promise<void> {
  try {
    const bundle = await entry.collect();
    if (bundle === undefined) return;
    request.phases.done("collected");
    const displaced = entry.replacesStale
      ? await keepAsVariant(entry.key, entry.rowOf, cache, request)
      : undefined;
    const variants = variantsAfter(displaced, variantIdOf(bundle.meta));
    if (variants.length > 0) bundle.meta.variants = variants;
    const bytes = await packBundle(bundle, {
      compressionLevel: cache.compressionLevel,
      signingKey: cache.signingKey,
      signer: cache.signer,
    });
    request.phases.done("packed");
    // A hot copy already in the slot is of the entry this one replaces (stale, or stored in
    // another diagnostic rendering): it would go on serving that one.
    removeHotCopy(cache.dir, entry.key);
    await cache.put(entry.key, bytes, entry.rowOf(bundle.meta, bytes.length), request);
    if (entry.hotCopyFrom) cache.writeHotCopy(entry.key, bundle, entry.hotCopyFrom());
  } catch (error) {
    warnOncePerBuild(
      request,
      "store",
      `cannot store ${entry.label} in the cache: ${errorMessage(error)}`,
    );
    cache.count({ store_errors: 1 }, request);
  }
}

/**
 * Moves the entry now in `key`'s slot (made from other inputs) to its own variant slot, so that
 * builds with those inputs still hit; resolves to its meta, or undefined when the slot holds
 * nothing usable by now.
 */
async function keepAsVariant(
  key: string,
  rowOf: NewEntry["rowOf"],
  cache: Cache,
  request: CacheCall,
): Promise<BundleMeta | undefined> {
  const bytes = await cache.get(key, request);
  if (bytes === undefined) return undefined;
  let current: Bundle;
  try {
    current = await openBundle(bytes, key, {
      signingKey: cache.signingKey,
      trustedKeys: cache.trustedKeys,
    });
  } catch (error) {
    if (error instanceof BundleError) return undefined;
    throw error;
  }
  const slot = variantKeyOf(key, variantIdOf(current.meta));
  await cache.put(slot, bytes, { ...rowOf(current.meta, bytes.length), key: slot }, request);
  return current.meta;
}
