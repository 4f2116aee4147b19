/**
 * Staging: when a build starts, the daemon makes ready the entries it will probably ask for,
 * before cargo asks. The prediction is the entries the last build of the same project used (the
 * build journal). Each is fetched (from local disk, or the remote level, a few at a time), its
 * envelope verified, and unpacked in a worker on the second core; the verified bundle waits in
 * memory, bounded, until its call takes it, and is dropped unused after a minute. A call whose
 * entry was staged only writes files; a wrong prediction costs background work only. Entries with
 * a hot copy are not staged: copying those is already cheap.
 * @module
 */

import type { Bundle } from "../bundle/bundle.ts";
import type { DispatchRequest } from "../dispatch/request.ts";

/** Staged bundles held at once, in unpacked bytes. */
const MAX_STAGED_BYTES = 384 * 1024 * 1024;
/** A staged bundle no call took within this long was a wrong guess. */
const STAGED_TTL_MS = 60_000;
/** Fetches in flight at once (a remote level's round trips overlap). */
const PARALLEL_FETCHES = 8;
/** At most this many entries are predicted for one build. */
const MAX_PREDICTED = 2_000;

/** An entry a build is expected to ask for: its store slot and the key it was signed for. */
export interface PredictedEntry {
  slot: string;
  key: string;
}

/** What staging needs of its cache. */
export interface StagingSource {
  /** The entries the build of `request` will probably ask for, in the order it will. */
  predict(request: DispatchRequest): PredictedEntry[];
  /** Whether `slot` has a hot copy (not worth staging). */
  hot(slot: string): boolean;
  /** The stored bytes of `slot` (local level, then remote), or undefined. */
  fetch(slot: string, request: DispatchRequest): Promise<Uint8Array | undefined>;
  /** The payload of `bytes` once its envelope is verified for `key`; throws if it is not. */
  verify(bytes: Uint8Array, key: string): Promise<Uint8Array>;
}

interface Staged {
  key: string;
  bundle: Bundle;
  bytes: number;
  at: number;
}

/** One cache's staging: the bundles staged, the ones on their way, and the unpacking worker. */
export class Stager {
  readonly #source: StagingSource;
  readonly #staged = new Map<string, Staged>();
  /** Entries being fetched or unpacked now: a call for one waits for it rather than redo it. */
  readonly #coming = new Map<string, Promise<void>>();
  /** Entries predicted but not started: a call for one takes it off the queue. */
  readonly #queued = new Set<string>();
  readonly #builds = new Set<string>();
  #stagedBytes = 0;
  #worker: Unpacker | undefined | null;
  #expiry: ReturnType<typeof setInterval> | undefined;

  constructor(source: StagingSource) {
    this.#source = source;
  }

  /** Starts staging for `request`'s build, once per build. Never throws, never waits. */
  startFor(request: DispatchRequest): void {
    if (this.#builds.has(request.buildId)) return;
    if (this.#builds.size >= 256) this.#builds.clear();
    this.#builds.add(request.buildId);
    let predicted: PredictedEntry[];
    try {
      predicted = this.#source.predict(request).slice(0, MAX_PREDICTED);
    } catch {
      return; // staging is an optimisation: no journal, no staging
    }
    const wanted = predicted.filter(({ slot }) =>
      !this.#staged.has(slot) && !this.#coming.has(slot) && !this.#source.hot(slot)
    );
    if (wanted.length === 0 || this.#unpacker() === undefined) return;
    for (const { slot } of wanted) this.#queued.add(slot);
    const queue = wanted.values();
    const lane = async () => {
      for (const entry of queue) {
        if (!this.#queued.delete(entry.slot)) continue; // its call came first
        if (this.#stagedBytes >= MAX_STAGED_BYTES) break;
        const staging = this.#stage(entry, request);
        this.#coming.set(entry.slot, staging);
        await staging;
        this.#coming.delete(entry.slot);
      }
    };
    for (let i = 0; i < PARALLEL_FETCHES; i++) void lane();
    this.#expiry ??= setInterval(() => this.#dropExpired(), STAGED_TTL_MS / 4);
    Deno.unrefTimer(this.#expiry);
  }

  /**
   * The staged bundle of `slot` signed for `key`, taken out (a build asks for an entry once), or
   * undefined: then the caller reads the entry itself. Waits when it is being staged right now.
   */
  async take(slot: string, key: string): Promise<Bundle | undefined> {
    this.#queued.delete(slot);
    const coming = this.#coming.get(slot);
    if (coming) await coming;
    const staged = this.#staged.get(slot);
    if (staged === undefined) return undefined;
    this.#release(slot, staged);
    return staged.key === key ? staged.bundle : undefined;
  }

  /** Bundles staged now, and their bytes (for `daemon status`). */
  get held(): { entries: number; bytes: number } {
    return { entries: this.#staged.size, bytes: this.#stagedBytes };
  }

  close(): void {
    clearInterval(this.#expiry);
    this.#queued.clear();
    this.#staged.clear();
    this.#stagedBytes = 0;
    this.#worker?.close();
    this.#worker = null;
  }

  async #stage(entry: PredictedEntry, request: DispatchRequest): Promise<void> {
    try {
      const bytes = await this.#source.fetch(entry.slot, request);
      if (bytes === undefined) return;
      const payload = await this.#source.verify(bytes, entry.key);
      const bundle = await this.#worker!.unpack(payload, entry.key);
      let size = 0;
      for (const file of bundle.files.values()) size += file.length;
      this.#staged.set(entry.slot, { key: entry.key, bundle, bytes: size, at: Date.now() });
      this.#stagedBytes += size;
    } catch {
      // Not staged: its call reads it the usual way, and says what is wrong with it then.
    }
  }

  #release(slot: string, staged: Staged): void {
    this.#staged.delete(slot);
    this.#stagedBytes -= staged.bytes;
  }

  #dropExpired(): void {
    const now = Date.now();
    for (const [slot, staged] of this.#staged) {
      if (now - staged.at > STAGED_TTL_MS) this.#release(slot, staged);
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

/** The unpacking worker (unpack_worker.ts), one request at a time in its queue. */
class Unpacker {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, { resolve(bundle: Bundle): void; reject(e: Error): void }>();
  #next = 0;

  constructor() {
    this.#worker = new Worker(new URL("./unpack_worker.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (event: MessageEvent) => {
      const { id, bundle, error } = event.data as { id: number; bundle?: Bundle; error?: string };
      const waiting = this.#waiting.get(id);
      this.#waiting.delete(id);
      if (bundle) waiting?.resolve(bundle);
      else waiting?.reject(new Error(error ?? "unpack failed"));
    };
    // A worker that dies takes staging with it, never the daemon.
    this.#worker.onerror = (event) => {
      event.preventDefault();
      for (const waiting of this.#waiting.values()) waiting.reject(new Error("worker failed"));
      this.#waiting.clear();
    };
  }

  unpack(payload: Uint8Array, key: string): Promise<Bundle> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      // Copied, not transferred: the bytes may still be being written to the local level.
      this.#worker.postMessage({ id, payload, key });
    });
  }

  close(): void {
    this.#worker.terminate();
    for (const waiting of this.#waiting.values()) waiting.reject(new Error("closed"));
    this.#waiting.clear();
  }
}
