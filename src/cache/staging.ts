/**
 * Staging: when a build starts, the daemon makes ready the entries it will probably ask for,
 * before cargo asks. The prediction is the entries the last build of the same project (or
 * Cargo.lock) used, from the build journal; on a machine whose journal has none (a CI job, a
 * container), the team manifest of the build's shape (team_manifests.ts). Each is fetched (from
 * local disk, or the remote level, several at a time, where it is then kept on local disk), its
 * envelope verified, and unpacked in a worker on the second core;
 * the verified bundle waits in memory, bounded, until its call takes it, and is dropped unused
 * after a minute. A call whose
 * entry was staged only writes files; a wrong prediction costs background work only. Entries with
 * a hot copy are not staged: copying those is already cheap.
 * @module
 */

import type { Bundle } from "../bundle/bundle.ts";
import type { CacheCall } from "./call.ts";
import { afterTimeout } from "../timeout.ts";

/** Staged bundles held at once, in unpacked bytes. */
const MAX_STAGED_BYTES = 384 * 1024 * 1024;
/** A staged bundle no call took within this long was a wrong guess. */
const STAGED_TTL_MS = 60_000;
/** Fetches in flight at once, unless the prediction asks for more (a remote level's round trips overlap). */
const PARALLEL_FETCHES = 8;
/** At most this many entries are predicted for one build. */
const MAX_PREDICTED = 2_000;
/**
 * A call waits at most this long for its entry's fetch or unpack under way, then reads it itself:
 * staging may be slow, never the reason a call is.
 */
const MAX_WAIT_MS = 2_000;
/** Builds remembered as staged already (a daemon serves builds one after another). */
const MAX_BUILDS = 256;

/** An entry a build is expected to ask for: its store slot and the key it was signed for. */
export interface PredictedEntry {
  slot: string;
  key: string;
}

/** What a build will probably ask for. */
export interface Prediction {
  /** The entries, in the order the build will ask for them. */
  entries: PredictedEntry[];
  /** Fetches in flight at once: more where every entry comes over the network. */
  parallel?: number;
}

/** What staging needs of its cache. */
export interface StagingSource {
  /** What the build of `request` will probably ask for; may take a round trip to the remote. */
  predict(request: CacheCall): Promise<Prediction>;
  /** Whether `slot` has a hot copy (not worth staging). */
  hot(slot: string): boolean;
  /**
   * What reads stored bytes for `request`'s build (local level, then remote), quietly: an outage
   * is for the build's own calls to meet and report, and staging's view of it is its own.
   */
  fetcher(request: CacheCall): (slot: string) => Promise<Uint8Array | undefined>;
  /** The payload of `bytes` once its envelope is verified for `key`; throws if it is not. */
  verify(bytes: Uint8Array, key: string): Promise<Uint8Array>;
}

interface Staged {
  key: string;
  bundle: Bundle;
  bytes: number;
  at: number;
}

/** What a call finds staged: the unpacked bundle, or at least its fetched bytes. */
export type StagedEntry = { bundle: Bundle } | { bytes: Uint8Array };

/**
 * One cache's staging, a pipeline: fetches (several at once: remote round trips overlap) fill a
 * queue of fetched bytes, which one loop verifies and hands to the worker, one at a time, in the
 * order the build is expected to ask. A call takes its entry at whatever stage it is: unpacked,
 * or only fetched (then it unpacks it itself rather than wait behind others), and waits only for
 * a fetch in flight or the one unpack under way.
 */
export class Stager {
  readonly #source: StagingSource;
  /** Predicted, not fetched yet: a call for one takes it off the queue. */
  readonly #queued = new Map<string, PredictedEntry>();
  readonly #fetching = new Map<string, Promise<void>>();
  readonly #fetched = new Map<string, { key: string; bytes: Uint8Array }>();
  #unpacking: { slot: string; done: Promise<void> } | undefined;
  readonly #staged = new Map<string, Staged>();
  readonly #builds = new Set<string>();
  /**
   * The entries each build's calls asked for while its prediction was on its way (a manifest
   * fetched over the network while the first calls read their own): not fetched a second time.
   */
  readonly #askedBeforePrediction = new Map<string, Set<string>>();
  /** Bytes held: fetched (compressed) and staged (unpacked). */
  #heldBytes = 0;
  #worker: Unpacker | undefined | null;
  #expiry: ReturnType<typeof setInterval> | undefined;

  constructor(source: StagingSource) {
    this.#source = source;
  }

  /**
   * Starts staging for `request`'s build, once per build. Never throws, never waits: resolves
   * when the prediction is queued (for tests and `daemon status`; callers need not wait).
   */
  startFor(request: CacheCall): Promise<void> {
    if (this.#builds.has(request.buildId)) return Promise.resolve();
    if (this.#builds.size >= MAX_BUILDS) this.#builds.clear();
    this.#builds.add(request.buildId);
    const asked = new Set<string>();
    this.#askedBeforePrediction.set(request.buildId, asked);
    return this.#source.predict(request)
      .then((prediction) => this.#queue(request, prediction, asked))
      .catch(() => {}) // staging is an optimisation: no prediction, no staging
      .finally(() => this.#askedBeforePrediction.delete(request.buildId));
  }

  #queue(request: CacheCall, prediction: Prediction, asked: ReadonlySet<string>): void {
    const known = (slot: string) =>
      this.#queued.has(slot) || this.#fetching.has(slot) || this.#fetched.has(slot) ||
      this.#staged.has(slot) || this.#unpacking?.slot === slot || asked.has(slot);
    const wanted = prediction.entries.slice(0, MAX_PREDICTED)
      .filter(({ slot }) => !known(slot) && !this.#source.hot(slot));
    if (wanted.length === 0 || this.#unpacker() === undefined) return;
    for (const entry of wanted) this.#queued.set(entry.slot, entry);
    const fetch = this.#source.fetcher(request);
    const lanes = Math.min(prediction.parallel ?? PARALLEL_FETCHES, wanted.length);
    for (let i = 0; i < lanes; i++) void this.#fetchLane(fetch);
    this.#expiry ??= setInterval(() => this.#dropExpired(), STAGED_TTL_MS / 4);
    Deno.unrefTimer(this.#expiry);
  }

  /**
   * What is staged of `slot` for `key`, taken out (a build asks for an entry once), or undefined:
   * then the caller (a call of build `buildId`) reads the entry itself. Waits for a fetch in
   * flight or the unpack under way.
   */
  async take(slot: string, key: string, buildId: string): Promise<StagedEntry | undefined> {
    this.#queued.delete(slot);
    this.#askedBeforePrediction.get(buildId)?.add(slot);
    await within(this.#fetching.get(slot), MAX_WAIT_MS);
    if (this.#unpacking?.slot === slot) await within(this.#unpacking.done, MAX_WAIT_MS);
    const staged = this.#staged.get(slot);
    if (staged !== undefined) {
      this.#staged.delete(slot);
      this.#heldBytes -= staged.bytes;
      return staged.key === key ? { bundle: staged.bundle } : undefined;
    }
    const fetched = this.#fetched.get(slot);
    if (fetched === undefined) return undefined;
    this.#fetched.delete(slot);
    this.#heldBytes -= fetched.bytes.length;
    return fetched.key === key ? { bytes: fetched.bytes } : undefined;
  }

  /** Entries staged or fetched now, and their bytes (for `daemon status`). */
  get held(): { entries: number; bytes: number } {
    return { entries: this.#staged.size + this.#fetched.size, bytes: this.#heldBytes };
  }

  /** Stops staging and lets go of what it holds; the cache is closing. */
  close(): void {
    clearInterval(this.#expiry);
    this.#queued.clear();
    this.#askedBeforePrediction.clear();
    this.#fetched.clear();
    this.#staged.clear();
    this.#heldBytes = 0;
    this.#worker?.close();
    this.#worker = null;
  }

  async #fetchLane(fetch: (slot: string) => Promise<Uint8Array | undefined>): Promise<void> {
    for (const [slot, entry] of this.#queued) {
      if (this.#heldBytes >= MAX_STAGED_BYTES || this.#worker === null) return;
      this.#queued.delete(slot);
      const fetching = fetch(slot).then(
        (bytes) => {
          if (bytes === undefined || this.#worker === null) return;
          this.#fetched.set(slot, { key: entry.key, bytes });
          this.#heldBytes += bytes.length;
          void this.#unpackNext();
        },
        () => {}, // not staged: its call reads it the usual way, and warns then
      );
      this.#fetching.set(slot, fetching);
      await fetching;
      this.#fetching.delete(slot);
    }
  }

  /** Unpacks the oldest fetched entry in the worker, then the next, until none is left. */
  async #unpackNext(): Promise<void> {
    if (this.#unpacking !== undefined) return;
    for (const [slot, fetched] of this.#fetched) {
      this.#fetched.delete(slot);
      this.#heldBytes -= fetched.bytes.length;
      const done = this.#unpack(slot, fetched.key, fetched.bytes);
      this.#unpacking = { slot, done };
      await done;
      this.#unpacking = undefined;
    }
  }

  async #unpack(slot: string, key: string, bytes: Uint8Array): Promise<void> {
    try {
      const payload = await this.#source.verify(bytes, key);
      const bundle = await this.#worker!.unpack(payload, key);
      let size = 0;
      for (const file of bundle.files.values()) size += file.length;
      this.#staged.set(slot, { key, bundle, bytes: size, at: Date.now() });
      this.#heldBytes += size;
    } catch (error) {
      // Not staged: its call reads it the usual way, and says what is wrong with it then. A
      // worker that died ends staging for this cache.
      if (error instanceof WorkerGone) this.#worker = null;
    }
  }

  #dropExpired(): void {
    const now = Date.now();
    for (const [slot, staged] of this.#staged) {
      if (now - staged.at > STAGED_TTL_MS) {
        this.#staged.delete(slot);
        this.#heldBytes -= staged.bytes;
      }
    }
  }

  /** The worker, started on first use; undefined (staging off) where none can start. */
  #unpacker(): Unpacker | undefined {
    if (this.#worker === undefined) {
      try {
        this.#worker = new Unpacker();
      } catch {
        this.#worker = null;
      }
    }
    return this.#worker ?? undefined;
  }
}

/** The worker is gone (it failed or was closed): staging stops. */
class WorkerGone extends Error {}

/** Resolves when `promise` settles or after `ms`, whichever is first; never rejects. */
async function within(promise: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (promise === undefined) return;
  let cancel = () => {};
  await Promise.race([
    promise.catch(() => {}),
    new Promise<void>((resolve) => cancel = afterTimeout(ms, resolve)),
  ]);
  cancel();
}

/** The unpacking worker (unpack_worker.ts), one request at a time in its queue. */
class Unpacker {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, { resolve(bundle: Bundle): void; reject(e: Error): void }>();
  #next = 0;
  #gone = false;

  constructor() {
    this.#worker = new Worker(new URL("./unpack_worker.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (event: MessageEvent) => {
      const { id, bundle, error } = event.data as { id: number; bundle?: Bundle; error?: string };
      const waiting = this.#waiting.get(id);
      this.#waiting.delete(id);
      if (bundle) waiting?.resolve(bundle);
      else waiting?.reject(new Error(error ?? "unpack failed"));
    };
    // A worker that dies takes staging with it, never the daemon, and never leaves a call waiting.
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.close();
    };
  }

  unpack(payload: Uint8Array, key: string): Promise<Bundle> {
    if (this.#gone) return Promise.reject(new WorkerGone("the unpacking worker is gone"));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      // Copied, not transferred: the bytes may still be being written to the local level.
      this.#worker.postMessage({ id, payload, key });
    });
  }

  close(): void {
    this.#gone = true;
    this.#worker.terminate();
    for (const waiting of this.#waiting.values()) {
      waiting.reject(new WorkerGone("the unpacking worker is gone"));
    }
    this.#waiting.clear();
  }
}
