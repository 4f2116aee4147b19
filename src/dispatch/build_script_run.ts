/**
 * Build-script runs served from the cache: when cargo runs a registry crate's build script, the
 * replayer (replayer.ts) hands the run to the daemon, which restores the script's OUT_DIR and
 * prints its stdout and stderr as the script did (a hit), or lets the client run the real script
 * and stores what it printed and wrote (a miss): one kind of call on the one path through the
 * cache (through_cache.ts), which supplies its key, its restore and what a run leaves to store.
 *
 * Never a wrong replay: what a run's directives name outside OUT_DIR and the package (a
 * `rustc-link-search` into /usr/lib found by pkg-config and the libraries it links there, an
 * absolute include dir) is recorded by identity (system_inputs.ts) and must still resolve the same
 * on a hit; a failed run is not cached; what the script declared with `rerun-if-env-changed` and
 * `rerun-if-changed` is recorded and must still match on a hit; a replay that cannot restore
 * everything runs the real script instead.
 * @module
 */

import { basename, dirname, resolve } from "node:path";
import type { BundleMeta } from "../bundle/bundle.ts";
import type { ArtefactRow } from "../index/index_db.ts";
import type { Cache } from "../cache/cache.ts";
import { type EntryContent, lookup } from "../cache/lookup.ts";
import type { CacheSession } from "../cache/session.ts";
import { storeEntry } from "../cache/store_entry.ts";
import { cargoHomeOf } from "../config/cargo_home.ts";
import { digestFile } from "../index/file_digest.ts";
import { sha256Hex } from "../digest.ts";
import { errorMessage } from "../error_message.ts";
import {
  type CallKind,
  type KeyedCall,
  type NotCacheable,
  type RustcRunner,
  throughCache,
  withoutCacheOnFault,
} from "./through_cache.ts";
import type { Recipe } from "../index/journal_tables.ts";
import { fromTemplate, type PathRoots, toTemplate } from "../cache/path_roots.ts";
import { recordedEnvDep } from "../cache/variants.ts";
import { writeText } from "../cache/call.ts";
import type { DispatchRequest } from "./request.ts";
import { REAL_BUILD_SCRIPT } from "./replayer.ts";
import { runKeyOf, runRootsOf } from "./run_key.ts";
import type { RustcRun } from "./run_rustc.ts";
import { sourceIdentity } from "./source_identity.ts";
import { type HitOutcome, refuseIfAbandoned } from "./serve_hit.ts";
import { restoreOutDir, snapshotOutDir } from "./out_dir_snapshot.ts";
import { filesUnder } from "./files_under.ts";
import { systemInputsOf } from "./system_inputs.ts";
import { warnOncePerBuild } from "../cache/warn_once.ts";
import type { PlacingHooks } from "./placing_hooks.ts";

/** A watched directory with more files than this makes a run not worth caching. */
const MAX_WATCHED_FILES = 5_000;

/** Whether `request` is a build-script run handed over by the replayer. */
export function isBuildScriptRun(request: DispatchRequest): boolean {
  return basename(request.rustc) === REAL_BUILD_SCRIPT;
}

/** One keyed build-script run. */
interface Run extends KeyedCall {
  key: string;
  crate: string;
  version: string;
  source: string;
  outDir: string;
  manifestDir: string;
  roots: PathRoots;
  env: Record<string, string>;
  /** What the key hashed, for the journal. */
  recipe: Recipe;
  /** The release of the rustc the script probes, for the index. */
  rustcRelease: string;
}

/**
 * Serves a build-script run through the cache, or lets the client run it (`runner.compile`
 * runs the real script there) and stores it; what it served or stored is told to `placing`.
 * Resolves to the exit code. A fault of the cache runs the real script.
 */
export function dispatchRun(
  session: CacheSession,
  placing: PlacingHooks,
  request: DispatchRequest,
  runner: RustcRunner,
): Promise<number | undefined> {
  return withoutCacheOnFault(
    session,
    request,
    runner,
    "running the build script",
    (guarded) => throughCache(buildScriptRun(session, placing, request), request, guarded),
  );
}

/**
 * A build-script run as one kind of call through the cache: keyed from the script and its
 * environment (run_key.ts), restored as its OUT_DIR and printed output, stored from a snapshot of
 * OUT_DIR taken before the client goes on.
 */
function buildScriptRun(
  session: CacheSession,
  placing: PlacingHooks,
  request: DispatchRequest,
): CallKind<Run> {
  return {
    kindOf: () => "build-run",
    countsNotCacheable: false,
    prepare: () => prepareRun(session, request),
    row: () => ({ kind: "build-run" }),
    recipe: (run) => run.recipe,
    restore: (run, cache) => serveRun(run, cache, request),
    served: (run, cache) => placing.ran(run, cache, request),
    // Held: OUT_DIR is read before the client goes, after which cargo may start using it.
    holds: () => true,
    collect: (run, cache, result, stale) => {
      const snapshot = result.code === 0 ? snapshotOutDir(run.outDir, run.roots) : undefined;
      const system = result.code === 0
        ? systemInputsOf(result.stdout, run.roots, cache.memo)
        : undefined;
      const uncacheable = snapshot && "uncacheable" in snapshot
        ? snapshot.uncacheable
        : system === undefined
        ? "build script failed"
        : "uncacheable" in system
        ? system.uncacheable
        : undefined;
      if (
        uncacheable !== undefined || !snapshot || !("blob" in snapshot) || !system ||
        !("sources" in system)
      ) {
        return uncacheable === undefined ? {} : { reason: uncacheable };
      }
      const stored = { blob: snapshot.blob, systemInputs: system.sources };
      return {
        store: () => {
          placing.ran(run, cache, request);
          return cache.using(
            run.key,
            () => cache.storing(run.key, storeRun(run, result, stored, cache, request, stale)),
          );
        },
      };
    },
    missCounts: () => ({ misses: 1, run_misses: 1 }),
  };
}

/** Keys a run, or says why it is not cached. */
async function prepareRun(
  session: CacheSession,
  request: DispatchRequest,
): Promise<{ unit: Run; cache: Cache } | NotCacheable> {
  const { env } = request;
  const configured = await session.cacheFor(request);
  if ("reason" in configured) return configured;
  const { cache } = configured;
  const outDir = env.OUT_DIR;
  const manifestDir = env.CARGO_MANIFEST_DIR;
  if (!outDir || !manifestDir || !env.CARGO_PKG_NAME) return { reason: "not run by cargo", cache };
  const cargoHome = cargoHomeOf(env);
  const source = sourceIdentity(manifestDir, cargoHome);
  if (source === undefined) return { reason: "path or workspace crate", cache };
  const roots = runRootsOf({ outDir, manifestDir, cargoHome });
  const { key, rustcRelease, recipe } = await runKeyOf({
    binary: request.rustc,
    env,
    roots,
    source,
    memo: cache.memo,
    rustcMemo: cache.rustcMemo,
  });
  return {
    unit: {
      key,
      crate: env.CARGO_PKG_NAME,
      version: env.CARGO_PKG_VERSION ?? "",
      source,
      outDir,
      manifestDir,
      roots,
      env,
      rustcRelease,
      recipe: { inputs: recipe, externStems: { "build script": scriptStemOf(request.rustc) } },
    },
    cache,
  };
}

/**
 * The file stem of the compile that made a build script (`build_script_build-<hash>`), from the
 * binary's directory (`<target>/debug/build/<package>-<hash>/`).
 */
function scriptStemOf(binary: string): string {
  const dir = basename(dirname(binary));
  return `build_script_build${dir.slice(dir.lastIndexOf("-"))}`;
}

/**
 * The hit path: the run whose recorded inputs match (cache/lookup.ts), OUT_DIR restored, output
 * replayed. Not served: why, and whether the key's slot held a stale run.
 */
async function serveRun(
  run: Run,
  cache: Cache,
  request: DispatchRequest,
): Promise<HitOutcome> {
  const context = { roots: run.roots, env: run.env, memo: cache.memo };
  const label = `${run.crate} ${run.version}'s build script`;
  const { found, ...missed } = await lookup(
    { key: run.key, label, context, refuse: notARun },
    cache,
    request,
  );
  if (!found) return { served: false, ...missed };
  const { content, slot } = found;
  try {
    refuseIfAbandoned(request);
    restoreOutDir(content.files.get("out-dir") as Uint8Array, run.outDir, run.roots);
  } catch (error) {
    if (request.abandoned?.()) return { served: false, reason: "client gone" };
    warnOncePerBuild(
      request,
      "restore",
      `cannot restore ${run.crate}'s build script run, running it: ${errorMessage(error)}`,
    );
    return { served: false, reason: "restore failed" };
  }
  await writeText(request.stdout, fromTemplate(content.stdout, run.roots));
  await writeText(request.stderr, fromTemplate(content.stderr, run.roots));
  const compileMs = cache.recordHit(slot, request) ?? content.meta.compileMs;
  const savedMs = Math.max(0, Math.round(compileMs - request.phases.elapsed()));
  cache.count({ hits: 1, run_hits: 1, saved_ms: savedMs }, request);
  const outDir = content.files.get("out-dir") as Uint8Array;
  return { served: true, slot, savedMs, bytes: outDir.length };
}

/** Why a stored entry is not a build-script run (runs are stored as bundles, never hot copies). */
function notARun(content: EntryContent): string | undefined {
  const outDir = content.files.get("out-dir");
  return content.meta.kind === "build-run" && outDir instanceof Uint8Array
    ? undefined
    : "not a build-script run";
}

/**
 * The miss path: records what the run declared it depends on and what it names outside the build
 * (`systemInputs`), and stores the run with its OUT_DIR (`blob`); with `replacesStale`, the run
 * it replaces stays as an older variant (variants.ts).
 */
function storeRun(
  run: Run,
  result: RustcRun,
  { blob, systemInputs }: { blob: Uint8Array; systemInputs: BundleMeta["sources"] },
  cache: Cache,
  request: DispatchRequest,
  replacesStale: boolean,
): Promise<void> {
  const collect = () => {
    const directives = [...result.stdout.matchAll(/^cargo::?(rerun-if-[\w-]+)=(.*)$/gm)];
    const sources: BundleMeta["sources"] = [...systemInputs];
    for (const [, kind, value] of directives) {
      if (kind !== "rerun-if-changed") continue;
      // A file of the machine (a system header) is kept by its absolute path, like the inputs.
      for (const file of filesUnder(resolve(run.manifestDir, value!), MAX_WATCHED_FILES)) {
        sources.push({ path: toTemplate(file, run.roots), digest: digestFile(file, cache.memo) });
      }
    }
    const envDeps = directives
      .filter(([, kind]) => kind === "rerun-if-env-changed")
      .map(([, , name]) => recordedEnvDep(name!, run.env[name!], run.roots));
    const meta: BundleMeta = {
      format: 1,
      key: run.key,
      crate: run.crate,
      version: run.version,
      kind: "build-run",
      outputs: [{ role: "out-dir", digest: sha256Hex(blob) }],
      sources,
      envDeps,
      compileMs: Math.round(result.elapsedMs),
      createdAt: new Date().toISOString(),
    };
    return Promise.resolve({
      meta,
      files: new Map([["out-dir", blob] as const]),
      stdout: toTemplate(result.stdout, run.roots),
      stderr: toTemplate(result.stderr, run.roots),
    });
  };
  return storeEntry(
    {
      key: run.key,
      label: `${run.crate} ${run.version}'s build script run`,
      collect,
      rowOf: (meta, size) => rowOfRun(run, meta, size),
      replacesStale,
    },
    cache,
    request,
  );
}

/** The index row of a stored run. */
function rowOfRun(run: Run, meta: BundleMeta, size: number): ArtefactRow {
  return {
    key: run.key,
    crate: run.crate,
    version: run.version,
    kind: "build-run",
    crateTypes: "",
    source: run.source,
    features: Object.keys(run.env).filter((name) => name.startsWith("CARGO_FEATURE_"))
      .map((name) => name.slice("CARGO_FEATURE_".length).toLowerCase()).sort().join(","),
    profile: `opt-level=${run.env.OPT_LEVEL ?? "0"},debuginfo=${run.env.DEBUG ?? "false"}`,
    target: run.env.TARGET ?? "",
    rustc: run.rustcRelease,
    size,
    compileMs: meta.compileMs,
    recipe: run.recipe,
  };
}
