/**
 * RUSTC_WRAPPER mode: cargo runs `cargo-warmup <rustc> <args…>` for every crate. A cacheable
 * call whose key is in the store is restored (a hit, serve_hit.ts); otherwise rustc runs and its
 * outputs are stored (a miss, store_miss.ts). Who runs rustc is the caller's business (a
 * {@linkcode RustcRunner}): this process, or the daemon's client, which holds cargo's jobserver
 * and streams rustc's output itself. Nothing the cache does may fail the build: every cache fault
 * degrades to running rustc.
 * @module
 */

import { errorMessage } from "../error_message.ts";
import { cargoHomeOf } from "../config/cargo_home.ts";
import { cacheKeyOf } from "./cache_key.ts";
import { expectedOutputs, unitKindOf } from "./outputs.ts";
import { kindOfCall, recipeOf, recordCall, stemOf } from "../journal/record_call.ts";
import { pathRootsOf } from "./path_roots.ts";
import { type DispatchRequest, requestOfThisProcess } from "./request.ts";
import { parseRustcArgs } from "./rustc_args.ts";
import { rustcIdentity } from "./rustc_identity.ts";
import { linkerIdentity, linkerOf, linksNatively } from "./machine_identity.ts";
import { nativeCpuOf } from "./native_cpu.ts";
import { runRustcPassthrough, runRustcRecorded, type RustcRun } from "./run_rustc.ts";
import { serveHit } from "./serve_hit.ts";
import type { Cache } from "../cache/cache.ts";
import { CacheSession } from "../cache/session.ts";
import { sourceIdentity } from "./source_identity.ts";
import { storeCompiled, storeFailure } from "./store_miss.ts";
import { beforeLookup, storeWhenSettled } from "./settled_store.ts";
import { isDeterministicProbeFailure } from "./failed_probe.ts";
import type { Unit } from "./unit.ts";
import { warnOncePerBuild } from "./warn_once.ts";
import { runtimeDirOf, whyRuntimeDirRefused } from "../daemon/paths.ts";
import { installReplayer, willReplay } from "./replayer.ts";
import type { WarmupConfig } from "../config/config.ts";
import { recordProjectOfBuild } from "../warm/project_graphs.ts";
import { noticeNewToolchain } from "../warm/toolchain_change.ts";
import { buildScriptInputs, workspacePolicyOf, workspaceSourceOf } from "./workspace_unit.ts";

/** Runs rustc for a call the cache did not serve. */
export interface RustcRunner {
  /** Runs rustc untouched (not cacheable); resolves to its exit code, if known. */
  passthrough(): Promise<number | undefined>;
  /**
   * Runs rustc, streaming its output to cargo and keeping a copy to store. With `hold`, the
   * daemon's client waits after it (until {@linkcode compiled}) before cargo hears it finished.
   */
  compile(hold?: boolean): Promise<RustcRun>;
  /** After a held {@linkcode compile}: what rustc wrote is final, the client may go. */
  compiled?(): Promise<void>;
}

/** Serves one call from this process: the dispatcher when no daemon serves it. */
export async function dispatchInProcess(rustc: string, argv: string[]): Promise<number> {
  const request = requestOfThisProcess(rustc, argv);
  const session = new CacheSession();
  const runner: RustcRunner = {
    passthrough: () => runRustcPassthrough(rustc, argv),
    compile: () => runRustcRecorded(rustc, argv, request),
  };
  try {
    return await dispatch(session, request, runner) ?? 0;
  } finally {
    for (const task of request.afterReply.splice(0)) task();
    await session.close().catch(() => {});
    await request.stderr.write(new Uint8Array(0));
  }
}

/**
 * Runs one call through the cache: served, or compiled by `runner` and stored. Resolves to the
 * exit code (undefined when the runner could not tell it, i.e. the client ran rustc itself).
 */
export async function dispatch(
  session: CacheSession,
  request: DispatchRequest,
  runner: RustcRunner,
): Promise<number | undefined> {
  try {
    return await withoutCacheOnFault(
      request,
      runner,
      "compiling without the cache",
      (guarded) => dispatchThroughCache(session, request, guarded),
    );
  } finally {
    session.release(request);
  }
}

/**
 * Runs `work` with `runner`; a bug or fault in the cache costs the cache, never the build: it
 * warns (`fallback` says what happens instead) and runs the tool itself, unless it already ran.
 */
export async function withoutCacheOnFault(
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
  }
}

async function dispatchThroughCache(
  session: CacheSession,
  request: DispatchRequest,
  runner: RustcRunner,
): Promise<number | undefined> {
  const { env, phases } = request;
  const prepared = await prepareUnit(session, request);
  if ("reason" in prepared) {
    prepared.cache?.count(
      { not_cacheable: 1, [`not_cacheable:${prepared.reason}`]: 1 },
      request,
    );
    // In a process of its own the compile has run by now, and its time is in the record; the
    // daemon hands it back to its client and never learns how long it took.
    const code = await runner.passthrough();
    const journal = prepared.cache ?? prepared.journal;
    recordCall(request, journal, {
      crate: env.CARGO_PKG_NAME ?? env.CARGO_CRATE_NAME ?? "",
      version: env.CARGO_PKG_VERSION ?? "",
      kind: kindOfCall(request.argv),
      outcome: "not-cacheable",
      reason: prepared.reason,
    });
    await journal?.endRequest();
    return code;
  }
  const { unit, cache, config } = prepared;
  phases.done("keyed");
  if (request.via === "in-process") warnIfRuntimeDirRefused(request);
  // Once per build, after cargo has its answer: the project, for a later `init --rewarm`.
  request.afterReply.push(() =>
    recordProjectOfBuild(cache.dir, request, unit.rustcRelease, config.projects)
  );
  const logUnit = {
    crate: unit.crate,
    version: unit.version,
    kind: unitKindOf(unit.args),
    key: unit.key,
    stem: stemOf(unit.args),
  };

  // The daemon may still be writing this very entry for the build before, or holding it back.
  await beforeLookup(unit, request.buildId);
  await cache.whenStored(unit.key);
  const lookup = await cache.using(unit.key, () => serveHit(unit, cache, request));
  if (lookup.served) {
    installReplayer(unit, cache.dir);
    if (unit.fromWorkspace) cache.count({ workspace_hits: 1 }, request);
    const { slot, savedMs, bytes } = lookup;
    recordCall(request, cache, {
      ...logUnit,
      outcome: "hit",
      slot,
      savedMs,
      bytes,
      ...(lookup.exitCode ? { reason: "failed probe" } : {}),
    });
    await cache.endRequest();
    return lookup.exitCode ?? 0;
  }
  // The cache's own writes are done before rustc runs: a dependent keys on them.
  await cache.endRequest();
  if (request.abandoned?.()) {
    // The client compiles by itself; nothing of this call may reach the build any more.
    recordCall(request, cache, { ...logUnit, outcome: "not-cacheable", reason: "client gone" });
    return undefined;
  }
  const notice = await noticeNewToolchain(cache.dir, unit.rustcRelease, request, config.autoRewarm);
  if (notice) warnOncePerBuild(request, "toolchain", notice.message);
  // A build script's client waits for its replayer; every other miss goes at once.
  const run = await runner.compile(willReplay(unit, cache.dir));
  phases.done("compiled");
  // Before cargo runs a build script it just compiled: the run goes through the cache too.
  const realBinary = run.code === 0 ? installReplayer(unit, cache.dir) : undefined;
  await runner.compiled?.();
  recordCall(request, cache, {
    ...logUnit,
    outcome: "miss",
    rustcMs: Math.round(run.elapsedMs),
    recipe: unit.recipe(),
    ...(lookup.reason ? { reason: lookup.reason } : {}),
    ...(run.code ? { reason: "compile failed" } : {}),
  });
  cache.count({ misses: 1, ...(unit.fromWorkspace ? { workspace_misses: 1 } : {}) }, request);
  if (run.code !== 0 && isDeterministicProbeFailure(unit, run)) {
    await cache.using(
      unit.key,
      () => cache.storing(unit.key, storeFailure(unit, run, cache, request)),
    );
  }
  if (run.code === 0) {
    // Not evicted between its bundle and its unpacked mirror.
    const stored = realBinary === undefined ? unit : {
      ...unit,
      outputs: unit.outputs.map((output) =>
        output.role === "bin" ? { ...output, path: realBinary } : output
      ),
    };
    await storeWhenSettled(unit, cache, request, () =>
      cache.using(
        unit.key,
        () => cache.storing(unit.key, storeCompiled(stored, run, cache, request, lookup.stale)),
      ));
  }
  await cache.endRequest();
  return run.code;
}

/**
 * A runtime directory the front door refuses (another owner, open to others) keeps the daemon
 * off and every call in a process of its own: slower, and worth saying once per build.
 */
function warnIfRuntimeDirRefused(request: DispatchRequest): void {
  if (/^(0|false|off|no)$/.test(request.env.CARGO_WARMUP_DAEMON ?? "")) return;
  const refused = whyRuntimeDirRefused(runtimeDirOf(request.env));
  if (refused === undefined) return;
  warnOncePerBuild(
    request,
    "runtime-dir",
    `${refused}, so the daemon is not used and every call starts a process (slower); ` +
      `remove it or set CARGO_WARMUP_RUNTIME_DIR to a directory of your own`,
  );
}

/** Parses and keys a call, or says why it is not cacheable. */
async function prepareUnit(
  session: CacheSession,
  request: DispatchRequest,
): Promise<
  | { unit: Unit; cache: Cache; config: WarmupConfig }
  | { reason: string; cache?: Cache; journal?: Cache }
> {
  const { env } = request;
  const parsed = parseRustcArgs(request.argv);
  if (!parsed.cacheable) {
    // A crate compile the cache cannot take (incremental, a test harness) is still one of the
    // build's calls, for the journal; cargo's queries are not.
    if (!env.CARGO_PKG_NAME) return { reason: parsed.reason };
    // Only for the journal: a cache that cannot be had costs this call nothing.
    const configured = await session.cacheFor(request).catch(() => ({ cache: undefined }));
    return { reason: parsed.reason, ...(configured.cache ? { journal: configured.cache } : {}) };
  }
  const configured = await session.cacheFor(request);
  request.phases.done("configured");
  if ("reason" in configured) return configured;
  const { cache, config } = configured;
  const args = parsed.args;
  const manifestDir = env.CARGO_MANIFEST_DIR;
  if (!manifestDir || !env.CARGO_PKG_NAME) return { reason: "not run by cargo", cache };
  const cargoHome = cargoHomeOf(env);
  const published = env.CARGO_PRIMARY_PACKAGE ? undefined : sourceIdentity(manifestDir, cargoHome);
  if (published === undefined) {
    const policy = workspacePolicyOf(args, config.workspace, !!env.CARGO_PRIMARY_PACKAGE);
    if ("reason" in policy) return { reason: policy.reason, cache };
    request.localOnly = policy.localOnly;
  }
  const source = published ?? workspaceSourceOf(manifestDir, request.cwd);
  request.phases.done("identified");

  try {
    const identity = await rustcIdentity(request.rustc, env, cache.rustcMemo);
    request.phases.done("rustc");
    const target = args.target ?? identity.host;
    const outputs = expectedOutputs(args, target);
    if ("unsupported" in outputs) return { reason: outputs.unsupported, cache };
    const roots = pathRootsOf({
      outDir: args.outDir,
      outputStem: args.crateName + args.extraFilename,
      extraFilename: args.extraFilename,
      manifestDir,
      outDirEnv: env.OUT_DIR,
      cargoHome,
      workspaceRoot: published === undefined ? request.cwd : undefined,
      target: args.target,
    });
    const buildScript = published === undefined
      ? buildScriptInputs(env.OUT_DIR, manifestDir, roots, cache.memo)
      : undefined;
    // This machine's part, asked once and remembered: the linker and libc of a linked output,
    // the CPU behind `-C target-cpu=native`.
    const linker = linksNatively(args)
      ? await linkerIdentity(linkerOf(args), env, request.cwd, cache.rustcMemo)
      : undefined;
    const nativeCpu = await nativeCpuOf(
      {
        rustc: request.rustc,
        rustcIdentity: identity.identity,
        args,
        target,
        env,
        cwd: request.cwd,
      },
      cache.rustcMemo,
    );
    const { key, recipe: inputs } = cacheKeyOf({
      args,
      env,
      roots,
      rustc: identity,
      source,
      memo: cache.memo,
      ...(buildScript ? { buildScript } : {}),
      ...(linker ? { linker } : {}),
      ...(nativeCpu ? { nativeCpu } : {}),
    });
    const unit: Unit = {
      rustc: request.rustc,
      argv: request.argv,
      args,
      env,
      cwd: request.cwd,
      roots,
      outputs,
      key,
      crate: env.CARGO_PKG_NAME,
      version: env.CARGO_PKG_VERSION ?? "",
      source,
      fromWorkspace: published === undefined,
      target,
      rustcRelease: identity.release,
      recipe: () => recipeOf(inputs, args),
    };
    return { unit, cache, config };
  } catch (error) {
    warnOncePerBuild(
      request,
      "key",
      `cannot compute a cache key, compiling without the cache: ${errorMessage(error)}`,
    );
    return { reason: "key error", cache };
  }
}
