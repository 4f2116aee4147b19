/**
 * RUSTC_WRAPPER mode: cargo runs `cargo-warmup <rustc> <args…>` for every crate. A cacheable
 * invocation whose key is in the store is restored (a hit, serve_hit.ts); otherwise rustc runs
 * and its outputs are stored (a miss, store_miss.ts). Nothing the cache does may fail the build:
 * every cache fault degrades to running rustc.
 * @module
 */

import { join } from "node:path";
import { errorMessage } from "../error_message.ts";
import { cacheKeyOf } from "./cache_key.ts";
import { appendDispatchLog, type DispatchLogLine } from "./dispatch_log.ts";
import { expectedOutputs, unitKindOf } from "./outputs.ts";
import { pathRootsOf } from "./path_roots.ts";
import { phaseDone, phases, startPhases } from "./phases.ts";
import { parseRustcArgs } from "./rustc_args.ts";
import { rustcIdentity } from "./rustc_identity.ts";
import { runRustcPassthrough } from "./run_rustc.ts";
import { serveHit } from "./serve_hit.ts";
import { cacheDirOf, type DispatchSettings, openDispatchSettings } from "./settings.ts";
import { sourceIdentity } from "./source_identity.ts";
import { compileAndStore } from "./store_miss.ts";
import type { RustcOutcome, Unit } from "./unit.ts";
import { warnOncePerBuild } from "./warn_once.ts";

/** Runs one rustc invocation through the cache; resolves to the exit code to exit with. */
export async function dispatch(rustc: string, argv: string[]): Promise<number> {
  const started = performance.now();
  startPhases(started);
  const env = Deno.env.toObject();
  const outcome: RustcOutcome = {};
  let settings: DispatchSettings | undefined;
  try {
    settings = await openDispatchSettings(env);
    phaseDone("opened");
    return await dispatchThroughCache(rustc, argv, env, settings, started, outcome);
  } catch (error) {
    // A bug or fault in the cache must cost the cache, never the build.
    const detail = error instanceof Error ? error.stack ?? error.message : String(error);
    warnOncePerBuild(
      cacheDirOf(env),
      "internal",
      `internal error, compiling without the cache: ${detail}`,
    );
    return outcome.exitCode ?? await runRustcPassthrough(rustc, argv);
  } finally {
    await settings?.close().catch(() => {});
  }
}

async function dispatchThroughCache(
  rustc: string,
  argv: string[],
  env: Record<string, string>,
  settings: DispatchSettings,
  started: number,
  outcome: RustcOutcome,
): Promise<number> {
  const log = (line: Omit<DispatchLogLine, "ms">) =>
    appendDispatchLog(env.CARGO_WARMUP_LOG, {
      ...line,
      ms: Math.round(performance.now() - started),
      phases,
    });

  const prepared = await prepareUnit(rustc, argv, env, settings);
  if ("reason" in prepared) {
    settings.count({ not_cacheable: 1, [`not_cacheable:${prepared.reason}`]: 1 });
    log({ crate: env.CARGO_CRATE_NAME ?? "", outcome: "not-cacheable", reason: prepared.reason });
    outcome.exitCode = await runRustcPassthrough(rustc, argv);
    return outcome.exitCode;
  }
  const unit = prepared;
  phaseDone("keyed");
  const logUnit = {
    crate: unit.crate,
    version: unit.version,
    kind: unitKindOf(unit.args),
    key: unit.key,
  };

  const stale = await serveHit(unit, settings, started);
  if (stale === "served") {
    log({ ...logUnit, outcome: "hit" });
    return 0;
  }
  const code = await compileAndStore(unit, settings, outcome);
  log({
    ...logUnit,
    outcome: "miss",
    ...(outcome.rustcMs === undefined ? {} : { rustcMs: outcome.rustcMs }),
    ...(stale ? { reason: stale } : {}),
    ...(code ? { reason: "compile failed" } : {}),
  });
  return code;
}

/** Parses and keys an invocation, or says why it is not cacheable. */
async function prepareUnit(
  rustc: string,
  argv: string[],
  env: Record<string, string>,
  settings: DispatchSettings,
): Promise<Unit | { reason: string }> {
  const parsed = parseRustcArgs(argv);
  if (!parsed.cacheable) return { reason: parsed.reason };
  if (settings.disabled) {
    settings.disabled();
    return { reason: "cache disabled" };
  }
  const args = parsed.args;
  if (env.CARGO_PRIMARY_PACKAGE) return { reason: "workspace member" };
  const manifestDir = env.CARGO_MANIFEST_DIR;
  if (!manifestDir || !env.CARGO_PKG_NAME) return { reason: "not run by cargo" };
  const cargoHome = env.CARGO_HOME ?? join(env.HOME ?? "/", ".cargo");
  const source = sourceIdentity(manifestDir, cargoHome);
  if (source === undefined) return { reason: "path or workspace crate" };

  try {
    const identity = await rustcIdentity(rustc, env, settings.rustcMemo);
    const target = args.target ?? identity.host;
    const outputs = expectedOutputs(args, target);
    if ("unsupported" in outputs) return { reason: outputs.unsupported };
    const roots = pathRootsOf({
      outDir: args.outDir,
      outputStem: args.crateName + args.extraFilename,
      extraFilename: args.extraFilename,
      manifestDir,
      outDirEnv: env.OUT_DIR,
      cargoHome,
    });
    const { key } = cacheKeyOf({
      args,
      env,
      roots,
      rustc: identity,
      source,
      memo: settings.memo,
    });
    return {
      rustc,
      argv,
      args,
      env,
      roots,
      outputs,
      key,
      crate: env.CARGO_PKG_NAME,
      version: env.CARGO_PKG_VERSION ?? "",
      source,
      target,
      rustcRelease: identity.release,
    };
  } catch (error) {
    settings.warn(
      "key",
      `cannot compute a cache key, compiling without the cache: ${errorMessage(error)}`,
    );
    return { reason: "key error" };
  }
}
