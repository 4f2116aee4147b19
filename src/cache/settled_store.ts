/**
 * Stores of a developer's edit loop, held back until the builds are over: an incremental compile
 * of a workspace library is stored by the daemon only once no build that called it is running and
 * none has called for a moment, and only its latest compile per crate and target directory. So
 * the loop pays nothing next to rustc, the cache gains at most one entry per crate per pause, and
 * the state a developer stopped at (what a new worktree of it needs) is stored. A lookup of the
 * same key (a second worktree at that commit) stores it at once, before it looks.
 * @module
 */

import type { Cache } from "./cache.ts";
import type { CacheCall } from "./call.ts";
import { isRunning } from "../processes.ts";

/** How long every build must have been gone, with no call since, before the daemon stores. */
const QUIET_MS = 5000;
const TICK_MS = 250;

interface PendingStore {
  key: string;
  cache: Cache;
  /** Stat signatures of the outputs and dep-info as the compile left them. */
  files: Map<string, string>;
  store(): Promise<void>;
  /** The call that compiled it: a store found torn is dropped through its view of the levels. */
  request: CacheCall;
}

/** A store as the held-back stores know it. */
export interface HeldStore {
  /** The entry's cache key. */
  key: string;
  /** Where it waits: one per crate and target dir (a crate compiled again replaces its store). */
  slot: string;
  /** The files the compile left (outputs, dep-info): written only if they are unchanged then. */
  files: ReadonlyArray<string>;
  /**
   * Whether it waits for the builds to be over: incremental compiles of workspace libraries (a
   * developer's edit loop), in the daemon, which outlives the build. CI's non-incremental
   * compiles are stored at once: its container may go with the build.
   */
  waits: boolean;
}

/**
 * A session's held-back stores (the daemon's: only its stores wait). A store being written is
 * one of its cache's stores in flight ({@linkcode Cache.storing}), which a lookup waits for.
 */
export class HeldStores {
  /** By slot: a crate compiled again replaces its older pending store. */
  readonly #pending = new Map<string, PendingStore>();
  /** Builds (cargo's pids) that called while stores were pending. */
  readonly #builds = new Set<string>();
  #quietSince: number | undefined;
  #ticker: ReturnType<typeof setInterval> | undefined;

  /**
   * Runs `store` (the store of a successful compile) now, or, when it waits, once the builds are
   * over, if the compile's files are unchanged then.
   */
  storeWhenSettled(
    held: HeldStore,
    cache: Cache,
    request: CacheCall,
    store: () => Promise<void>,
  ): Promise<void> {
    if (!held.waits) return store();
    const files = new Map<string, string>();
    for (const path of held.files) {
      const signature = signatureOf(path);
      if (signature === undefined) return Promise.resolve();
      files.set(path, signature);
    }
    this.#pending.set(held.slot, { key: held.key, cache, files, store, request });
    this.#builds.add(request.buildId);
    if (this.#ticker === undefined) {
      this.#ticker = setInterval(() => this.#tick(), TICK_MS);
      Deno.unrefTimer(this.#ticker);
    }
    return Promise.resolve();
  }

  /**
   * A call of build `buildId` is about to look `held.key` up: it counts as activity; a store of
   * the same key held back for another target dir (a second worktree at that commit) is written
   * first, so that the lookup finds it; and one for this very crate and target dir is dropped:
   * cargo compiles it again only because something it read changed, so that entry would never be
   * served.
   */
  async beforeLookup(held: HeldStore, buildId: string): Promise<void> {
    this.#quietSince = undefined;
    if (this.#pending.size > 0) this.#builds.add(buildId);
    if (this.#pending.get(held.slot)?.key === held.key) this.#pending.delete(held.slot);
    for (const [slot, store] of this.#pending) {
      if (store.key !== held.key) continue;
      this.#pending.delete(slot);
      await store.cache.storing(store.key, writeStore(store));
    }
  }

  /** Writes every pending store now, one after another; resolves when they are done. */
  async storeAll(): Promise<void> {
    let chain = Promise.resolve();
    for (const store of this.#pending.values()) {
      // In flight from now: a lookup of a store still queued waits for it too.
      chain = store.cache.storing(store.key, chain.then(() => writeStore(store)));
    }
    this.#pending.clear();
    await chain;
  }

  /** Forgets what is pending and stops watching the builds (the session is closing). */
  close(): void {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    this.#pending.clear();
    this.#builds.clear();
  }

  #tick(): void {
    if (this.#pending.size === 0) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
      this.#builds.clear();
      return;
    }
    for (const build of this.#builds) if (!isRunning(build)) this.#builds.delete(build);
    if (this.#builds.size > 0) return;
    // From the first tick that finds every build gone; a call since starts the wait again.
    this.#quietSince ??= Date.now();
    if (Date.now() - this.#quietSince >= QUIET_MS) void this.storeAll();
  }
}

/** Stores one, if what its compile wrote is still there as written, into a cache still open. */
async function writeStore(store: PendingStore): Promise<void> {
  if (store.cache.closed || !store.cache.stillOnDisk()) return;
  for (const [path, signature] of store.files) {
    if (signatureOf(path) !== signature) return;
  }
  store.cache.enter();
  try {
    await store.store();
    // Files replaced while they were read (a build compiling the crate again meanwhile) may have
    // made an entry of two compiles: it is dropped, never served.
    if ([...store.files].some(([path, signature]) => signatureOf(path) !== signature)) {
      await store.cache.drop(store.key, store.request);
    }
    await store.cache.endRequest();
  } catch {
    // A store is worth having, never a failure: the crate is compiled again where it misses.
  } finally {
    store.cache.leave();
  }
}

/**
 * What changes when a file is written again or replaced. Not its ctime: cargo hard-links a
 * member's library into `target/debug/` right after rustc, which changes it but not the file.
 */
function signatureOf(path: string): string | undefined {
  try {
    const info = Deno.statSync(path);
    return `${info.size}:${info.mtime?.getTime()}:${info.ino}`;
  } catch {
    return undefined;
  }
}
