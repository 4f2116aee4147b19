/**
 * Two levels: local disk always in front, a shared remote behind it. A remote hit is written back
 * to disk; a remote that fails is reported once and skipped, so it can cost a miss but never a
 * build. The remote can be given lazily, so a local hit loads no remote client at all.
 * @module
 */

import type { Store, StoredEntry, StoreHealth } from "./store.ts";
import { StoreUnavailableError } from "./store.ts";

/** A remote opened on first need: `kind` and `location` are known before its code is loaded. */
export interface LazyStore {
  readonly kind: string;
  readonly location: string;
  open(): Promise<Store>;
}

/** Options for {@linkcode createTieredStore}. */
export interface TieredStoreOptions {
  /** Read from the remote, never write to it (developers read what CI writes). */
  readOnly?: boolean;
  /** Called once, when the remote first fails. */
  warn?: (message: string) => void;
  /**
   * A file shared by the processes of one build: the first to find the remote down records it
   * there, and the others of the same build (same parent process, i.e. cargo) skip the remote
   * without trying or warning again.
   */
  outageFile?: string;
  /** How long a recorded outage holds for processes of the same build; default 10 minutes. */
  outageHoldMs?: number;
}

/** A two-level store; `flush()` waits for remote writes that `put` left running. */
export interface TieredStore extends Store {
  readonly local: Store;
  /** The remote, or its lazy description before first use. */
  readonly remote: Store | LazyStore;
  readonly readOnly: boolean;
  /** Whether the remote has failed and is being skipped. */
  readonly remoteSkipped: boolean;
  /** Waits for remote writes in flight; never rejects. */
  flush(): Promise<void>;
}

/**
 * Puts `local` in front of `remote`.
 *
 * @example
 * ```ts
 * import { createLocalStore } from "./local.ts";
 * import { createTieredStore } from "./tiered.ts";
 * const local = createLocalStore({ dir: await Deno.makeTempDir() });
 * const remote = createLocalStore({ dir: await Deno.makeTempDir() });
 * const store = createTieredStore(local, remote, { warn: console.warn });
 * await remote.put("b".repeat(64), new Uint8Array([7]));
 * await store.get("b".repeat(64)); // a remote hit, now also on local disk
 * console.log(await local.has("b".repeat(64))); // true
 * await store.close();
 * ```
 */
export function createTieredStore(
  local: Store,
  remote: Store | LazyStore,
  options: TieredStoreOptions = {},
): TieredStore {
  const readOnly = options.readOnly ?? false;
  const warn = options.warn ?? ((message: string) => console.error(message));
  const holdMs = options.outageHoldMs ?? 10 * 60 * 1000;
  let opened: Promise<Store> | undefined;
  let skipped = false;
  let warned = false;
  const writes = new Set<Promise<void>>();

  /** The remote store, or `undefined` while it is being skipped. */
  async function remoteStore(): Promise<Store | undefined> {
    if (skipped) return undefined;
    if (opened === undefined) {
      if (options.outageFile && outageRecorded(options.outageFile, remote.location, holdMs)) {
        skipped = true;
        return undefined;
      }
      opened = "open" in remote ? remote.open() : Promise.resolve(remote);
    }
    try {
      return await opened;
    } catch (error) {
      fail(error);
      return undefined;
    }
  }

  /** Runs `action` on the remote; an unavailable remote turns into `fallback`. */
  async function onRemote<T>(fallback: T, action: (store: Store) => Promise<T>): Promise<T> {
    const store = await remoteStore();
    if (!store) return fallback;
    try {
      return await action(store);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      fail(error);
      return fallback;
    }
  }

  function fail(error: unknown): void {
    skipped = true;
    if (warned) return;
    warned = true;
    const detail = error instanceof StoreUnavailableError
      ? error.message
      : `Cannot open cache store "${remote.location}": ${
        error instanceof Error ? error.message : error
      }`;
    warn(`warning: ${detail}; continuing without the ${remote.kind} cache for this build`);
    if (options.outageFile) recordOutage(options.outageFile, remote.location, detail);
  }

  return {
    kind: "tiered",
    get location() {
      return `${local.location} + ${remote.location}`;
    },
    local,
    get remote() {
      return remote;
    },
    readOnly,
    get remoteSkipped() {
      return skipped;
    },

    async get(key) {
      const found = await local.get(key);
      if (found) return found;
      const fetched = await onRemote(undefined, (store) => store.get(key));
      if (fetched) {
        // The caller verifies the bundle and calls delete() when it is bad.
        await local.put(key, fetched).catch((error) => {
          warn(`warning: Cannot keep bundle "${key}" on local disk: ${error.message}`);
        });
      }
      return fetched;
    },

    async put(key, bundle) {
      await local.put(key, bundle);
      if (readOnly || skipped) return;
      const write = onRemote(undefined, (store) => store.put(key, bundle)).catch((error) => {
        warn(`warning: Cannot store bundle "${key}" in ${remote.location}: ${error}`);
      });
      writes.add(write);
      write.finally(() => writes.delete(write));
    },

    async has(key) {
      return await local.has(key) || await onRemote(false, (store) => store.has(key));
    },

    async delete(key) {
      // A write still in flight would bring the bundle back on the remote.
      await this.flush();
      await local.delete(key);
      if (!readOnly) await onRemote(undefined, (store) => store.delete(key));
    },

    async list() {
      await this.flush();
      const merged = new Map<string, StoredEntry>();
      for (const entry of await onRemote<StoredEntry[]>([], (store) => store.list())) {
        merged.set(entry.key, entry);
      }
      for (const entry of await local.list()) {
        const other = merged.get(entry.key);
        merged.set(entry.key, other && other.lastUsed > entry.lastUsed ? other : entry);
      }
      return [...merged.values()];
    },

    async health(): Promise<StoreHealth> {
      const near = await local.health();
      const store = await remoteStore();
      const far: StoreHealth = store
        ? await store.health()
        : { ok: false, detail: "skipped after a failure" };
      return {
        ok: near.ok,
        detail: `local: ${near.detail}; ${remote.kind}${
          readOnly ? " (read-only)" : ""
        }: ${far.detail}`,
      };
    },

    async flush() {
      while (writes.size > 0) await Promise.all(writes);
    },

    async close() {
      await this.flush();
      const store = opened ? await opened.catch(() => undefined) : undefined;
      await Promise.all([local.close(), store?.close()]);
    },
  };
}

/** Whether a process of this build (same parent) recorded the remote as down recently. */
function outageRecorded(file: string, location: string, holdMs: number): boolean {
  try {
    const record = JSON.parse(Deno.readTextFileSync(file));
    return record.location === location && record.ppid === Deno.ppid &&
      Date.now() - record.at < holdMs;
  } catch {
    return false;
  }
}

function recordOutage(file: string, location: string, detail: string): void {
  try {
    const temp = `${file}.${Deno.pid}.tmp`;
    Deno.writeTextFileSync(
      temp,
      JSON.stringify({ location, ppid: Deno.ppid, at: Date.now(), detail }),
    );
    Deno.renameSync(temp, file);
  } catch {
    // Only an optimisation: without the record, the next process tries the remote again.
  }
}
