/**
 * The dispatcher's long-lived session with the cache: for each configured cache (one per
 * effective configuration) the index, the store and the memos, opened on first use and kept.
 * The in-process dispatcher holds a session for one request; the daemon holds one for many.
 * Everything here degrades: an unwritable directory, a locked index or a dead remote becomes a
 * warning and a miss, never a failed build.
 * @module
 */

import { openStore } from "../../backends/open_store.ts";
import type { LocalStore } from "../../backends/local.ts";
import type { MirrorSource } from "../../backends/local_mirror.ts";
import type { Store } from "../../backends/store.ts";
import type { TieredStore } from "../../backends/tiered.ts";
import { loadConfig, type WarmupConfig } from "../config/config.ts";
import type { Bundle } from "../bundle/bundle.ts";
import { sha256Hex } from "../digest.ts";
import { createSizeKeeper, MIN_HOT_BYTES } from "../size_cap.ts";
import { errorMessage } from "../error_message.ts";
import { type ArtefactRow, IndexDb, type RustcIdentityRow } from "../index/index_db.ts";
import type { DigestMemo } from "../index/file_digest.ts";
import type { DispatchRequest } from "./request.ts";
import type { RustcIdentityMemo } from "./rustc_identity.ts";
import { warnedThisBuild, warnOncePerBuild } from "./warn_once.ts";

const INDEX_FAULT = "index";
/** After a locked or broken index, a long-lived session tries it again this much later. */
const INDEX_RETRY_MS = 30_000;
/** Environment that can change the configuration of a build. */
const CONFIG_ENV = /^(CARGO_WARMUP_|CARGO_HOME$|HOME$|AWS_REGION$|AWS_DEFAULT_REGION$)/;
/** Environment that S3 credentials come from: a different value is a different store. */
const CREDENTIAL_ENV = /^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE)$/;

/** One configured cache: its directory, index and store, shared by every request that uses it. */
export interface Cache {
  dir: string;
  compressionLevel: number;
  signingKey: Uint8Array | undefined;

  /** The local level, which also keeps the unpacked mirrors. */
  local: LocalStore;
  memo: DigestMemo;
  rustcMemo: RustcIdentityMemo;
  /** The stored bundle, or undefined on a miss or an unreachable store (which warns). */
  get(key: string, request: DispatchRequest): Promise<Uint8Array | undefined>;
  /** Stores a bundle and records it in the index; rejects when the store refuses. */
  put(key: string, bundle: Uint8Array, row: ArtefactRow, request: DispatchRequest): Promise<void>;
  /** Removes a bad bundle, where the store allows. */
  drop(key: string, request: DispatchRequest): Promise<void>;
  /** Counts a hit in the index; the recorded compile time when known. */
  recordHit(key: string, request: DispatchRequest): number | undefined;
  /**
   * Runs `store` (the storing of `key` after a miss) so that {@linkcode Cache.whenStored} can
   * wait for it: in the daemon the next build may ask for the entry while it is being written.
   */
  storing(key: string, store: Promise<void>): Promise<void>;
  /** Settles once no store of `key` is in flight. */
  whenStored(key: string): Promise<void>;
  /** Adds to the status counters (written when the request ends). */
  count(deltas: Record<string, number>): void;
  /**
   * Ends a request: writes what it left pending in the index (a long-lived session a moment
   * later, in a batch) and waits for remote writes.
   */
  endRequest(): Promise<void>;
  /** Writes everything pending in the index now. */
  flush(): void;
  /**
   * Writes the unpacked mirror (hot copy) of a bundle just stored or verified under `slot`
   * (signed exactly when the bundle was), from the outputs this build has, if the entry is large
   * enough to be worth it and a daemon keeps the hot set bounded; without one, hits unpack the
   * bundle: slower, never wrong.
   */
  mirror(slot: string, bundle: Omit<Bundle, "files">, outputs: ReadonlyArray<MirrorSource>): void;
  /** Runs `work` on the entry `key` (reading or writing it); meanwhile it is never evicted. */
  using<T>(key: string, work: () => Promise<T>): Promise<T>;
  /** Settles when pending index writes are done and no eviction pass runs. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** A request's cache and the configuration it was opened for. */
export interface ConfiguredCache {
  cache: Cache;
  config: WarmupConfig;
}

/** Why a request gets no cache at all: said once per build, when a cacheable call meets it. */
export interface CacheOff {
  off: { topic: string; warning: string };
}

/** Options for {@linkcode CacheSession}. */
export interface CacheSessionOptions {
  /**
   * A long-lived session (the daemon): keep digests, identities and each build's configuration
   * in memory, and write the index (hit counts, counters, digests) in batches a moment after the
   * calls that made them, not inside each call. A single call has no use for either.
   */
  longLived?: boolean;
}

/** How long a long-lived session gathers index writes before it commits them in one go. */
const BATCH_MS = 250;

/** The long-lived half of the dispatcher: caches by configuration, opened lazily. */
export class CacheSession {
  readonly #caches = new Map<string, Promise<Cache | CacheOff>>();
  /** Each build's configuration: cargo itself reads its configuration once per build. */
  readonly #configs = new Map<string, Promise<WarmupConfig>>();
  readonly #longLived: boolean;

  constructor(options: CacheSessionOptions = {}) {
    this.#longLived = options.longLived ?? false;
  }

  /**
   * The cache configured for `request`, with the configuration that chose it: its
   * `.cargo/config.toml` files (looked up from where cargo was started) and its `CARGO_WARMUP_*`
   * environment decide, per request.
   */
  async cacheFor(request: DispatchRequest): Promise<ConfiguredCache | CacheOff> {
    let config: WarmupConfig;
    try {
      config = await this.#configFor(request);
    } catch (error) {
      // A broken configuration costs the cache, not the build.
      return {
        off: { topic: "config", warning: `${errorMessage(error)}; building without the cache` },
      };
    }
    const identity = cacheIdentity(config, request.env);
    let cache = this.#caches.get(identity);
    if (cache === undefined) {
      cache = openCache(config, request, this.#longLived);
      this.#caches.set(identity, cache);
      // A cache that could not be opened is tried again by the next request.
      void cache.then((opened) => {
        if ("off" in opened) this.#caches.delete(identity);
      });
    }
    const opened = await cache;
    return "off" in opened ? opened : { cache: opened, config };
  }

  /** The configuration of `request`, once per build in a long-lived session. */
  #configFor(request: DispatchRequest): Promise<WarmupConfig> {
    const load = () =>
      loadConfig({ cwd: request.cargoCwd, env: request.env }).then((loaded) => loaded.config);
    if (!this.#longLived) return load();
    const settings = Object.entries(request.env).filter(([name]) => CONFIG_ENV.test(name)).sort();
    const key = JSON.stringify([request.buildId, request.cargoCwd, settings]);
    let config = this.#configs.get(key);
    if (config === undefined) {
      // Builds come and go: a bounded memo, dropped whole when full.
      if (this.#configs.size >= 64) this.#configs.clear();
      config = load();
      this.#configs.set(key, config);
      // A configuration that failed to load is read again by the next call.
      config.catch(() => this.#configs.delete(key));
    }
    return config;
  }

  /** Writes what is pending in every cache's index and finishes evictions (before status). */
  async settle(): Promise<void> {
    for (const cache of this.#caches.values()) {
      const opened = await cache;
      if (!("off" in opened)) await opened.settle();
    }
  }

  async close(): Promise<void> {
    const caches = [...this.#caches.values()];
    this.#caches.clear();
    for (const cache of caches) {
      const opened = await cache;
      if (!("off" in opened)) await opened.close().catch(() => {});
    }
  }
}

/**
 * Two requests with the same store settings and credentials share one cache (settings of what is
 * cached or warmed, like `workspace`, are each build's own).
 */
function cacheIdentity(config: WarmupConfig, env: Record<string, string>): string {
  const credentials = config.backend === "s3"
    ? Object.entries(env).filter(([name]) => CREDENTIAL_ENV.test(name)).sort()
    : [];
  const { workspace: _, projects: _projects, autoRewarm: _autoRewarm, ...store } = config;
  return sha256Hex(JSON.stringify([store, credentials]));
}

async function openCache(
  config: WarmupConfig,
  firstRequest: DispatchRequest,
  longLived: boolean,
): Promise<Cache | CacheOff> {
  const dir = config.dir;
  let signingKey: Uint8Array | undefined;
  if (config.signingKeyFile !== undefined) {
    try {
      signingKey = await Deno.readFile(config.signingKeyFile);
    } catch (error) {
      // Without the key, unsigned bundles could slip through: use no cache at all.
      const detail = `cannot read signing key "${config.signingKeyFile}": ${errorMessage(error)}`;
      return { off: { topic: "signing-key", warning: `${detail}; building without the cache` } };
    }
  }
  const store = openStore(config, { env: firstRequest.env });
  const local: LocalStore = "local" in store ? store.local : store;
  const index = guardedIndex(dir, firstRequest);

  const pending: Record<string, number> = {};
  const pendingHits: string[] = [];
  let batch: ReturnType<typeof setTimeout> | undefined;
  // Digests are written in one transaction: a miss remembers one for every source file.
  const unwrittenDigests: Array<[string, string, string]> = [];
  const known = new Map<string, { signature: string; digest: string }>();
  const identities = new Map<string, RustcIdentityRow>();
  const inFlight = new Map<string, Promise<void>>();
  // How many calls are reading or writing each entry right now.
  const busy = new Map<string, number>();
  // The daemon keeps the local level under max-size by itself; `gc` is for everyone else.
  const keeper = longLived
    ? createSizeKeeper(local, {
      cap: config.maxSize,
      hotSize: config.hotSize,
      busy: () => new Set(busy.keys()),
      evicted: (remaining) => index.use(undefined, (db) => db.retainArtefacts(remaining), true),
    })
    : undefined;
  const writeDigests = () => {
    if (unwrittenDigests.length === 0) return;
    const rows = unwrittenDigests.splice(0);
    index.use(undefined, (db) => db.rememberFileDigests(rows));
  };
  const storeFor = (request: DispatchRequest): Store =>
    "forBuild" in store
      ? (store as TieredStore).forBuild(
        request.buildId,
        (message) => warnOncePerBuild(request, `remote ${withoutKeys(message)}`, message),
      )
      : store;

  const cache: Cache = {
    dir,
    compressionLevel: config.compressionLevel,
    signingKey,
    local,
    memo: {
      lookup(path, signature) {
        const remembered = known.get(path);
        if (remembered?.signature === signature) return remembered.digest;
        const digest = index.use(undefined, (db) => db.fileDigest(path, signature));
        if (digest !== undefined && longLived) known.set(path, { signature, digest });
        return digest;
      },
      remember(path, signature, digest) {
        if (longLived) known.set(path, { signature, digest });
        unwrittenDigests.push([path, signature, digest]);
      },
      // Other processes (in-process calls of the same build) learn digests from the index; a
      // long-lived session's own calls find them in memory, so its batch writes them.
      flush() {
        if (!longLived) writeDigests();
      },
    },
    rustcMemo: {
      lookup: (probe) =>
        identities.get(probe) ?? index.use(undefined, (db) => db.rustcIdentity(probe)),
      remember(probe, row) {
        identities.set(probe, row);
        index.use(undefined, (db) => db.rememberRustcIdentity(probe, row));
      },
    },

    async get(key, request) {
      index.warnIfUnavailable(request);
      try {
        return await storeFor(request).get(key);
      } catch (error) {
        warnOncePerBuild(
          request,
          `get-${store.location}`,
          `cache store unavailable, compiling normally: ${errorMessage(error)}`,
        );
        return undefined;
      }
    },

    async put(key, bundle, row, request) {
      await storeFor(request).put(key, bundle);
      index.use(request, (db) => db.recordArtefact(row));
      keeper?.stored(bundle.length);
    },

    mirror(slot, bundle, outputs) {
      // Only the daemon keeps the hot set within its budget; a single call would grow it.
      if (!keeper) return;
      try {
        const bytes = outputs.reduce(
          (sum, output) =>
            sum + ("bytes" in output ? output.bytes.length : Deno.statSync(output.path).size),
          0,
        );
        if (bytes < MIN_HOT_BYTES || !keeper.admitsHot(bytes)) return;
        local.writeMirror(slot, bundle, outputs, signingKey ? "signed" : "unsigned");
        keeper.mirrored(bytes);
      } catch {
        // a later hit on this entry unpacks its bundle instead
      }
    },

    async using(key, work) {
      busy.set(key, (busy.get(key) ?? 0) + 1);
      try {
        return await work();
      } finally {
        const left = (busy.get(key) ?? 1) - 1;
        if (left > 0) busy.set(key, left);
        else busy.delete(key);
      }
    },

    async settle() {
      cache.flush();
      await keeper?.idle();
    },

    async drop(key, request) {
      await storeFor(request).delete(key).catch(() => {});
      index.use(request, (db) => db.forgetArtefact(key));
    },

    recordHit(key, request) {
      if (!longLived) return index.use(request, (db) => db.recordHit(key));
      pendingHits.push(key);
      return undefined;
    },

    storing(key, store) {
      const settled = store.catch(() => {}).finally(() => {
        if (inFlight.get(key) === settled) inFlight.delete(key);
      });
      inFlight.set(key, settled);
      return settled;
    },

    whenStored: (key) => inFlight.get(key) ?? Promise.resolve(),

    count(deltas) {
      for (const [name, delta] of Object.entries(deltas)) {
        pending[name] = (pending[name] ?? 0) + delta;
      }
    },

    async endRequest() {
      if (!longLived) cache.flush();
      else batch ??= setTimeout(() => cache.flush(), BATCH_MS);
      if ("flush" in store) await store.flush();
    },

    flush() {
      clearTimeout(batch);
      batch = undefined;
      writeDigests();
      const hits = pendingHits.splice(0);
      if (hits.length > 0) index.use(undefined, (db) => db.recordHits(hits), true);
      const counted = Object.entries(pending);
      if (counted.length > 0) {
        for (const [name] of counted) delete pending[name];
        // Counters are statistics: losing them to a locked index is not worth a warning, and
        // the stderr of cargo's `-vV` and `--print` queries, which also count, is never shown.
        index.use(undefined, (db) => db.addCounters(Object.fromEntries(counted)), true);
      }
    },

    async close() {
      cache.flush();
      if ("flush" in store) await store.flush();
      await store.close().catch(() => {});
      index.close();
    },
  };
  return cache;
}

/** Cache keys in a message would make every warning about another entry a new topic. */
function withoutKeys(message: string): string {
  return message.replace(/[0-9a-f]{64}/g, "…");
}

/**
 * The index, opened lazily and given up when it is locked or broken (warned once per build),
 * then tried again after {@linkcode INDEX_RETRY_MS} by a long-lived session.
 */
function guardedIndex(dir: string, firstRequest: DispatchRequest) {
  let index: IndexDb | undefined;
  let openError: unknown;
  let retryAt = 0;
  // Once one call of this build met a locked or broken index, the others do not wait on it.
  if (warnedThisBuild(firstRequest, INDEX_FAULT)) retryAt = Date.now() + INDEX_RETRY_MS;

  const open = (): IndexDb | undefined => {
    if (index !== undefined || Date.now() < retryAt) return index;
    try {
      index = new IndexDb(dir);
      openError = undefined;
    } catch (error) {
      openError = error;
      retryAt = Date.now() + INDEX_RETRY_MS;
    }
    return index;
  };
  const fault = (request: DispatchRequest | undefined, error: unknown, quiet: boolean) => {
    try {
      index?.close();
    } catch {
      // closing a broken index changes nothing for the build
    }
    index = undefined;
    retryAt = Date.now() + INDEX_RETRY_MS;
    // A fault met without a request to tell (a digest lookup) is told at the next fetch.
    if (!quiet) openError = error;
    if (request && !quiet) {
      warnOncePerBuild(
        request,
        INDEX_FAULT,
        `cache index in ${dir} is locked or broken, building without it: ${errorMessage(error)}`,
      );
    }
  };

  return {
    /** Runs `action` on the index; a fault is warned to `request` and yields undefined. */
    use<T>(
      request: DispatchRequest | undefined,
      action: (db: IndexDb) => T,
      quiet = false,
    ): T | undefined {
      const db = open();
      if (!db) return undefined;
      try {
        return action(db);
      } catch (error) {
        fault(request, error, quiet);
        return undefined;
      }
    },
    // Said at the first lookup, not at open: cargo hides the stderr of its `-vV` and `--print`
    // queries, and a warning spent there would never be seen.
    warnIfUnavailable(request: DispatchRequest) {
      open();
      if (openError === undefined) return;
      if (index !== undefined) return;
      warnOncePerBuild(
        request,
        INDEX_FAULT,
        `cache index in ${dir} unavailable, building without it: ${errorMessage(openError)}`,
      );
    },
    close() {
      try {
        index?.close();
      } catch {
        // as above
      }
      index = undefined;
    },
  };
}
