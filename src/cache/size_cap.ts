/**
 * Keeping a store under its size cap: least recently used entries go first. `gc` does it on
 * demand; the daemon does it by itself, in the background, when what it stored may have pushed
 * the local level over the cap, down to a little under the cap so that it does not run per store.
 * The local level's hot copies have a budget of their own inside the cap (hot_copy.ts): at rest,
 * the cache is its compressed bundles plus a bounded hot set.
 * @module
 */

import { join } from "node:path";
import type { Store } from "../../backends/store.ts";
import { hotBudgetOf, hotCapOf, trimHotCopies } from "./hot_copy.ts";
import { errorMessage } from "../error_message.ts";
import { afterTimeout } from "../timeout.ts";

/** What one pass did to a store. */
export interface EvictionResult {
  before: number;
  after: number;
  evicted: number;
}

/**
 * Deletes the least recently used entries of `store` until it holds at most `cap` bytes, never
 * one in `protect` (entries a call is reading right now).
 *
 * @example
 * ```ts
 * import { createLocalStore } from "../../backends/local.ts";
 * import { evictToCap } from "./size_cap.ts";
 * const store = createLocalStore({ dir: await Deno.makeTempDir() });
 * await store.put("a".repeat(64), new Uint8Array(100));
 * await store.put("b".repeat(64), new Uint8Array(100));
 * console.log((await evictToCap(store, 150)).evicted); // 1
 * ```
 */
export async function evictToCap(
  store: Store,
  cap: number,
  options: { dryRun?: boolean; protect?: ReadonlySet<string> } = {},
): Promise<EvictionResult> {
  const entries = (await store.list()).sort((a, b) => a.lastUsed - b.lastUsed);
  const before = entries.reduce((sum, entry) => sum + entry.size, 0);
  let total = before;
  let evicted = 0;
  for (const entry of entries) {
    if (total <= cap) break;
    if (options.protect?.has(entry.key)) continue;
    if (!options.dryRun) await store.delete(entry.key);
    total -= entry.size;
    evicted++;
  }
  return { before, after: total, evicted };
}

/**
 * The bytes of the index beside the bundles in `dir` (`index.db` with its write-ahead log and
 * shared memory): they are on the same disk, so they count against the cap too.
 *
 * @example
 * ```ts
 * import { indexBytes } from "./size_cap.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/index.db-wal`, new Uint8Array(4096));
 * console.log(indexBytes(dir)); // 4096
 * ```
 */
export function indexBytes(dir: string): number {
  let total = 0;
  for (const name of ["index.db", "index.db-wal", "index.db-shm"]) {
    try {
      total += Deno.statSync(join(dir, name)).size;
    } catch {
      // not there (yet)
    }
  }
  return total;
}

/** A pass brings the store down to this share of the cap, so the next stores fit without one. */
const LOW_WATER = 0.9;
/** Between two looks at the store's size, at least this much time passes. */
const MIN_INTERVAL_MS = 2_000;

/** Options for {@linkcode createSizeKeeper}. */
export interface SizeKeeperOptions {
  /** The cap in bytes. */
  cap: number;
  /** The `hot-size` setting: the hot copies' budget, or undefined for the default share. */
  hotSize: number | undefined;
  /** Keys not to evict now (read by a call in flight). */
  busy: () => ReadonlySet<string>;
  /** After a pass that evicted something (the index forgets those entries). */
  evicted?: (remaining: ReadonlySet<string>) => void;
  /** Where a failed pass is told. */
  log?: (message: string) => void;
}

/** Keeps one store under its cap by itself; {@linkcode SizeKeeper.stored} after each store. */
export interface SizeKeeper {
  /** Says `bytes` were just stored; may start a pass in the background. */
  stored(bytes: number): void;
  /**
   * Whether a hot copy of `bytes` fits the hot budget now. Copies are admitted while there is
   * room rather than written and evicted least recently used: a build reads its crates in the
   * same order every time, and that scan would evict each copy just before its next use.
   */
  admitsHot(bytes: number): boolean;
  /** Says a hot copy of `bytes` was just written. */
  hotCopyWritten(bytes: number): void;
  /** Settles when no pass is running. */
  idle(): Promise<void>;
}

/**
 * Watches what is stored in `store` and evicts least recently used entries when the store may
 * have passed its cap: the size is learnt from a listing (which also counts the hot copies),
 * then kept up to date from what is stored, and looked at again at most every two seconds.
 */
export function createSizeKeeper(store: Store, options: SizeKeeperOptions): SizeKeeper {
  let knownBundles: number | undefined;
  let knownHot = 0;
  let knownIndex = 0;
  let addedSinceLook = 0;
  let hotAddedSinceLook = 0;
  let lastLook = 0;
  let running: Promise<void> | undefined;
  /** Cancels the pass that waits for the interval to pass, if one waits. */
  let later: (() => void) | undefined;
  const hotBudget = () => hotCapOf(options.hotSize, (knownBundles ?? 0) + addedSinceLook);

  const pass = async () => {
    try {
      lastLook = Date.now();
      addedSinceLook = 0;
      hotAddedSinceLook = 0;
      knownIndex = indexBytes(store.location);
      const result = await evictToCap(store, options.cap * LOW_WATER - knownIndex, {
        protect: options.busy(),
      });
      const entries = await store.list();
      if (result.evicted > 0) options.evicted?.(new Set(entries.map((entry) => entry.key)));
      const { bundleBytes, hotCap } = hotBudgetOf(options.hotSize, entries);
      knownBundles = bundleBytes;
      // Over budget only when the budget shrank (evicted bundles, a lower hot-size).
      knownHot = trimHotCopies(store.location, entries, hotCap, { protect: options.busy() }).after;
    } catch (error) {
      options.log?.(`cannot keep ${store.location} under its cap: ${errorMessage(error)}`);
    }
  };
  const start = () => {
    later = undefined;
    running ??= pass().finally(() => {
      running = undefined;
      // Stored meanwhile: look again.
      if (addedSinceLook > 0 || hotAddedSinceLook > 0) check();
    });
  };
  const check = () => {
    if (running || later) return;
    const estimate = knownBundles === undefined
      ? Infinity
      : knownBundles + knownHot + knownIndex + addedSinceLook + hotAddedSinceLook;
    if (estimate <= options.cap && knownHot + hotAddedSinceLook <= hotBudget()) return;
    const wait = lastLook + MIN_INTERVAL_MS - Date.now();
    if (wait <= 0) start();
    else later = afterTimeout(wait, start);
  };

  return {
    stored(bytes) {
      addedSinceLook += bytes;
      check();
    },
    admitsHot(bytes) {
      if (knownBundles === undefined) {
        check(); // the first look tells what is on disk
        // An explicit budget is known before the look: admit within it (the look trims what
        // turns out to be over); a share of the bundles' bytes is not.
        return options.hotSize !== undefined && hotAddedSinceLook + bytes <= options.hotSize;
      }
      return knownHot + hotAddedSinceLook + bytes <= hotBudget();
    },
    hotCopyWritten(bytes) {
      hotAddedSinceLook += bytes;
      check();
    },
    async idle() {
      while (running || later) {
        if (later) {
          later();
          start();
        }
        await running;
      }
    },
  };
}
