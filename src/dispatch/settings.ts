/**
 * What one dispatcher process works with: the cache directory, the index and the store, each
 * opened so that a fault (unwritable directory, locked index, dead remote) becomes a warning and
 * a cache miss, never a failed build.
 * @module
 */

import { join } from "node:path";
import { openStore } from "../../backends/open_store.ts";
import { errorMessage } from "../error_message.ts";
import { bundlePathOf } from "../../backends/local_layout.ts";
import { loadConfig, type WarmupConfig } from "../config/config.ts";
import type { DigestMemo } from "../index/file_digest.ts";
import type { RustcIdentityMemo } from "./rustc_identity.ts";
import { type ArtefactRow, IndexDb } from "../index/index_db.ts";
import { warnedThisBuild, warnOncePerBuild } from "./warn_once.ts";

const INDEX_FAULT = "index";

/** The dispatcher's view of the cache, fault-tolerant throughout. */
export interface DispatchSettings {
  /** Set when the cache is off; `disabled()` says why, once per build, when it matters. */
  disabled?: () => void;
  cacheDir: string;
  memo: DigestMemo;
  rustcMemo: RustcIdentityMemo;
  compressionLevel: number;
  signingKey: Uint8Array | undefined;
  /** The stored bundle, or undefined on a miss or an unreachable store (which warns). */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Stores a bundle and records it in the index; rejects when the store refuses. */
  put(key: string, bundle: Uint8Array, row: ArtefactRow): Promise<void>;
  /** Marks a bundle used now (its unpacked mirror served it, so the store was not read). */
  touch(key: string): void;
  /** Removes a bad bundle, where the store allows. */
  drop(key: string): Promise<void>;
  /** Counts a hit in the index; the recorded compile time when known. */
  recordHit(key: string): number | undefined;
  /** Adds to the status counters (written once, at close). */
  count(deltas: Record<string, number>): void;
  warn(topic: string, message: string): void;
  close(): Promise<void>;
}

/** The cache directory: CARGO_WARMUP_DIR, else `$CARGO_HOME/warmup-cache`, without config files. */
export function cacheDirOf(env: Record<string, string>): string {
  if (env.CARGO_WARMUP_DIR) return env.CARGO_WARMUP_DIR;
  const cargoHome = env.CARGO_HOME ?? join(env.HOME ?? "/", ".cargo");
  return join(cargoHome, "warmup-cache");
}

/**
 * Where cargo was started: its config files are the ones that count. Cargo runs rustc for a
 * registry crate inside that crate's source directory, so our own cwd would find none of them.
 */
function cargoCwd(): string {
  try {
    return Deno.realPathSync(`/proc/${Deno.ppid}/cwd`);
  } catch {
    return Deno.cwd();
  }
}

/** Opens what a dispatcher needs; never throws. */
export async function openDispatchSettings(env: Record<string, string>): Promise<DispatchSettings> {
  let config: WarmupConfig;
  try {
    config = (await loadConfig({ cwd: cargoCwd(), env })).config;
  } catch (error) {
    // A broken configuration costs the cache, not the build.
    return disabledSettings(
      cacheDirOf(env),
      "config",
      `${errorMessage(error)}; building without the cache`,
    );
  }
  const cacheDir = config.dir;
  const warn = (topic: string, message: string) => warnOncePerBuild(cacheDir, topic, message);
  let signingKey: Uint8Array | undefined;
  if (config.signingKeyFile !== undefined) {
    try {
      signingKey = await Deno.readFile(config.signingKeyFile);
    } catch (error) {
      // Without the key, unsigned bundles could slip through: use no cache at all.
      const detail = `cannot read signing key "${config.signingKeyFile}": ${errorMessage(error)}`;
      return disabledSettings(cacheDir, "signing-key", `${detail}; building without the cache`);
    }
  }
  let index: IndexDb | undefined;
  let indexError: unknown;
  // Once one dispatcher of this build met a locked or broken index, the rest do not wait on it.
  if (!warnedThisBuild(cacheDir, INDEX_FAULT)) {
    try {
      index = new IndexDb(cacheDir);
    } catch (error) {
      indexError = error;
    }
  }
  // Said at the first lookup, not at open: cargo hides the stderr of its `-vV` and `--print`
  // queries, and a warning spent there would never be seen.
  const warnIfNoIndex = () => {
    if (indexError === undefined) return;
    warn(
      INDEX_FAULT,
      `cache index in ${cacheDir} unavailable, building without it: ${errorMessage(indexError)}`,
    );
    indexError = undefined;
  };
  const guardedIndex = <T>(action: (db: IndexDb) => T): T | undefined => {
    if (!index) return undefined;
    try {
      return action(index);
    } catch (error) {
      warn(
        INDEX_FAULT,
        `cache index in ${cacheDir} is locked or broken, building without it: ${
          errorMessage(error)
        }`,
      );
      index = undefined;
      return undefined;
    }
  };
  const store = await openStore(config, { warn: (message) => warn("remote", message) });
  const pending: Record<string, number> = {};
  // Digests are written in one transaction: a miss remembers one for every source file.
  const unwrittenDigests: Array<[string, string, string]> = [];
  const flushDigests = () => {
    if (unwrittenDigests.length === 0) return;
    guardedIndex((db) => db.rememberFileDigests(unwrittenDigests.splice(0)));
  };

  return {
    ...(env.CARGO_WARMUP_DISABLE === "1" || env.CARGO_WARMUP_DISABLE === "true"
      ? { disabled: () => {} }
      : {}),
    cacheDir,
    memo: {
      lookup: (path, signature) => guardedIndex((db) => db.fileDigest(path, signature)),
      remember: (path, signature, digest) => void unwrittenDigests.push([path, signature, digest]),
      flush: flushDigests,
    },
    rustcMemo: {
      lookup: (probe) => guardedIndex((db) => db.rustcIdentity(probe)),
      remember: (probe, row) => guardedIndex((db) => db.rememberRustcIdentity(probe, row)),
    },
    compressionLevel: config.compressionLevel,
    signingKey,

    async get(key) {
      warnIfNoIndex();
      try {
        return await store.get(key);
      } catch (error) {
        warn(
          `get-${store.location}`,
          `cache store unavailable, compiling normally: ${errorMessage(error)}`,
        );
        return undefined;
      }
    },

    async put(key, bundle, row) {
      await store.put(key, bundle);
      guardedIndex((db) => db.recordArtefact(row));
    },

    touch(key) {
      try {
        const now = new Date();
        Deno.utimeSync(bundlePathOf(cacheDir, key), now, now);
      } catch {
        // gc then sees an older last use; nothing else depends on it
      }
    },

    async drop(key) {
      await store.delete(key).catch(() => {});
      guardedIndex((db) => db.forgetArtefact(key));
    },

    recordHit(key) {
      return guardedIndex((db) => db.recordHit(key));
    },

    count(deltas) {
      for (const [name, delta] of Object.entries(deltas)) {
        pending[name] = (pending[name] ?? 0) + delta;
      }
    },

    warn,

    async close() {
      flushDigests();
      // Counters are statistics: losing them to a locked index is not worth a warning, and the
      // stderr of cargo's `-vV` and `--print` queries, which also count, is never shown.
      if (Object.keys(pending).length > 0) {
        try {
          index?.addCounters(pending);
        } catch {
          // dropped
        }
      }
      await store.close().catch(() => {});
      try {
        index?.close();
      } catch {
        // closing a broken index changes nothing for the build
      }
    },
  };
}

/**
 * Settings that cache nothing: every invocation runs rustc as if there were no wrapper. The
 * warning waits for a cacheable invocation: cargo hides the stderr of its `-vV` queries.
 */
function disabledSettings(cacheDir: string, topic: string, warning: string): DispatchSettings {
  return {
    disabled: () => warnOncePerBuild(cacheDir, topic, warning),
    cacheDir,
    memo: { lookup: () => undefined, remember: () => {} },
    rustcMemo: { lookup: () => undefined, remember: () => {} },
    compressionLevel: 1,
    signingKey: undefined,
    get: () => Promise.resolve(undefined),
    put: () => Promise.resolve(),
    touch: () => {},
    drop: () => Promise.resolve(),
    recordHit: () => undefined,
    count: () => {},
    warn: (topic, message) => warnOncePerBuild(cacheDir, topic, message),
    close: () => Promise.resolve(),
  };
}
