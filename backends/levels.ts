/**
 * The store levels every cache uses: local disk always in front, optionally a shared remote behind
 * it. A remote hit is written back to disk once it passes the check the cache gives for what the
 * remote serves (`admitRemote`: signed by a trusted key); a remote that fails is reported once and
 * skipped, so it can cost a miss but never a build. The remote can be given lazily, so a local hit
 * loads no remote client at all. Callers hold one {@linkcode StoreLevels} whatever is configured:
 * none of them asks which driver it holds.
 * @module
 */

import type { LocalStore } from "./local.ts";
import type { Store, StoredEntry, StoreHealth } from "./store.ts";
import { StoreUnavailableError } from "./store.ts";
import { errorMessage } from "../src/error_message.ts";
import { writeFileAtomicSync } from "../src/write_atomic.ts";

/** A remote opened on first need: `kind` and `location` are known before its code is loaded. */
export interface LazyStore {
  readonly kind: string;
  readonly location: string;
  open(): Promise<Store>;
}

/** Options for {@linkcode createStoreLevels}. */
export interface StoreLevelsOptions {
  /** Read from the remote, never write to it (developers read what CI writes). */
  readOnly?: boolean;
  /** Where this store's warnings go (a message without a `warning:` prefix); default stderr. */
  warn?: (message: string) => void;
  /**
   * A file shared by the processes of one build: the first to find the remote down records it
   * there with the build's id (see `forBuild`), and the others of the same build skip the
   * remote without trying or warning again.
   */
  outageFile?: string;
  /** How long a recorded outage holds for processes of the same build; default 10 minutes. */
  outageHoldMs?: number;
  /**
   * Checks what the remote serves before it is returned or kept on local disk; resolves to why it
   * is refused, or undefined. A refused entry is a miss with a warning (`warn`), and is never
   * written to local disk: what that level holds stays what this machine wrote or accepted.
   */
  admitRemote?: (key: string, bundle: Uint8Array) => Promise<string | undefined>;
}

/** The levels as one store; `flush()` waits for remote writes that `put` left running. */
export interface StoreLevels extends Store {
  readonly local: LocalStore;
  /** The remote, or its lazy description before first use; undefined for local disk alone. */
  readonly remote: Store | LazyStore | undefined;
  readonly readOnly: boolean;
  /** Whether the remote has failed and is being skipped (for this view's build). */
  readonly remoteSkipped: boolean;
  /** Waits for remote writes in flight; never rejects. */
  flush(): Promise<void>;
  /** The remote level, opened (rejects when it cannot be); undefined for local disk alone. */
  openRemote(): Promise<Store | undefined>;
  /**
   * A view of the same levels (one remote connection, one set of writes in flight) for one build:
   * its own outage memory, recorded in the outage file under `buildId` so that the other
   * processes of that build skip the remote too, and its own `warn`.
   */
  forBuild(buildId: string, warn: (message: string) => void): StoreLevels;
}

/** What one build has learnt about the remote. */
interface BuildView {
  id: string;
  skipped: boolean;
  warned: boolean;
  warn: (message: string) => void;
}

/**
 * Puts `local` in front of `remote` (if any).
 *
 * @example
 * ```ts
 * import { createLocalStore } from "./local.ts";
 * import { createStoreLevels } from "./levels.ts";
 * const local = createLocalStore({ dir: await Deno.makeTempDir() });
 * const remote = createLocalStore({ dir: await Deno.makeTempDir() });
 * const store = createStoreLevels(local, remote, { warn: console.warn });
 * await remote.put("b".repeat(64), new Uint8Array([7]));
 * await store.get("b".repeat(64)); // a remote hit, now also on local disk
 * console.log(await local.has("b".repeat(64))); // true
 * await store.close();
 * ```
 */
export function createStoreLevels(
  local: LocalStore,
  remote: Store | LazyStore | undefined,
  options: StoreLevelsOptions = {},
): StoreLevels {
  const readOnly = options.readOnly ?? false;
  const holdMs = options.outageHoldMs ?? 10 * 60 * 1000;
  let opened: Promise<Store> | undefined;
  const writes = new Set<Promise<void>>();

  /** The remote store, or `undefined` while `build` skips it. */
  async function remoteStore(build: BuildView): Promise<Store | undefined> {
    if (remote === undefined || build.skipped) return undefined;
    if (options.outageFile && outageRecorded(options.outageFile, remote.location, build, holdMs)) {
      build.skipped = true;
      return undefined;
    }
    try {
      return await openRemote();
    } catch (error) {
      // A later build tries to open it again.
      opened = undefined;
      fail(build, error);
      return undefined;
    }
  }

  /** Runs `action` on the remote; an unavailable remote turns into `fallback`. */
  async function onRemote<T>(
    build: BuildView,
    fallback: T,
    action: (store: Store) => Promise<T>,
  ): Promise<T> {
    const store = await remoteStore(build);
    if (!store) return fallback;
    try {
      return await action(store);
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      fail(build, error);
      return fallback;
    }
  }

  function fail(build: BuildView, error: unknown): void {
    build.skipped = true;
    if (build.warned || remote === undefined) return;
    build.warned = true;
    const detail = error instanceof StoreUnavailableError
      ? error.message
      : `Cannot open cache store "${remote.location}": ${errorMessage(error)}`;
    build.warn(`${detail}; continuing without the ${remote.kind} cache for this build`);
    if (options.outageFile) recordOutage(options.outageFile, remote.location, build.id, detail);
  }

  function openRemote(): Promise<Store | undefined> {
    if (remote === undefined) return Promise.resolve(undefined);
    opened ??= "open" in remote ? remote.open() : Promise.resolve(remote);
    return opened;
  }

  const flush = async () => {
    while (writes.size > 0) await Promise.all(writes);
  };

  function view(build: BuildView): StoreLevels {
    return {
      kind: remote === undefined ? local.kind : "tiered",
      get location() {
        return remote === undefined ? local.location : `${local.location} + ${remote.location}`;
      },
      local,
      get remote() {
        return remote;
      },
      readOnly,
      get remoteSkipped() {
        return build.skipped;
      },

      async get(key) {
        const found = await local.get(key);
        if (found) return found;
        const fetched = await onRemote(build, undefined, (store) => store.get(key));
        if (!fetched) return undefined;
        const refused = await options.admitRemote?.(key, fetched);
        if (refused !== undefined) {
          build.warn(
            `Refusing bundle "${key}" from ${remote?.location}: ${refused}; compiling it here`,
          );
          return undefined;
        }
        // The caller opens the bundle and calls delete() when it is bad.
        await local.put(key, fetched).catch((error) => {
          build.warn(`Cannot keep bundle "${key}" on local disk: ${errorMessage(error)}`);
        });
        return fetched;
      },

      async put(key, bundle) {
        await local.put(key, bundle);
        if (remote === undefined || readOnly || build.skipped) return;
        const write = onRemote(build, undefined, (store) => store.put(key, bundle)).catch(
          (error) => build.warn(`Cannot store bundle "${key}" in ${remote.location}: ${error}`),
        );
        writes.add(write);
        write.finally(() => writes.delete(write));
      },

      async has(key) {
        return await local.has(key) || await onRemote(build, false, (store) => store.has(key));
      },

      async delete(key) {
        // A write still in flight would bring the bundle back on the remote.
        await flush();
        await local.delete(key);
        if (remote !== undefined && !readOnly) {
          await onRemote(build, undefined, (store) => store.delete(key));
        }
      },

      async list() {
        await flush();
        const merged = new Map<string, StoredEntry>();
        for (const entry of await onRemote<StoredEntry[]>(build, [], (store) => store.list())) {
          merged.set(entry.key, entry);
        }
        for (const entry of await local.list()) {
          const other = merged.get(entry.key);
          merged.set(entry.key, other && other.lastUsed > entry.lastUsed ? other : entry);
        }
        return [...merged.values()];
      },

      async listReserved(word) {
        const merged = new Map<string, StoredEntry>();
        for (const entry of await onRemote<StoredEntry[]>(build, [], (s) => s.listReserved(word))) {
          merged.set(entry.key, entry);
        }
        for (const entry of await local.listReserved(word)) {
          if (!merged.has(entry.key)) merged.set(entry.key, entry);
        }
        return [...merged.values()];
      },

      async health(): Promise<StoreHealth> {
        const near = await local.health();
        if (remote === undefined) return near;
        const store = await remoteStore(build);
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

      flush,
      openRemote,

      forBuild(buildId, warn) {
        return view({ id: buildId, skipped: false, warned: false, warn });
      },

      async close() {
        await flush();
        const store = opened ? await opened.catch(() => undefined) : undefined;
        await Promise.all([local.close(), store?.close()]);
      },
    };
  }

  return view({
    id: `process-${Deno.pid}`,
    skipped: false,
    warned: false,
    warn: options.warn ?? ((message: string) => console.error(`warning: ${message}`)),
  });
}

/** Whether a process of `build` recorded the remote as down recently. */
function outageRecorded(
  file: string,
  location: string,
  build: BuildView,
  holdMs: number,
): boolean {
  try {
    const record = JSON.parse(Deno.readTextFileSync(file));
    return record.location === location && record.build === build.id &&
      Date.now() - record.at < holdMs;
  } catch {
    return false;
  }
}

function recordOutage(file: string, location: string, build: string, detail: string): void {
  try {
    writeFileAtomicSync(file, JSON.stringify({ location, build, at: Date.now(), detail }));
  } catch {
    // Only an optimisation: without the record, the next process tries the remote again.
  }
}
