/**
 * The dispatcher's session with its caches: one {@linkcode Cache} per effective configuration,
 * opened on first use. The in-process dispatcher holds a session for one call; the daemon holds
 * one for every build, for weeks. A call asks it for the cache its build is configured for, or
 * learns why it gets none (a malformed configuration, an unreadable signing key,
 * `CARGO_WARMUP_DISABLE`): the call then runs the compiler as if there were no cache.
 *
 * A long-lived session follows its caches on disk and stays bounded: the first call of each build
 * checks that the cache's directory and index are still the ones it opened (a cache directory
 * removed, restored or replaced is opened anew, the old one closed once no call uses it), and
 * {@linkcode CacheSession.sweep} closes caches idle for a while, and the least recently used ones
 * beyond a few.
 * @module
 */

import { cacheDisabled } from "../config/settings.ts";
import type { WarmupConfig } from "../config/warmup_config.ts";
import { errorMessage } from "../error_message.ts";
import type { CacheCall } from "./call.ts";
import { warnOncePerBuild } from "./warn_once.ts";
import { BuildConfigs, cacheIdentity } from "./build_config.ts";
import { Cache, type CacheOff } from "./cache.ts";
import { HeldStores } from "./settled_store.ts";
import { Builds } from "./build_of.ts";

/** A call's cache and the configuration it was opened for. */
export interface ConfiguredCache {
  cache: Cache;
  config: WarmupConfig;
}

/** Why a call goes without the cache; `cache` is there to count it, when one is open. */
export interface WithoutCache {
  reason: string;
  cache?: Cache;
}

/** A cache no call has used for this long is closed (its index, its remote connections). */
const IDLE_CLOSE_MS = 10 * 60 * 1000;
/** At most this many caches stay open while idle: more are closed, least recently used first. */
const MAX_OPEN_CACHES = 4;

/** One open cache, as `daemon status` shows it. */
export interface OpenCacheInfo {
  dir: string;
  location: string;
  /** Calls using it now. */
  active: number;
  idleSeconds: number;
  /** Replaced on disk: closed as soon as no call uses it. */
  retired: boolean;
}

/** Options for {@linkcode CacheSession}. */
export interface CacheSessionOptions {
  /**
   * A long-lived session (the daemon): keep each build's configuration, and open caches that keep
   * digests in memory and write the index in batches. A single call has no use for either.
   */
  longLived?: boolean;
}

/** The caches of a dispatcher, by configuration, opened lazily. */
export class CacheSession {
  /** Caches by configuration, while they open and once open. */
  readonly #caches = new Map<string, Promise<Cache | CacheOff>>();
  /** The same, once open. */
  readonly #opened = new Map<string, Cache>();
  /** Caches replaced on disk, closed once quiet. */
  readonly #retired = new Set<Cache>();
  /** Which cache each call holds, to let go of it when the call ends. */
  readonly #held = new WeakMap<CacheCall, Cache>();
  readonly #configs: BuildConfigs;
  readonly #longLived: boolean;
  /** Stores held back until the builds are over (settled_store.ts). */
  readonly heldStores = new HeldStores();
  /** What is known of the builds this session serves (each call reaches it). */
  readonly builds = new Builds();

  constructor(options: CacheSessionOptions = {}) {
    this.#longLived = options.longLived ?? false;
    this.#configs = new BuildConfigs(this.#longLived);
  }

  /**
   * The cache `request`'s build is configured for, or why it goes without one (warned once per
   * build when the cache is off by a fault).
   */
  async cacheFor(request: CacheCall): Promise<ConfiguredCache | WithoutCache> {
    let config: WarmupConfig;
    try {
      config = await this.#configs.configOf(request);
    } catch (error) {
      // A broken configuration costs the cache, not the build.
      const warning = `${errorMessage(error)}; building without the cache`;
      warnOncePerBuild(request, "config", warning);
      return { reason: "cache disabled" };
    }
    const identity = cacheIdentity(config, request.env);
    let opened = await this.#open(identity, config, request);
    // Once per build: a cache directory removed or replaced since is opened anew.
    while (
      opened instanceof Cache &&
      (opened.closed || opened.firstCallOf(request.buildId) && !opened.stillOnDisk())
    ) {
      this.#retire(identity, opened);
      opened = await this.#open(identity, config, request);
    }
    if (!(opened instanceof Cache)) {
      warnOncePerBuild(request, opened.off.topic, opened.off.warning);
      return { reason: "cache disabled" };
    }
    opened.enter();
    this.#held.set(request, opened);
    if (cacheDisabled(request.env)) return { reason: "cache disabled", cache: opened };
    // The first call of a build starts making the rest of it ready.
    opened.stageFor(request);
    return { cache: opened, config };
  }

  /** Ends `request`'s use of its cache (every call that asked for one, when it is done). */
  release(request: CacheCall): void {
    const cache = this.#held.get(request);
    if (cache === undefined) return;
    this.#held.delete(request);
    cache.leave();
    if (this.#retired.has(cache)) this.#closeRetired();
  }

  /**
   * Closes what a long-lived session no longer needs: replaced caches once no call uses them,
   * caches idle for {@linkcode IDLE_CLOSE_MS} or whose directory is gone, and the least recently
   * used quiet ones beyond {@linkcode MAX_OPEN_CACHES}. The next call that needs one opens it
   * again.
   */
  async sweep(now = Date.now()): Promise<void> {
    this.#closeRetired();
    const open = [...this.#opened].sort(([, a], [, b]) => b.lastUsed - a.lastUsed);
    for (const [rank, [identity, cache]] of open.entries()) {
      const idle = now - cache.lastUsed > IDLE_CLOSE_MS;
      // A directory removed under an idle cache: let go of its deleted files now.
      if (cache.quiet && (idle || rank >= MAX_OPEN_CACHES || !cache.stillOnDisk())) {
        this.#forget(identity, cache);
        await cache.close().catch(() => {});
      }
    }
  }

  /** The caches open now, for `daemon status`. */
  openCaches(now = Date.now()): OpenCacheInfo[] {
    const describe = (cache: Cache, retired: boolean) => ({
      dir: cache.dir,
      location: cache.location,
      active: cache.active,
      idleSeconds: Math.round((now - cache.lastUsed) / 1000),
      retired,
    });
    return [
      ...[...this.#opened.values()].map((cache) => describe(cache, false)),
      ...[...this.#retired].map((cache) => describe(cache, true)),
    ];
  }

  /** Takes a cache replaced on disk out of use; it is closed once no call holds it. */
  #retire(identity: string, cache: Cache): void {
    this.#forget(identity, cache);
    if (!cache.closed) this.#retired.add(cache);
    this.#closeRetired();
  }

  /** Drops `cache` from the open ones, unless another call has opened its successor already. */
  #forget(identity: string, cache: Cache): void {
    if (this.#opened.get(identity) !== cache) return;
    this.#opened.delete(identity);
    this.#caches.delete(identity);
  }

  #closeRetired(): void {
    for (const cache of this.#retired) {
      if (!cache.quiet) continue;
      this.#retired.delete(cache);
      void cache.close().catch(() => {});
    }
  }

  #open(
    identity: string,
    config: WarmupConfig,
    request: CacheCall,
  ): Promise<Cache | CacheOff> {
    let cache = this.#caches.get(identity);
    if (cache === undefined) {
      cache = Cache.open(config, request, this.#longLived);
      this.#caches.set(identity, cache);
      const opening = cache;
      void cache.then((opened) => {
        if (this.#caches.get(identity) !== opening) return;
        // A cache that could not be opened is tried again by the next request.
        if (opened instanceof Cache) this.#opened.set(identity, opened);
        else this.#caches.delete(identity);
      });
    }
    return cache;
  }

  /** Writes what is pending in every cache's index and finishes evictions (before status). */
  async settle(): Promise<void> {
    for (const cache of this.#caches.values()) {
      const opened = await cache;
      if (opened instanceof Cache) await opened.settle();
    }
  }

  async close(): Promise<void> {
    this.heldStores.close();
    const caches = [...this.#caches.values(), ...this.#retired];
    this.#caches.clear();
    this.#opened.clear();
    this.#retired.clear();
    for (const cache of caches) {
      const opened = await cache;
      if (opened instanceof Cache) await opened.close().catch(() => {});
    }
  }
}
