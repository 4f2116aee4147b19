/**
 * The one lookup every cached thing goes through, crate compiles and build-script runs alike: the
 * key's newest entry, or the older variant of it whose recorded inputs (sources, generated files,
 * environment) match this call (variants.ts). An entry is read from its hot copy when it has a
 * valid one, else from its bundle, verified (or as staging made it ready); a corrupt or foreign entry is dropped with one
 * warning and the caller compiles. What to do with the entry found is the caller's business.
 * @module
 */

import { type Bundle, BundleError, openBundle, type OutputRole } from "../bundle/bundle.ts";
import type { CacheCall } from "./call.ts";
import {
  type InputContext,
  matchingOlderVariant,
  variantKeyOf,
  whyInputsDiffer,
} from "./variants.ts";
import { warnOncePerBuild } from "./warn_once.ts";
import type { Cache } from "./cache.ts";
import { readHotCopy } from "./hot_copy.ts";

/** A cached entry ready to restore: outputs as bytes (a bundle) or as files (a hot copy). */
export type EntryContent = Omit<Bundle, "files"> & {
  files: Map<OutputRole, Uint8Array | string>;
};

/** An entry as read from one slot of the store. */
export interface FoundEntry {
  slot: string;
  content: EntryContent;
  /** The verified bundle, when the entry was not read from a hot copy. */
  bundle?: Bundle;
}

/**
 * How a lookup ended: the entry to serve, or why there is none. No reason when nothing was cached;
 * a reason when the entry was corrupt or stale (then `stale`, so that the store keeps the entry in
 * the key's slot as an older variant when it stores this call's).
 */
export type Lookup =
  | { found: FoundEntry }
  | { found?: undefined; reason?: string; stale?: true };

/** What is looked up. */
export interface LookupTarget {
  key: string;
  /** What the entry is, for warnings: `serde 1.0.219`, `serde 1.0.219's build script`. */
  label: string;
  /** This call's roots, environment and digest memo, to check recorded inputs against. */
  context: InputContext;
  /** Why a verified entry is not the kind of entry the caller wants, if it is not. */
  refuse?(content: EntryContent): string | undefined;
}

/** Finds the entry of `target.key` that this call may use. */
export async function lookup(
  target: LookupTarget,
  cache: Cache,
  request: CacheCall,
): Promise<Lookup> {
  const newest = await readEntry(target.key, target, cache, request);
  if (newest === undefined) return {};
  if ("corrupt" in newest) return { reason: "corrupt entry" };
  let found: FoundEntry = newest;
  let staleReason = whyInputsDiffer(newest.content.meta, target.context);
  const older = staleReason ? matchingOlderVariant(newest.content.meta, target.context) : undefined;
  if (older) {
    const slot = variantKeyOf(target.key, older.id);
    const variant = await cache.using(slot, () => readEntry(slot, target, cache, request));
    // The list only says where to look: the stored entry's own record decides.
    if (
      variant && !("corrupt" in variant) && !whyInputsDiffer(variant.content.meta, target.context)
    ) {
      found = variant;
      staleReason = undefined;
    }
  }
  request.phases.done("verified");
  if (staleReason) {
    cache.count({ stale: 1 }, request);
    return { reason: staleReason, stale: true };
  }
  return { found };
}

/** Reads the entry in `slot`: its hot copy if it has a valid one, else its verified bundle. */
async function readEntry(
  slot: string,
  target: LookupTarget,
  cache: Cache,
  request: CacheCall,
): Promise<FoundEntry | { corrupt: true } | undefined> {
  // Made ready ahead of this call (staging.ts): verified and unpacked, or at least fetched.
  const staged = await cache.takeStaged(slot, target.key, request.buildId);
  if (staged && "bundle" in staged && !target.refuse?.(staged.bundle)) {
    request.phases.done("staged");
    return { slot, content: staged.bundle, bundle: staged.bundle };
  }
  const hot = readHotCopy(cache.dir, slot, cache.signingKey !== undefined);
  if (hot && hot.meta.key === target.key && !target.refuse?.(hot)) {
    cache.local.touch(slot);
    request.phases.done("unpacked");
    return { slot, content: hot };
  }
  const bytes = staged && "bytes" in staged ? staged.bytes : await cache.get(slot, request);
  // Fetched ahead of the call (and unpacked by it): staged too, as far as the log goes.
  request.phases.done(staged && "bytes" in staged ? "staged" : "fetched");
  if (bytes === undefined) return undefined;
  try {
    // A variant's bundle was signed for the key it is a variant of.
    const bundle = await openBundle(bytes, target.key, {
      signingKey: cache.signingKey,
      trustedKeys: cache.trustedKeys,
    });
    const refused = target.refuse?.(bundle);
    if (refused) throw new BundleError(refused);
    request.phases.done("unpacked");
    return { slot, content: bundle, bundle };
  } catch (error) {
    if (!(error instanceof BundleError)) throw error;
    warnOncePerBuild(
      request,
      `corrupt-${slot}`,
      `dropping a bad cache entry for ${target.label}: ${error.message}`,
    );
    cache.count({ corrupt: 1 }, request);
    await cache.drop(slot, request);
    return { corrupt: true };
  }
}
