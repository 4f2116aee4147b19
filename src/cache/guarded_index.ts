/**
 * The cache's index as the build path uses it: opened lazily, given up when it is locked or broken
 * (warned once per build), then tried again a while later by a long-lived session. Every index
 * fault costs the cache, never the build.
 * @module
 */

import { join } from "node:path";
import { errorMessage } from "../error_message.ts";
import { IndexDb } from "../index/index_db.ts";
import type { DispatchRequest } from "../dispatch/request.ts";
import { warnedThisBuild, warnOncePerBuild } from "../dispatch/warn_once.ts";

const INDEX_FAULT = "index";
/** After a locked or broken index, a long-lived session tries it again this much later. */
const INDEX_RETRY_MS = 30_000;

/** The index behind a guard: see {@linkcode guardedIndex}. */
export type GuardedIndex = ReturnType<typeof guardedIndex>;

/**
 * The index, opened lazily and given up when it is locked or broken (warned once per build),
 * then tried again after {@linkcode INDEX_RETRY_MS} by a long-lived session.
 */
export function guardedIndex(dir: string, firstRequest: DispatchRequest) {
  let index: IndexDb | undefined;
  /** The file the open index is, to notice when it is deleted or replaced under us. */
  let opened: string | undefined;
  let closed = false;
  let openError: unknown;
  let retryAt = 0;
  // Once one call of this build met a locked or broken index, the others do not wait on it.
  if (warnedThisBuild(firstRequest, INDEX_FAULT)) retryAt = Date.now() + INDEX_RETRY_MS;

  const open = (): IndexDb | undefined => {
    if (index !== undefined || closed || Date.now() < retryAt) return index;
    try {
      index = new IndexDb(dir);
      opened = fileIdentity(join(dir, "index.db"));
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
    /**
     * Whether the open index is still the file at `index.db` (true while none is open): a cache
     * directory removed or replaced under a long-lived cache leaves it holding a deleted file.
     */
    stillOnDisk(): boolean {
      return index === undefined || fileIdentity(join(dir, "index.db")) === opened;
    },
    /** Lets go of an index that is no longer the file on disk; the next use opens the new one. */
    reopenIfReplaced() {
      if (index === undefined || fileIdentity(join(dir, "index.db")) === opened) return;
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
