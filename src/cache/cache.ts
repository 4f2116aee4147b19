/**
 * One configured cache, as every hit and miss uses it: its store levels, its index (hit counts,
 * counters, digest and rustc memos), the entries being read or written right now, and its hot
 * copies. A single call opens one for itself; the daemon keeps one per configuration for many
 * builds. Everything here degrades: an unwritable directory, a locked index or a dead remote
 * becomes a warning and a miss, never a failed build.
 * @module
 */

import { openStore } from "../../backends/open_store.ts";
import type { LocalStore } from "../../backends/local.ts";
import { hasHotCopy, type HotCopySource, MIN_HOT_BYTES, writeHotCopy } from "./hot_copy.ts";
import type { StoreLevels } from "../../backends/levels.ts";
import type { Store } from "../../backends/store.ts";
import { WARMING_ENV } from "../config/config.ts";
import type { WarmupConfig } from "../config/warmup_config.ts";
import type { Bundle } from "../bundle/bundle.ts";
import { BundleError, openEnvelope, verifySigner } from "../bundle/envelope.ts";
import {
  type BundleSigner,
  type CacheKeys,
  readCacheKeys,
  type TrustedKeys,
} from "../bundle/keys.ts";
import { createSizeKeeper, type SizeKeeper } from "./size_cap.ts";
import { errorMessage } from "../error_message.ts";
import type { ArtefactRow, RustcIdentityMemo, RustcIdentityRow } from "../index/index_db.ts";
import type { DigestMemo } from "../index/file_digest.ts";
import type { CacheCall } from "./call.ts";
import { warnOncePerBuild } from "./warn_once.ts";
import { fileIdentity, type GuardedIndex, guardedIndex } from "./guarded_index.ts";
import type { JournalCall } from "../index/journal_tables.ts";
import { type Prediction, type StagedEntry, Stager } from "./staging.ts";
import { type FetchedManifest, fetchManifest, TeamManifests } from "./team_manifests.ts";
import type { BuildShape } from "./build_shape.ts";
import { afterTimeout } from "../timeout.ts";

/** Counters of a warm-up's own calls start with this (see {@linkcode Cache.count}). */
export const WARM_COUNTER_PREFIX = "warm:";

/** Why a request gets no cache at all: said once per build, when a cacheable call meets it. */
export interface CacheOff {
  off: { topic: string; warning: string };
}

/**
 * Fetches in flight at once when staging from a team manifest: every entry comes over the
 * network, and a Redis connection pipelines them, an S3 or HTTP server answers them in parallel.
 */
export const MANIFEST_PARALLEL_FETCHES = 16;

/** How long a long-lived cache gathers index writes before it commits them in one go. */
const BATCH_MS = 250;
/** A cache remembers this many builds it has checked against the disk, then starts over. */
const MAX_CHECKED_BUILDS = 256;

/** One configured cache: its directory, levels and index, shared by every request that uses it. */
export class Cache {
  readonly dir: string;
  readonly compressionLevel: number;
  /** A shared HMAC secret bundles are signed and checked with. */
  readonly signingKey: Uint8Array | undefined;
  /** The Ed25519 private key stored bundles are signed with (a trusted writer's). */
  readonly signer: BundleSigner | undefined;
  /** Ed25519 public keys: a bundle signed with Ed25519 is served only when one of them signed it. */
  readonly trustedKeys: TrustedKeys | undefined;
  /** The local level (the hot copies live beside its bundles: hot_copy.ts). */
  readonly local: LocalStore;
  /** File digests by path and stat signature (in memory too, for a long-lived cache). */
  readonly memo: DigestMemo;
  readonly rustcMemo: RustcIdentityMemo;

  readonly #levels: StoreLevels;
  readonly #index: GuardedIndex;
  /**
   * A long-lived cache (the daemon's) keeps digests and identities in memory and writes the
   * index in batches a moment after the calls that made them; a single call has no use for
   * either. Only a long-lived cache keeps the local level within its size cap and hot budget.
   */
  readonly #longLived: boolean;
  readonly #keeper: SizeKeeper | undefined;
  /** Makes a starting build's entries ready ahead of it (long-lived caches only). */
  readonly #stager: Stager | undefined;
  /** Team manifests on the shared level (long-lived caches with one only). */
  readonly #manifests: TeamManifests | undefined;
  /** Why a build's team manifest was refused, said at the build's next call. */
  readonly #manifestRefusals = new Map<string, string>();
  readonly #pendingCounts: Record<string, number> = {};
  readonly #pendingHits: string[] = [];
  readonly #pendingCalls: JournalCall[] = [];
  // Digests are written in one transaction: a miss remembers one for every source file.
  readonly #unwrittenDigests: Array<[string, string, string]> = [];
  /** Cancels the batch's timer, while one waits. */
  #batch: (() => void) | undefined;
  /** Stores being written, by key (see {@linkcode Cache.storing}). */
  readonly #inFlight = new Map<string, Set<Promise<void>>>();
  /** How many calls are reading or writing each entry right now. */
  readonly #busy = new Map<string, number>();
  /** The directory this cache uses, as opened (device and inode), to notice it replaced. */
  #dirIdentity: string | undefined;
  /** The builds that have checked this cache against the disk (see `firstCallOf`). */
  readonly #checkedBuilds = new Set<string>();
  /** Calls holding this cache now (see {@linkcode Cache.enter}). */
  #active = 0;
  #lastUsed = Date.now();
  #closed = false;

  /**
   * Opens the cache `config` names for `firstRequest`'s build; without its signing key or trusted
   * keys (which would let unsigned bundles slip through) there is no cache at all. With trusted
   * keys, what the shared level serves is checked before it is used or kept on local disk (signed
   * by one of them), and a reader without an Ed25519 key of its own leaves the shared level alone:
   * its misses stay on local disk.
   */
  static async open(
    config: WarmupConfig,
    firstRequest: CacheCall,
    longLived: boolean,
  ): Promise<Cache | CacheOff> {
    let keys: CacheKeys = {};
    if (config.signingKeyFile !== undefined || config.trustedKeys !== undefined) {
      try {
        keys = await readCacheKeys(config);
      } catch (error) {
        const warning = `${errorMessage(error)}; building without the cache`;
        return { off: { topic: "signing-key", warning } };
      }
    }
    const { trustedKeys, signingKey } = keys;
    const readOnly = config.readOnly || (config.trustedKeys !== undefined && !keys.signer);
    const levels = openStore({ ...config, readOnly }, {
      env: firstRequest.env,
      ...(trustedKeys && {
        admitRemote: (_slot: string, bytes: Uint8Array) =>
          verifySigner(bytes, { trustedKeys, signingKey }).then(
            () => undefined,
            (error) => error instanceof BundleError ? error.message : Promise.reject(error),
          ),
      }),
    });
    const index = guardedIndex(config.dir, firstRequest);
    const cache = new Cache(config, levels, index, keys, longLived);
    cache.firstCallOf(firstRequest.buildId);
    return cache;
  }

  private constructor(
    config: WarmupConfig,
    levels: StoreLevels,
    index: GuardedIndex,
    keys: CacheKeys,
    longLived: boolean,
  ) {
    this.dir = config.dir;
    this.compressionLevel = config.compressionLevel;
    this.signingKey = keys.signingKey;
    this.signer = keys.signer;
    this.trustedKeys = keys.trustedKeys;
    this.local = levels.local;
    this.#levels = levels;
    this.#index = index;
    this.#longLived = longLived;
    this.#keeper = longLived
      ? createSizeKeeper(levels.local, {
        cap: config.maxSize,
        hotSize: config.hotSize,
        busy: () => new Set(this.#busy.keys()),
        evicted: (remaining) => index.use(undefined, (db) => db.retainArtefacts(remaining), true),
      })
      : undefined;
    this.memo = this.#digestMemo();
    this.rustcMemo = this.#rustcMemo();
    this.#manifests = longLived && levels.remote !== undefined
      ? new TeamManifests({
        remote: () => levels.openRemote(),
        writable: !levels.readOnly,
        flush: () => levels.flush(),
        keys: this.#manifestKeys,
        rustcMemo: this.rustcMemo,
      })
      : undefined;
    this.#stager = longLived ? this.#newStager() : undefined;
    this.#dirIdentity = fileIdentity(config.dir);
  }

  /**
   * Whether `buildId` calls on this cache for the first time (and should check it against the
   * disk); each build once, the build that opened it never.
   */
  firstCallOf(buildId: string): boolean {
    if (this.#checkedBuilds.has(buildId)) return false;
    if (this.#checkedBuilds.size >= MAX_CHECKED_BUILDS) this.#checkedBuilds.clear();
    this.#checkedBuilds.add(buildId);
    return true;
  }

  /**
   * Whether the directory and index this cache opened are still the ones on disk: `rm -rf` of
   * the cache directory, a directory restored or moved into place, or a replaced index make them
   * another, and a cache that went on would write to deleted files. Two stats.
   */
  stillOnDisk(): boolean {
    const now = fileIdentity(this.dir);
    // Opened before the directory existed: the first directory seen is its own.
    this.#dirIdentity ??= now;
    return now === this.#dirIdentity && this.#index.stillOnDisk();
  }

  /** A call starts using this cache; {@linkcode Cache.leave} when it is done. */
  enter(): void {
    this.#active++;
    this.#lastUsed = Date.now();
  }

  leave(): void {
    this.#active = Math.max(0, this.#active - 1);
    this.#lastUsed = Date.now();
  }

  /** No call holds it, no entry is being read or written: it may be closed. */
  get quiet(): boolean {
    return this.#active === 0 && this.#busy.size === 0 && this.#inFlight.size === 0;
  }

  /** When a call last started or ended on this cache (ms since the epoch). */
  get lastUsed(): number {
    return this.#lastUsed;
  }

  /** Calls holding this cache now. */
  get active(): number {
    return this.#active;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Where the levels live, for `daemon status`. */
  get location(): string {
    return this.#levels.location;
  }

  /** The stored bundle, or undefined on a miss or an unreachable store (which warns). */
  async get(key: string, request: CacheCall): Promise<Uint8Array | undefined> {
    this.#index.warnIfUnavailable(request);
    try {
      return await this.#levelsFor(request).get(key);
    } catch (error) {
      warnOncePerBuild(
        request,
        `get-${this.#levels.location}`,
        `cache store unavailable, compiling normally: ${errorMessage(error)}`,
      );
      return undefined;
    }
  }

  /** Stores a bundle and records it in the index; rejects when the store refuses. */
  async put(
    key: string,
    bundle: Uint8Array,
    row: ArtefactRow,
    request: CacheCall,
  ): Promise<void> {
    await this.#levelsFor(request).put(key, bundle);
    this.#index.use(request, (db) => db.recordArtefact(row));
    this.#keeper?.stored(bundle.length);
  }

  /** Removes a bad bundle, where the store allows. */
  async drop(key: string, request: CacheCall): Promise<void> {
    await this.#levelsFor(request).delete(key).catch(() => {});
    this.#index.use(request, (db) => db.forgetArtefact(key));
  }

  /** Counts a hit in the index; resolves to the recorded compile time when known. */
  recordHit(key: string, request: CacheCall): number | undefined {
    if (!this.#longLived) return this.#index.use(request, (db) => db.recordHit(key));
    this.#pendingHits.push(key);
    return undefined;
  }

  /**
   * Adds to the status counters (written when the request ends). A warm-up's calls count apart
   * (`warm:` names): `status`'s hits and misses are the user's builds'.
   */
  count(deltas: Record<string, number>, request: CacheCall): void {
    const prefix = request.env[WARMING_ENV] ? WARM_COUNTER_PREFIX : "";
    for (const [name, delta] of Object.entries(deltas)) {
      const counter = prefix + name;
      this.#pendingCounts[counter] = (this.#pendingCounts[counter] ?? 0) + delta;
    }
  }

  /**
   * Starts making ready what `request`'s build will probably ask for (staging.ts), once per build;
   * a warm-up's builds are not predicted.
   */
  stageFor(request: CacheCall): Promise<void> {
    const refused = this.#manifestRefusals.get(request.buildId);
    if (refused !== undefined) {
      this.#manifestRefusals.delete(request.buildId);
      warnOncePerBuild(request, "manifest", refused);
    }
    if (!this.#stager || request.env[WARMING_ENV]) return Promise.resolve();
    this.#manifests?.begin(request);
    return this.#stager.startFor(request);
  }

  /**
   * The team manifest of `shape` on the shared level, verified as staging's is, for a command that
   * fetches a build's entries ahead of it (`prepare`); undefined without a shared level or one.
   */
  async teamManifestOf(shape: BuildShape): Promise<FetchedManifest | undefined> {
    const remote = await this.#levels.openRemote().catch(() => undefined);
    return remote && await fetchManifest(remote, shape, this.#manifestKeys);
  }

  /** What team manifests are signed with (a writer's) and checked with (every reader's). */
  get #manifestKeys() {
    return { signer: this.signer, signingKey: this.signingKey, trustedKeys: this.trustedKeys };
  }

  /**
   * What staging made ready of `slot` for `key` (taken out) for a call of build `buildId`: its
   * bundle, or its fetched bytes.
   */
  takeStaged(slot: string, key: string, buildId: string): Promise<StagedEntry | undefined> {
    return this.#stager?.take(slot, key, buildId) ?? Promise.resolve(undefined);
  }

  /** Adds a call of `request` to the build journal (written with the counters). */
  journal(call: JournalCall, request: CacheCall): void {
    this.#pendingCalls.push(call);
    this.#manifests?.used(request, call);
  }

  /**
   * Runs `store` (the storing of `key` after a miss) so that {@linkcode Cache.whenStored} can
   * wait for it: in the daemon the next build may ask for the entry while it is being written.
   */
  storing(key: string, store: Promise<void>): Promise<void> {
    const settled: Promise<void> = store.catch(() => {}).finally(() => {
      const writes = this.#inFlight.get(key);
      writes?.delete(settled);
      if (writes?.size === 0) this.#inFlight.delete(key);
    });
    const writes = this.#inFlight.get(key) ?? new Set();
    writes.add(settled);
    this.#inFlight.set(key, writes);
    return settled;
  }

  /** Settles once no store of `key` in flight now is (a held-back one runs a miss's inside it). */
  whenStored(key: string): Promise<void> {
    const writes = this.#inFlight.get(key);
    return writes === undefined ? Promise.resolve() : Promise.all(writes).then(() => {});
  }

  /** Runs `work` on the entry `key` (reading or writing it); meanwhile it is never evicted. */
  async using<T>(key: string, work: () => Promise<T>): Promise<T> {
    this.#busy.set(key, (this.#busy.get(key) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = (this.#busy.get(key) ?? 1) - 1;
      if (left > 0) this.#busy.set(key, left);
      else this.#busy.delete(key);
    }
  }

  /**
   * Writes the hot copy of a bundle just stored or verified under `slot` (signed exactly when the
   * bundle was), from the outputs this build has, if it fits the hot budget: linked from the
   * build's files it costs nothing while they stay; written from bytes only when large enough to
   * be worth it. Only a long-lived cache keeps the hot set bounded, so only it writes them;
   * without one, hits unpack the bundle: slower, never wrong.
   */
  writeHotCopy(
    slot: string,
    bundle: Omit<Bundle, "files">,
    outputs: ReadonlyArray<HotCopySource>,
  ): void {
    const keeper = this.#keeper;
    if (!keeper) return;
    try {
      // Linked from the build's files, a hot copy costs nothing (only copies from bytes do).
      const bytes = outputs.reduce(
        (sum, output) => sum + ("path" in output ? 0 : output.bytes.length),
        0,
      );
      if (bytes > 0 && (bytes < MIN_HOT_BYTES || !keeper.admitsHot(bytes))) return;
      const trust = this.signingKey ? "signed" : "unsigned";
      keeper.hotCopyWritten(writeHotCopy(this.dir, slot, bundle, outputs, trust));
    } catch {
      // a later hit on this entry unpacks its bundle instead
    }
  }

  /**
   * Ends a request: writes what it left pending in the index (a long-lived cache a moment later,
   * in a batch) and waits for remote writes.
   */
  async endRequest(): Promise<void> {
    if (!this.#longLived) this.flush();
    else this.#batch ??= afterTimeout(BATCH_MS, () => this.flush());
    await this.#levels.flush();
  }

  /** Writes everything pending in the index now (never into an index deleted meanwhile). */
  flush(): void {
    this.#batch?.();
    this.#batch = undefined;
    this.#index.reopenIfReplaced();
    this.#writeDigests();
    const hits = this.#pendingHits.splice(0);
    if (hits.length > 0) this.#index.use(undefined, (db) => db.recordHits(hits), true);
    const counted = Object.entries(this.#pendingCounts);
    if (counted.length > 0) {
      for (const [name] of counted) delete this.#pendingCounts[name];
      // Counters are statistics: losing them to a locked index is not worth a warning, and the
      // stderr of cargo's `-vV` and `--print` queries, which also count, is never shown.
      this.#index.use(undefined, (db) => db.addCounters(Object.fromEntries(counted)), true);
    }
    const calls = this.#pendingCalls.splice(0);
    // The journal is a diagnostic aid: a locked index loses it quietly, like the counters.
    if (calls.length > 0) this.#index.use(undefined, (db) => db.journal.recordCalls(calls), true);
  }

  /** Settles when pending index writes are done and no eviction pass runs. */
  async settle(): Promise<void> {
    this.flush();
    await this.#manifests?.publish(true);
    await this.#keeper?.idle();
  }

  /** Writes what is pending, closes the levels' connections and the index. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stager?.close();
    await this.#manifests?.close();
    await this.#keeper?.idle();
    this.flush();
    await this.#levels.close().catch(() => {});
    this.#index.close();
  }

  /**
   * The levels as `request`'s build sees them: its own remote outage memory and warnings; local
   * disk alone for a call whose entries stay there.
   */
  #levelsFor(request: CacheCall): Store {
    if (request.localOnly) return this.#levels.local;
    return this.#levels.forBuild(
      request.buildId,
      (message) => warnOncePerBuild(request, `remote ${withoutKeys(message)}`, message),
    );
  }

  #writeDigests(): void {
    if (this.#unwrittenDigests.length === 0) return;
    const rows = this.#unwrittenDigests.splice(0);
    this.#index.use(undefined, (db) => db.rememberFileDigests(rows));
  }

  #newStager(): Stager {
    return new Stager({
      predict: (request) => this.#predict(request),
      hot: (slot) => hasHotCopy(this.dir, slot),
      fetcher: (request) => {
        const levels = this.#levels.forBuild(`staging-${request.buildId}`, () => {});
        return (slot) => levels.get(slot).catch(() => undefined);
      },
      verify: (bytes, key) =>
        openEnvelope(bytes, key, { signingKey: this.signingKey, trustedKeys: this.trustedKeys }),
    });
  }

  /**
   * What `request`'s build will ask for: what the last build of its project or Cargo.lock used, by
   * the journal; else (a machine that never built it) the team manifest of its shape.
   */
  async #predict(request: CacheCall): Promise<Prediction> {
    const build = request.builds.journalBuildOf(request);
    const entries =
      this.#index.use(undefined, (db) => db.journal.entriesOfLastBuild(build), true) ?? [];
    if (entries.length > 0 || this.#manifests === undefined) return { entries };
    const manifest = await this.#manifests.fetchFor(request);
    if (manifest === undefined) return { entries: [] };
    if ("refused" in manifest) {
      const location = this.#levels.remote?.location ?? "the shared level";
      this.#manifestRefusals.set(
        request.buildId,
        `ignoring the team manifest of this build in ${location}: ${manifest.refused}`,
      );
      return { entries: [] };
    }
    return { entries: manifest.entries, parallel: MANIFEST_PARALLEL_FETCHES };
  }

  #digestMemo(): DigestMemo {
    const known = new Map<string, { signature: string; digest: string }>();
    const longLived = this.#longLived;
    return {
      lookup: (path, signature) => {
        const remembered = known.get(path);
        if (remembered?.signature === signature) return remembered.digest;
        const digest = this.#index.use(undefined, (db) => db.fileDigest(path, signature));
        if (digest !== undefined && longLived) known.set(path, { signature, digest });
        return digest;
      },
      remember: (path, signature, digest) => {
        if (longLived) known.set(path, { signature, digest });
        this.#unwrittenDigests.push([path, signature, digest]);
      },
      // Other processes (in-process calls of the same build) learn digests from the index; a
      // long-lived cache's own calls find them in memory, so its batch writes them.
      flush: () => {
        if (!longLived) this.#writeDigests();
      },
    };
  }

  #rustcMemo(): RustcIdentityMemo {
    const identities = new Map<string, RustcIdentityRow>();
    return {
      lookup: (probe) =>
        identities.get(probe) ?? this.#index.use(undefined, (db) => db.rustcIdentity(probe)),
      remember: (probe, row) => {
        identities.set(probe, row);
        this.#index.use(undefined, (db) => db.rememberRustcIdentity(probe, row));
      },
    };
  }
}

/** Cache keys in a message would make every warning about another entry a new topic. */
function withoutKeys(message: string): string {
  return message.replace(/[0-9a-f]{64}/g, "…");
}
