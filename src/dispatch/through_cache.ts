/**
 * The one path of a call through the cache, for both kinds of call it serves: crate compiles
 * (dispatch.ts) and build-script runs (build_script_run.ts). Read top to bottom: key the call
 * (or pass it through, not cacheable); wait for a store of that key still in flight; look it up
 * and restore it (a hit); else run it, record it, store what it left (a miss). Each kind
 * supplies only what differs: how it is keyed, how a hit is restored, what a miss leaves to
 * store, and its journal row.
 * @module
 */

import type { Cache } from "../cache/cache.ts";
import type { CacheSession } from "../cache/session.ts";
import { warnOncePerBuild } from "../cache/warn_once.ts";
import type { Recipe } from "../index/journal_tables.ts";
import { type CallRecord, recordCall } from "./record_call.ts";
import type { DispatchRequest } from "./request.ts";
import type { RustcRun } from "./run_rustc.ts";
import type { HitOutcome } from "./serve_hit.ts";

/** Runs the tool (rustc, or a build script) for a call the cache did not serve. */
export interface RustcRunner {
  /** Runs it untouched (not cacheable); resolves to its exit code, if known. */
  passthrough(): Promise<number | undefined>;
  /**
   * Runs it, streaming its output to cargo and keeping a copy to store. With `hold`, the
   * daemon's client waits after it (until {@linkcode compiled}) before cargo hears it finished.
   */
  compile(hold?: boolean): Promise<RustcRun>;
  /** After a held {@linkcode compile}: what it wrote is final, the client may go. */
  compiled?(): Promise<void>;
}

/** A call keyed for the cache: what the journal names it by. */
export interface KeyedCall {
  key: string;
  crate: string;
  version: string;
}

/** Why a call is not cacheable; the cache it may still be counted and journalled in. */
export interface NotCacheable {
  reason: string;
  cache?: Cache;
  /** A cache to journal the call in, when it has none to count it in. */
  journal?: Cache;
}

/** What a miss left, once its run is over (and before the client may go on). */
export interface Collected {
  /** Why it is not stored (it failed, it depends on the machine), if it is not. */
  reason?: string;
  /** Stores it (in the call's cache, as one of its stores in flight); resolves, never rejects. */
  store?: () => Promise<void>;
}

/** What one kind of call supplies to the path through the cache. */
export interface CallKind<U extends KeyedCall> {
  /** The journal's kind of an unparsed call of this kind. */
  kindOf(request: DispatchRequest): string;
  /** Whether a call of this kind that is not cacheable counts in the status counters. */
  countsNotCacheable: boolean;
  /** Keys the call, or says why it is not cacheable. */
  prepare(): Promise<{ unit: U; cache: Cache } | NotCacheable>;
  /** A call that is not cacheable, before it is passed through. */
  notCacheable?(): Promise<void>;
  /** The journal's fields of a keyed call besides its key, crate and version. */
  row(unit: U): Pick<CallRecord, "kind"> & Partial<CallRecord>;
  /** What the key hashed, for the journal of a miss. */
  recipe(unit: U): Recipe;
  /** Just before the lookup: a store of this key that must be written first. */
  beforeLookup?(unit: U, cache: Cache): Promise<void>;
  /** The hit path: the entry looked up and restored, or why not. */
  restore(unit: U, cache: Cache): Promise<HitOutcome>;
  /** After a hit was served. */
  served?(unit: U, cache: Cache, hit: HitOutcome & { served: true }): void;
  /** On a miss, before the run: what it says to the build, if anything. */
  beforeRun?(unit: U, cache: Cache): Promise<void>;
  /** Whether the client waits after the run until {@linkcode CallKind.collect} is done. */
  holds(unit: U, cache: Cache): boolean;
  /** After the run: what it left to store, or why not (`stale`: the key's slot held another). */
  collect(unit: U, cache: Cache, run: RustcRun, stale: boolean): Collected;
  /** The counters a miss adds. */
  missCounts(unit: U): Record<string, number>;
}

/**
 * Serves a call through the cache, or has `runner` run it and stores what it left. Resolves to
 * the exit code (undefined when the runner could not tell it: the client ran the tool itself).
 */
export async function throughCache<U extends KeyedCall>(
  kind: CallKind<U>,
  request: DispatchRequest,
  runner: RustcRunner,
): Promise<number | undefined> {
  const { env } = request;
  const prepared = await kind.prepare();
  if ("reason" in prepared) {
    if (kind.countsNotCacheable) {
      prepared.cache?.count(
        { not_cacheable: 1, [`not_cacheable:${prepared.reason}`]: 1 },
        request,
      );
    }
    await kind.notCacheable?.();
    // In a process of its own the tool has run by now, and its time is in the record; the
    // daemon hands it back to its client and never learns how long it took.
    const code = await runner.passthrough();
    const journal = prepared.cache ?? prepared.journal;
    recordCall(request, journal, {
      crate: env.CARGO_PKG_NAME ?? env.CARGO_CRATE_NAME ?? "",
      version: env.CARGO_PKG_VERSION ?? "",
      kind: kind.kindOf(request),
      outcome: "not-cacheable",
      reason: prepared.reason,
    });
    await journal?.endRequest();
    return code;
  }
  const { unit, cache } = prepared;
  const logged = { crate: unit.crate, version: unit.version, key: unit.key, ...kind.row(unit) };

  await kind.beforeLookup?.(unit, cache);
  // The daemon may still be writing this very entry for the build before.
  await cache.whenStored(unit.key);
  const lookup = await cache.using(unit.key, () => kind.restore(unit, cache));
  if (lookup.served) {
    kind.served?.(unit, cache, lookup);
    const { slot, savedMs, bytes } = lookup;
    recordCall(request, cache, {
      ...logged,
      outcome: "hit",
      slot,
      savedMs,
      bytes,
      ...(lookup.exitCode ? { reason: "failed probe" } : {}),
    });
    await cache.endRequest();
    return lookup.exitCode ?? 0;
  }
  // The cache's own writes are done before the tool runs: a dependent keys on them.
  await cache.endRequest();
  if (request.abandoned?.()) {
    // The client runs it by itself; nothing of this call may reach the build any more.
    recordCall(request, cache, { ...logged, outcome: "not-cacheable", reason: "client gone" });
    return undefined;
  }
  await kind.beforeRun?.(unit, cache);
  const run = await runner.compile(kind.holds(unit, cache));
  request.phases.done("compiled");
  const collected = kind.collect(unit, cache, run, lookup.stale === true);
  await runner.compiled?.();
  const reason = collected.reason ?? lookup.reason;
  recordCall(request, cache, {
    ...logged,
    outcome: "miss",
    rustcMs: Math.round(run.elapsedMs),
    recipe: kind.recipe(unit),
    ...(reason ? { reason } : {}),
  });
  cache.count(kind.missCounts(unit), request);
  await collected.store?.();
  await cache.endRequest();
  return run.code;
}

/**
 * Runs `work` with `runner`; a bug or fault in the cache costs the cache, never the build: it
 * warns (`fallback` says what happens instead) and runs the tool itself, unless it already ran.
 * Whatever happens, the call lets go of its cache in `session`.
 */
export async function withoutCacheOnFault(
  session: CacheSession,
  request: DispatchRequest,
  runner: RustcRunner,
  fallback: string,
  work: (runner: RustcRunner) => Promise<number | undefined>,
): Promise<number | undefined> {
  let ran = false;
  try {
    return await work({
      ...runner,
      compile: (hold) => {
        ran = true;
        return runner.compile(hold);
      },
    });
  } catch (error) {
    const detail = error instanceof Error ? error.stack ?? error.message : String(error);
    warnOncePerBuild(request, "internal", `internal error, ${fallback}: ${detail}`);
    if (ran) return undefined;
    return await runner.passthrough();
  } finally {
    session.release(request);
  }
}
