/**
 * The local disk store, the embedded default: one file per bundle under `bundles/`, written to a
 * temporary file and renamed into place so that a reader never sees half a bundle. An entry's
 * unpacked copy (local_layout.ts) is counted in its size and deleted with it.
 * @module
 */

import { dirname, join } from "node:path";
import type { Store, StoredEntry, StoreHealth } from "./store.ts";
import {
  bundlePathOf,
  hotCopyPathOf,
  isCacheKey,
  isReservedName,
  reservedDirOf,
  reservedPathOf,
  stagingDirOf,
} from "./local_layout.ts";
import { StoreUnavailableError } from "./store.ts";
import { errorMessage } from "../src/error_message.ts";

/**
 * The local store: a {@linkcode Store} plus what only local disk can do: marking an entry used
 * when its hot copy served it (the bundle's mtime is its last use: gc evicts by it). The hot
 * copies (src/cache/hot_copy.ts) live beside the bundles where local_layout.ts puts them; the
 * store removes an entry's with its bundle and counts their bytes in its listing.
 */
export interface LocalStore extends Store {
  readonly kind: "local";
  /** Marks `key` used now, without reading it. */
  touch(key: string): void;
}

/** Options for {@linkcode createLocalStore}. */
export interface LocalStoreOptions {
  /** The cache directory; bundles go to `<dir>/bundles/`. */
  dir: string;
}

/** Temporary files older than this are left over by a killed writer and may be removed. */
const STALE_TEMP_MS = 60 * 60 * 1000;

/**
 * A store on local disk.
 *
 * @example
 * ```ts
 * import { createLocalStore } from "./local.ts";
 * const store = createLocalStore({ dir: await Deno.makeTempDir() });
 * await store.put("a".repeat(64), new Uint8Array([1, 2, 3]));
 * console.log((await store.get("a".repeat(64)))?.length); // 3
 * ```
 */
export function createLocalStore(options: LocalStoreOptions): LocalStore {
  const bundlesDir = join(options.dir, "bundles");
  const tempDir = stagingDirOf(options.dir);
  const pathOf = (key: string) =>
    isReservedName(key) ? reservedPathOf(options.dir, key) : bundlePathOf(options.dir, key);
  const touch = (key: string) => {
    try {
      const now = new Date();
      Deno.utimeSync(pathOf(key), now, now);
    } catch {
      // gc then sees an older last use (a read-only cache still serves)
    }
  };

  return {
    kind: "local",
    location: options.dir,

    touch,

    // Async for the interface, synchronous inside: this is the hit path, and an async read
    // costs a thread-pool round trip.
    // deno-lint-ignore require-await
    async get(key) {
      const path = pathOf(key);
      try {
        const bytes = Deno.readFileSync(path);
        if (isCacheKey(key)) touch(key);
        return bytes;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return undefined;
        throw new StoreUnavailableError(options.dir, String(error), { cause: error });
      }
    },

    async put(key, bundle) {
      const path = pathOf(key);
      try {
        await Deno.mkdir(dirname(path), { recursive: true });
        await Deno.mkdir(tempDir, { recursive: true });
        const temp = join(tempDir, `${key}.${Deno.pid}.${crypto.randomUUID()}.tmp`);
        try {
          await Deno.writeFile(temp, bundle);
          await Deno.rename(temp, path);
        } catch (error) {
          await Deno.remove(temp).catch(() => {});
          throw error;
        }
      } catch (error) {
        throw new StoreUnavailableError(options.dir, String(error), { cause: error });
      }
    },

    async has(key) {
      try {
        await Deno.stat(pathOf(key));
        return true;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return false;
        throw new StoreUnavailableError(options.dir, String(error), { cause: error });
      }
    },

    async delete(key) {
      try {
        // Its hot copy goes with it (and is no longer served: see src/cache/hot_copy.ts).
        if (isCacheKey(key)) {
          await Deno.remove(hotCopyPathOf(options.dir, key), { recursive: true }).catch(() => {});
        }
        await Deno.remove(pathOf(key));
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) {
          throw new StoreUnavailableError(options.dir, String(error), { cause: error });
        }
      }
    },

    async list() {
      const entries: StoredEntry[] = [];
      for (const shard of await readDirNames(bundlesDir)) {
        for (const name of await readDirNames(join(bundlesDir, shard))) {
          const key = name.replace(/\.tzst$/, "");
          if (!isCacheKey(key)) continue;
          const info = await Deno.stat(join(bundlesDir, shard, name)).catch(() => undefined);
          if (!info?.isFile) continue;
          const hotSize = await treeSize(hotCopyPathOf(options.dir, key));
          entries.push({
            key,
            size: info.size + hotSize,
            hotSize,
            lastUsed: info.mtime?.getTime() ?? 0,
          });
        }
      }
      await removeStaleTemporaries(tempDir);
      return entries;
    },

    async listReserved(word) {
      const dir = reservedDirOf(options.dir);
      const entries: StoredEntry[] = [];
      for (const name of await readDirNames(dir)) {
        if (!isReservedName(name) || !name.startsWith(`${word}-`)) continue;
        const info = await Deno.stat(join(dir, name)).catch(() => undefined);
        if (info?.isFile) {
          entries.push({ key: name, size: info.size, lastUsed: info.mtime?.getTime() ?? 0 });
        }
      }
      return entries;
    },

    async health(): Promise<StoreHealth> {
      try {
        await Deno.mkdir(tempDir, { recursive: true });
        const probe = join(tempDir, `health.${Deno.pid}.tmp`);
        await Deno.writeFile(probe, new Uint8Array(0));
        await Deno.remove(probe);
        return { ok: true, detail: "writable" };
      } catch (error) {
        return { ok: false, detail: errorMessage(error) };
      }
    },

    close() {
      return Promise.resolve();
    },
  };
}

/** Bytes under `path` (a file or directory); 0 when it does not exist. */
async function treeSize(path: string): Promise<number> {
  const info = await Deno.lstat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory) return info.size;
  let total = 0;
  for (const name of await readDirNames(path)) total += await treeSize(join(path, name));
  return total;
}

async function readDirNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names;
}

/** A writer killed between write and rename leaves its temporary file; sweep old ones. */
async function removeStaleTemporaries(tempDir: string): Promise<void> {
  const cutoff = Date.now() - STALE_TEMP_MS;
  for (const name of await readDirNames(tempDir)) {
    const path = join(tempDir, name);
    const info = await Deno.stat(path).catch(() => undefined);
    if (info?.isFile && (info.mtime?.getTime() ?? 0) < cutoff) {
      await Deno.remove(path).catch(() => {});
    }
  }
}
