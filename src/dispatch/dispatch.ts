/**
 * RUSTC_WRAPPER mode: cargo runs `cargo-warmup <rustc> <args…>` for every crate. A crate compile
 * is one kind of call on the one path through the cache (through_cache.ts): a cacheable call
 * whose key is in the store is restored (a hit, serve_hit.ts); otherwise rustc runs and its
 * outputs are stored (a miss, store_miss.ts). Who runs rustc is the caller's business (a
 * {@linkcode RustcRunner}): this process, or the daemon's client, which holds cargo's jobserver
 * and streams rustc's output itself. Nothing the cache does may fail the build: every cache fault
 * degrades to running rustc.
 * @module
 */

import { errorMessage } from "../error_message.ts";
import {
  type CallKind,
  type RustcRunner,
  throughCache,
  withoutCacheOnFault,
} from "./through_cache.ts";
import { cargoHomeOf } from "../config/cargo_home.ts";
import { daemonOff } from "../config/settings.ts";
import { cacheKeyOf } from "./cache_key.ts";
import { depInfoPath, expectedOutputs, outputStem, unitKindOf } from "./outputs.ts";
import { kindOfCall, recipeOf } from "./record_call.ts";
import { pathRootsOf } from "../cache/path_roots.ts";
import { type DispatchRequest, requestOfThisProcess } from "./request.ts";
import { parseRustcArgs } from "./rustc_args.ts";
import { rustcIdentity } from "../rustc_identity.ts";
import { linkerIdentity, linkerOf, linksNatively } from "./machine_identity.ts";
import { nativeCpuOf } from "./native_cpu.ts";
import { runRustcPassthrough, runRustcRecorded } from "./run_rustc.ts";
import { serveHit } from "./serve_hit.ts";
import type { Cache } from "../cache/cache.ts";
import { CacheSession } from "../cache/session.ts";
import { sourceIdentity } from "./source_identity.ts";
import { storeCompiled, storeFailure } from "./store_miss.ts";
import type { HeldStore } from "../cache/settled_store.ts";
import { isDeterministicProbeFailure } from "./failed_probe.ts";
import type { Unit } from "./unit.ts";
import { warnOncePerBuild } from "../cache/warn_once.ts";
import { runtimeDirOf, whyRuntimeDirRefused } from "../runtime_dir.ts";
import { installReplayer, willReplay } from "./replayer.ts";
import type { WarmupConfig } from "../config/warmup_config.ts";
import { recordProjectOfBuild } from "../warm/project_graphs.ts";
import { noticeNewToolchain } from "../warm/toolchain_change.ts";
import { buildScriptInputs, workspacePolicyOf, workspaceSourceOf } from "./workspace_unit.ts";
import type { PlacingHooks } from "./placing_hooks.ts";

/**
 * Serves one call from this process: the dispatcher when no daemon serves it; `placing` is the
 * launcher's (cli/main.ts).
 */
export async function dispatchInProcess(
  rustc: string,
  argv: string[],
  placing: PlacingHooks,
): Promise<number> {
  const session = new CacheSession();
  const request = requestOfThisProcess(rustc, argv, session.builds);
  const runner: RustcRunner = {
    passthrough: () => runRustcPassthrough(rustc, argv),
    compile: () => runRustcRecorded(rustc, argv, request),
  };
  try {
    return await dispatch(session, placing, request, runner) ?? 0;
  } finally {
    for (const task of request.afterReply.splice(0)) task();
    await session.close().catch(() => {});
    await request.stderr.write(new Uint8Array(0));
  }
}

/**
 * Runs one call through the cache: served, or compiled by `runner` and stored; what it served or
 * stored is told to `placing`. Resolves to the exit code (undefined when the runner could not
 * tell it, i.e. the client ran rustc itself).
 */
export function dispatch(
  session: CacheSession,
  placing: PlacingHooks,
  request: DispatchRequest,
  runner: RustcRunner,
): Promise<number | undefined> {
  return withoutCacheOnFault(
    session,
    request,
    runner,
    "compiling without the cache",
    (guarded) => throughCache(crateCompile(session, placing, request), request, guarded),
  );
}

/**
 * A crate compile as one kind of call through the cache: keyed from rustc's arguments, restored
 * by serve_hit.ts, stored by store_miss.ts (a deterministic failure too); an incremental
 * workspace library's store held back until the builds are over (settled_store.ts).
 */
function crateCompile(
  session: CacheSession,
  placing: PlacingHooks,
  request: DispatchRequest,
): CallKind<Unit> {
  /** The build's `auto-rewarm` setting, once the call is keyed. */
  let autoRewarm = false;
  return {
    kindOf: () => kindOfCall(request.argv),
    countsNotCacheable: true,
    notCacheable: async () => {
      // Cargo asks this before it looks at a new target dir: its units are placed first.
      if (isVersionProbe(request)) await placing.probed(session, request);
    },
    prepare: async () => {
      const prepared = await prepareUnit(session, request);
      if ("reason" in prepared) return prepared;
      const { unit, cache, config } = prepared;
      autoRewarm = config.autoRewarm;
      request.phases.done("keyed");
      if (request.via === "in-process") warnIfRuntimeDirRefused(request);
      // Once per build, after cargo has its answer: the project, for a later `init --rewarm`.
      request.afterReply.push(() =>
        recordProjectOfBuild(cache.dir, request, unit.rustcRelease, config.projects)
      );
      return { unit, cache };
    },
    row: (unit) => ({ kind: unitKindOf(unit.args), stem: outputStem(unit.args) }),
    recipe: (unit) => unit.recipe(),
    // The daemon may be holding this very entry back.
    beforeLookup: (unit) =>
      session.heldStores.beforeLookup(heldStoreOf(unit, request), request.buildId),
    restore: (unit, cache) => serveHit(unit, cache, request),
    served: (unit, cache, hit) => {
      installReplayer(unit, cache.dir);
      if (unit.fromWorkspace) cache.count({ workspace_hits: 1 }, request);
      if (!hit.exitCode) placing.compiled(unit, cache, request);
    },
    beforeRun: async (unit, cache) => {
      const notice = await noticeNewToolchain(cache.dir, unit.rustcRelease, request, autoRewarm);
      if (notice) warnOncePerBuild(request, "toolchain", notice.message);
    },
    // A build script's client waits for its replayer; every other miss goes at once.
    holds: (unit, cache) => willReplay(unit, cache.dir),
    collect: (unit, cache, run, stale) => {
      if (run.code !== 0) {
        const failure = isDeterministicProbeFailure(unit, run);
        return {
          reason: "compile failed",
          ...(failure && {
            store: () =>
              cache.using(
                unit.key,
                () => cache.storing(unit.key, storeFailure(unit, run, cache, request)),
              ),
          }),
        };
      }
      // Before cargo runs a build script it just compiled: the run goes through the cache too.
      const realBinary = installReplayer(unit, cache.dir);
      const stored = realBinary === undefined ? unit : {
        ...unit,
        outputs: unit.outputs.map((output) =>
          output.role === "bin" ? { ...output, path: realBinary } : output
        ),
      };
      return {
        store: () => {
          placing.compiled(unit, cache, request);
          return session.heldStores.storeWhenSettled(
            heldStoreOf(unit, request),
            cache,
            request,
            () =>
              // Not evicted between its bundle and its hot copy.
              cache.using(
                unit.key,
                () => cache.storing(unit.key, storeCompiled(stored, run, cache, request, stale)),
              ),
          );
        },
      };
    },
    missCounts: (unit) => ({ misses: 1, ...(unit.fromWorkspace ? { workspace_misses: 1 } : {}) }),
  };
}

/**
 * How the held-back stores (settled_store.ts) know `unit`'s store: it waits for the builds to be
 * over when it is an incremental compile of a workspace library (a developer's edit loop) in the
 * daemon, which outlives the build; one waits per crate and target dir, by its first output.
 */
function heldStoreOf(unit: Unit, request: DispatchRequest): HeldStore {
  return {
    key: unit.key,
    slot: unit.outputs[0]?.path ?? unit.key,
    files: [...unit.outputs.map((output) => output.path), depInfoPath(unit.args)].flatMap((path) =>
      path === undefined ? [] : [path]
    ),
    waits: request.via === "daemon" && unit.fromWorkspace && unit.args.codegen.has("incremental"),
  };
}

/**
 * A runtime directory the front door refuses (another owner, open to others) keeps the daemon
 * off and every call in a process of its own: slower, and worth saying once per build.
 */
function warnIfRuntimeDirRefused(request: DispatchRequest): void {
  if (daemonOff(request.env)) return;
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
      outputStem: outputStem(args),
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

/** Cargo's version probe (`rustc -vV`), asked for no crate. */
function isVersionProbe(request: DispatchRequest): boolean {
  return request.argv.length === 1 && request.argv[0] === "-vV" && !request.env.CARGO_PKG_NAME;
}
