/**
 * The cache's index as the build path uses it: opened lazily, given up when it is locked or broken
 * (warned once per build), then tried again a while later by a long-lived session. Every index
 * fault costs the cache, never the build.
 * @module
 */

import { join } from "node:path";
import { errorMessage } from "../error_message.ts";
import { type IndexDb, isBrokenIndexError, openIndex, setAsideIndex } from "../index/index_db.ts";
import type { CacheCall } from "./call.ts";
import { warnedThisBuild, warnOncePerBuild } from "./warn_once.ts";

const INDEX_FAULT = "index";
/** After a locked or broken index, a long-lived session tries it again this much later. */
const INDEX_RETRY_MS = 30_000;

/** The index behind a guard: see {@linkcode guardedIndex}. */
export type GuardedIndex = ReturnType<typeof guardedIndex>;

/**
 * The index, opened lazily and given up when it is locked or broken (warned once per build),
 * then tried again after {@linkcode INDEX_RETRY_MS} by a long-lived session.
 */
export function guardedIndex(dir: string, firstRequest: CacheCall) {
  let index: IndexDb | undefined;
  /** The files the open index is, to notice when they are deleted or replaced under us. */
  let opened: string | undefined;
  let closed = false;
  /** Indexes set aside as unreadable, said at the next lookup (once per build). */
  const setAside: string[] = [];
  let openError: unknown;
  let retryAt = 0;
  // Once one call of this build met a locked or broken index, the others do not wait on it.
  if (warnedThisBuild(firstRequest, INDEX_FAULT)) retryAt = Date.now() + INDEX_RETRY_MS;

  // The index file and its write-ahead log as opened: SQLite deletes the log only when the last
  // connection closes, so a log gone or replaced while ours is open was taken from under us too.
  const onDisk = () =>
    `${fileIdentity(join(dir, "index.db"))} ${fileIdentity(join(dir, "index.db-wal"))}`;

  const open = (): IndexDb | undefined => {
    if (index !== undefined || closed || Date.now() < retryAt) return index;
    try {
      index = openIndex(dir, (message) => setAside.push(message));
      opened = onDisk();
      openError = undefined;
    } catch (error) {
      openError = error;
      retryAt = Date.now() + INDEX_RETRY_MS;
    }
    return index;
  };
  const fault = (request: CacheCall | undefined, error: unknown, quiet: boolean) => {
    try {
      index?.close();
    } catch {
      // closing a broken index changes nothing for the build
    }
    index = undefined;
    if (isBrokenIndexError(error)) {
      // Damaged under us: kept aside for a look, and a new index from the next use on.
      const aside = setAsideIndex(dir);
      setAside.push(
        `cache index ${join(dir, "index.db")} is damaged (${errorMessage(error)}); ` +
          `set aside as ${aside}, starting a new one`,
      );
      return;
    }
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
      request: CacheCall | undefined,
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
    warnIfUnavailable(request: CacheCall) {
      open();
      for (const message of setAside.splice(0)) {
        warnOncePerBuild(request, "index-set-aside", message);
      }
      if (openError === undefined) return;
      if (index !== undefined) return;
      warnOncePerBuild(
        request,
        INDEX_FAULT,
        `cache index in ${dir} unavailable, building without it: ${errorMessage(openError)}`,
      );
    },
    /**
     * Whether the open index is still the file at `index.db` (true while none is open): a cache
     * directory removed or replaced under a long-lived cache leaves it holding a deleted file.
     */
    stillOnDisk(): boolean {
      return index === undefined || onDisk() === opened;
    },
    /** Lets go of an index that is no longer the file on disk; the next use opens the new one. */
    reopenIfReplaced() {
      if (index === undefined || onDisk() === opened) return;
      try {
        index.close();
      } catch {
        // the file is gone already: nothing to save
      }
      index = undefined;
    },
    /** Closes the index for good: later uses do nothing. */
    close() {
      closed = true;
      try {
        index?.close();
      } catch {
        // as above
      }
      index = undefined;
    },
  };
}

/** The device and inode of `path`, or undefined when nothing is there. */
export function fileIdentity(path: string): string | undefined {
  try {
    const info = Deno.statSync(path);
    return `${info.dev}:${info.ino}`;
  } catch {
    return undefined;
  }
}
