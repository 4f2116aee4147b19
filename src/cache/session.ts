/**
 * The dispatcher's session with its caches: one {@linkcode Cache} per effective configuration,
 * opened on first use and kept. The in-process dispatcher holds a session for one call; the
 * daemon holds one for every build. A call asks it for the cache its build is configured for,
 * or learns why it gets none (a malformed configuration, an unreadable signing key,
 * `CARGO_WARMUP_DISABLE`): the call then runs the compiler as if there were no cache.
 * @module
 */

import type { WarmupConfig } from "../config/config.ts";
import { errorMessage } from "../error_message.ts";
import type { DispatchRequest } from "../dispatch/request.ts";
import { warnOncePerBuild } from "../dispatch/warn_once.ts";
import { BuildConfigs, cacheIdentity } from "./build_config.ts";
import { Cache, type CacheOff } from "./cache.ts";

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
  readonly #caches = new Map<string, Promise<Cache | CacheOff>>();
  readonly #configs: BuildConfigs;
  readonly #longLived: boolean;

  constructor(options: CacheSessionOptions = {}) {
    this.#longLived = options.longLived ?? false;
    this.#configs = new BuildConfigs(this.#longLived);
  }

  /**
   * The cache `request`'s build is configured for, or why it goes without one (warned once per
   * build when the cache is off by a fault).
   */
  async cacheFor(request: DispatchRequest): Promise<ConfiguredCache | WithoutCache> {
    let config: WarmupConfig;
    try {
      config = await this.#configs.configOf(request);
    } catch (error) {
      // A broken configuration costs the cache, not the build.
      const warning = `${errorMessage(error)}; building without the cache`;
      warnOncePerBuild(request, "config", warning);
      return { reason: "cache disabled" };
    }
    const opened = await this.#open(config, request);
    if (!(opened instanceof Cache)) {
      warnOncePerBuild(request, opened.off.topic, opened.off.warning);
      return { reason: "cache disabled" };
    }
    const disabled = request.env.CARGO_WARMUP_DISABLE;
    if (disabled === "1" || disabled === "true") return { reason: "cache disabled", cache: opened };
    return { cache: opened, config };
  }

  #open(config: WarmupConfig, request: DispatchRequest): Promise<Cache | CacheOff> {
    const identity = cacheIdentity(config, request.env);
    let cache = this.#caches.get(identity);
    if (cache === undefined) {
      cache = Cache.open(config, request, this.#longLived);
      this.#caches.set(identity, cache);
      // A cache that could not be opened is tried again by the next request.
      void cache.then((opened) => {
        if (!(opened instanceof Cache)) this.#caches.delete(identity);
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
    const caches = [...this.#caches.values()];
    this.#caches.clear();
    for (const cache of caches) {
      const opened = await cache;
      if (opened instanceof Cache) await opened.close().catch(() => {});
    }
  }
}
