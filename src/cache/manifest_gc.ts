/**
 * `gc` of the team manifests on a shared level: a manifest whose entries are mostly gone from the
 * level (evicted, expired) would make a fresh machine fetch for nothing, and one that cannot be
 * read is nobody's; both are removed. Beyond {@linkcode MAX_MANIFESTS} the oldest go too: a new
 * Cargo.lock makes a new manifest, and the old ones must not pile up for ever.
 * @module
 */

import type { Store } from "../../backends/store.ts";
import { MANIFEST_WORD, peekManifest } from "./manifest.ts";

/** Manifests a shared level keeps at most, the newest. */
export const MAX_MANIFESTS = 500;
/** A manifest with fewer than this share of its entries still stored is removed. */
const MIN_PRESENT_SHARE = 0.5;

/** What {@linkcode pruneManifests} did. */
export interface ManifestPruning {
  kept: number;
  removed: number;
}

/**
 * Removes the manifests in `store` that are unreadable, whose entries are mostly not among
 * `present` (the slots the level holds), or beyond the newest {@linkcode MAX_MANIFESTS}.
 *
 * @example
 * ```ts
 * import { createLocalStore } from "../../backends/local.ts";
 * import { pruneManifests } from "./manifest_gc.ts";
 * import { manifestNameOf, sealManifest } from "./manifest.ts";
 * const store = createLocalStore({ dir: await Deno.makeTempDir() });
 * const shape = { lockfile: "ab", rustc: "cd", cargo: ["build"], env: {} };
 * const entries = [{ key: "a".repeat(64), slot: "a".repeat(64), unit: "serde" }];
 * await store.put(manifestNameOf(shape), await sealManifest({ shape, writtenAt: 1, entries }));
 * console.log(await pruneManifests(store, new Set())); // { kept: 0, removed: 1 }
 * ```
 */
export async function pruneManifests(
  store: Store,
  present: ReadonlySet<string>,
  options: { dryRun?: boolean } = {},
): Promise<ManifestPruning> {
  const useful: Array<{ name: string; writtenAt: number }> = [];
  const doomed: string[] = [];
  for (const { key: name } of await store.listReserved(MANIFEST_WORD)) {
    const bytes = await store.get(name);
    if (bytes === undefined) continue;
    const manifest = await peekManifest(bytes, name).catch(() => undefined);
    const stored = manifest?.entries.filter((entry) => present.has(entry.slot)).length ?? 0;
    if (manifest && stored > 0 && stored >= manifest.entries.length * MIN_PRESENT_SHARE) {
      useful.push({ name, writtenAt: manifest.writtenAt });
    } else {
      doomed.push(name);
    }
  }
  useful.sort((a, b) => b.writtenAt - a.writtenAt);
  doomed.push(...useful.splice(MAX_MANIFESTS).map((manifest) => manifest.name));
  if (!options.dryRun) { for (const name of doomed) await store.delete(name); }
  return { kept: useful.length, removed: doomed.length };
}
