/**
 * RUSTC_WRAPPER mode: cargo runs `cargo-warmup <rustc> <args…>` for every crate. A cacheable
 * invocation whose key is in the store is restored (a hit); otherwise rustc runs and its outputs
 * are stored (a miss). Nothing the cache does may fail the build: every cache fault degrades to
 * running rustc.
 * @module
 */

import { dirname, join } from "node:path";
import {
  type Bundle,
  BundleError,
  type BundleMeta,
  openBundle,
  packBundle,
} from "../bundle/bundle.ts";
import {
  digestFile,
  type DigestMemo,
  rememberWrittenFile,
  sha256Hex,
} from "../index/file_digest.ts";
import { cacheKeyOf } from "./cache_key.ts";
import { parseDepInfo } from "./dep_info.ts";
import { appendDispatchLog, type DispatchLogLine } from "./dispatch_log.ts";
import {
  depInfoPath,
  type ExpectedOutput,
  expectedOutputs,
  type OutputRole,
  unitKindOf,
} from "./outputs.ts";
import { fromTemplate, type PathRoots, pathRootsOf, toTemplate } from "./path_roots.ts";
import { parseRustcArgs, type RustcArgs } from "./rustc_args.ts";
import { rustcIdentity } from "./rustc_identity.ts";
import { runRustcPassthrough, runRustcRecorded } from "./run_rustc.ts";
import { sourceIdentity } from "./source_identity.ts";
import { cacheDirOf, type DispatchSettings, openDispatchSettings } from "./settings.ts";
import { readMirror, writeMirror } from "../bundle/mirror.ts";
import { warnOncePerBuild } from "./warn_once.ts";

/** One cacheable invocation with everything a hit or a miss needs. */
interface Unit {
  rustc: string;
  argv: string[];
  args: RustcArgs;
  env: Record<string, string>;
  roots: PathRoots;
  outputs: ExpectedOutput[];
  key: string;
  crate: string;
  version: string;
  source: string;
  target: string;
  rustcRelease: string;
}

/**
 * When each phase of this dispatch ended, in ms since it started: written to the dispatch log so
 * that "why is a hit slow?" has an answer. One dispatcher process handles one invocation.
 */
const phases: Record<string, number> = {};
let phaseClock = 0;
function phaseDone(name: string): void {
  phases[name] = Math.round((performance.now() - phaseClock) * 10) / 10;
}

/** Whether rustc already ran for this invocation, and how it ended. */
interface RustcOutcome {
  exitCode?: number;
  /** How long rustc itself ran, so the log can tell the cache's own cost apart. */
  rustcMs?: number;
}

/** Runs one rustc invocation through the cache; resolves to the exit code to exit with. */
export async function dispatch(rustc: string, argv: string[]): Promise<number> {
  const started = performance.now();
  phaseClock = started;
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
      `cannot compute a cache key, compiling without the cache: ${message(error)}`,
    );
    return { reason: "key error" };
  }
}

/**
 * Restores a hit. Resolves to "served", to a reason the cached entry could not be used (its
 * sources or environment changed, it was corrupt), or to undefined when nothing was cached.
 */
async function serveHit(
  unit: Unit,
  settings: DispatchSettings,
  started: number,
): Promise<"served" | string | undefined> {
  const mirrored = readMirror(settings.cacheDir, unit.key, settings.signingKey !== undefined);
  let content: RestorableContent;
  let bundle: Bundle | undefined;
  if (mirrored) {
    settings.touch(unit.key);
    content = mirrored;
  } else {
    const bytes = await settings.get(unit.key);
    phaseDone("fetched");
    if (bytes === undefined) return undefined;
    try {
      bundle = await openBundle(bytes, unit.key, { signingKey: settings.signingKey });
    } catch (error) {
      if (!(error instanceof BundleError)) throw error;
      settings.warn(
        `corrupt-${unit.key}`,
        `dropping a bad cache entry for ${unit.crate} ${unit.version}: ${error.message}`,
      );
      settings.count({ corrupt: 1 });
      await settings.drop(unit.key);
      return "corrupt entry";
    }
    content = bundle;
  }
  phaseDone("unpacked");
  const staleReason = whyStale(content.meta, unit, settings.memo);
  phaseDone("verified");
  if (staleReason) {
    settings.count({ stale: 1 });
    return staleReason;
  }

  try {
    await restoreOutputs(content, unit, settings.memo);
  } catch (error) {
    settings.warn(
      "restore",
      `cannot restore ${unit.crate} from the cache, compiling it: ${message(error)}`,
    );
    return "restore failed";
  }
  phaseDone("restored");
  const elapsed = performance.now() - started;
  const compileMs = settings.recordHit(unit.key) ?? content.meta.compileMs;
  settings.count({ hits: 1, saved_ms: Math.max(0, Math.round(compileMs - elapsed)) });
  if (bundle) {
    // After the build has its files: the next hit on this entry copies instead of unpacking.
    mirrorQuietly(settings, bundle, unit);
  }
  phaseDone("recorded");
  return "served";
}

/** Mirrors an entry whose bundle was just stored or verified; signed exactly when it was. */
function mirrorQuietly(
  settings: DispatchSettings,
  bundle: Omit<Bundle, "files">,
  unit: Unit,
): void {
  try {
    const trust = settings.signingKey ? "signed" : "unsigned";
    writeMirror(settings.cacheDir, bundle, unit.outputs, trust);
  } catch {
    // Without a mirror, hits unpack the bundle: slower, never wrong.
  }
}

/** A cached entry is only valid if the sources and environment it was built from still match. */
function whyStale(
  meta: BundleMeta,
  unit: Unit,
  memo: DigestMemo,
): string | undefined {
  for (const source of meta.sources) {
    const path = fromTemplate(source.path, unit.roots);
    let digest: string | undefined;
    try {
      digest = digestFile(path, memo);
    } catch {
      // a source that is gone has changed
    }
    if (digest !== source.digest) return `source changed: ${path}`;
  }
  for (const dep of meta.envDeps) {
    const value = unit.env[dep.name];
    const now = value === undefined ? undefined : toTemplate(value, unit.roots);
    if (now !== dep.value) return `environment changed: ${dep.name}`;
  }
  return undefined;
}

/** A cached compilation ready to restore: outputs as bytes (a bundle) or as files (a mirror). */
type RestorableContent = Omit<Bundle, "files"> & { files: Map<OutputRole, Uint8Array | string> };

/**
 * Writes a hit's files where this build expects them, in the order rustc would: the `.rmeta`
 * first, announced to cargo at once (the replayed stderr up to its artifact notification), so
 * that cargo starts dependent crates while the rlib is still being written.
 */
async function restoreOutputs(
  content: RestorableContent,
  unit: Unit,
  memo: DigestMemo,
): Promise<void> {
  const digests = new Map(content.meta.outputs.map((output) => [output.role, output.digest]));
  const stderr = fromTemplate(content.stderr, unit.roots);
  const announced = metadataAnnouncementEnd(stderr);
  const ordered = [...unit.outputs].sort((a, b) =>
    Number(b.role === "rmeta") - Number(a.role === "rmeta")
  );
  for (const output of ordered) {
    const source = content.files.get(output.role);
    const digest = digests.get(output.role);
    if (source === undefined || digest === undefined) {
      throw new BundleError(`no ${output.role} in bundle`);
    }
    writeAtomically(output.path, source, output.role === "bin" ? 0o755 : 0o644);
    // Remembered before cargo hears of the file: a dependent keys on its digest.
    rememberWrittenFile(output.path, digest, memo);
    if (output.role === "rmeta") {
      memo.flush?.();
      await writeAll(Deno.stderr, stderr.slice(0, announced));
    }
  }
  const depInfo = depInfoPath(unit.args);
  if (depInfo !== undefined && content.depInfo !== undefined) {
    writeAtomically(
      depInfo,
      new TextEncoder().encode(fromTemplate(content.depInfo, unit.roots, true)),
      0o644,
    );
  }
  await writeAll(Deno.stdout, fromTemplate(content.stdout, unit.roots));
  const alreadyWritten = unit.outputs.some((output) => output.role === "rmeta") ? announced : 0;
  await writeAll(Deno.stderr, stderr.slice(alreadyWritten));
}

/** Where the line announcing the `.rmeta` artifact ends in rustc's JSON stderr (0 if absent). */
function metadataAnnouncementEnd(stderr: string): number {
  const match = /^\{"\$message_type":"artifact".*"emit":"metadata"\}$/m.exec(stderr);
  return match === null ? 0 : match.index + match[0].length + 1;
}

/** Runs rustc and, when it succeeds, stores its outputs; a failure to store never fails the build. */
async function compileAndStore(
  unit: Unit,
  settings: DispatchSettings,
  outcome: RustcOutcome,
): Promise<number> {
  const run = await runRustcRecorded(unit.rustc, unit.argv);
  outcome.exitCode = run.code;
  phaseDone("compiled");
  outcome.rustcMs = Math.round(run.elapsedMs);
  settings.count({ misses: 1 });
  if (run.code !== 0) return run.code;
  try {
    const bundle = await bundleOutputs(unit, run.stdout, run.stderr, run.elapsedMs, settings.memo);
    phaseDone("collected");
    const bytes = await packBundle(bundle, {
      compressionLevel: settings.compressionLevel,
      signingKey: settings.signingKey,
    });
    phaseDone("packed");
    await settings.put(unit.key, bytes, {
      key: unit.key,
      crate: unit.crate,
      version: unit.version,
      kind: bundle.meta.kind,
      crateTypes: unit.args.crateTypes.join(","),
      source: unit.source,
      features: featuresOf(unit.args),
      profile: profileOf(unit.args),
      target: unit.target,
      rustc: unit.rustcRelease,
      size: bytes.length,
      compileMs: Math.round(run.elapsedMs),
    });
    mirrorQuietly(settings, bundle, unit);
  } catch (error) {
    settings.warn(
      "store",
      `cannot store ${unit.crate} ${unit.version} in the cache: ${message(error)}`,
    );
    settings.count({ store_errors: 1 });
  }
  return 0;
}

async function bundleOutputs(
  unit: Unit,
  stdout: string,
  stderr: string,
  compileMs: number,
  memo: DigestMemo,
): Promise<Bundle> {
  const files = new Map<ExpectedOutput["role"], Uint8Array>();
  const outputs: BundleMeta["outputs"] = [];
  for (const output of unit.outputs) {
    const data = await Deno.readFile(output.path);
    const digest = sha256Hex(data);
    files.set(output.role, data);
    outputs.push({ role: output.role, digest });
    rememberWrittenFile(output.path, digest, memo);
  }

  const depInfoFile = depInfoPath(unit.args);
  const depInfoText = depInfoFile === undefined ? undefined : await Deno.readTextFile(depInfoFile);
  const depInfo = depInfoText === undefined
    ? { sources: [], envDeps: [] }
    : parseDepInfo(depInfoText);
  const sources = depInfo.sources.map((path) => ({
    path: toTemplate(path, unit.roots),
    digest: digestFile(path, memo),
  }));
  const envDeps = depInfo.envDeps.map((dep) =>
    dep.value === undefined
      ? { name: dep.name }
      : { name: dep.name, value: toTemplate(dep.value, unit.roots) }
  );

  const bundle: Bundle = {
    meta: {
      format: 1,
      key: unit.key,
      crate: unit.crate,
      version: unit.version,
      kind: unitKindOf(unit.args),
      outputs,
      sources,
      envDeps,
      compileMs: Math.round(compileMs),
      createdAt: new Date().toISOString(),
    },
    files,
    stdout: toTemplate(stdout, unit.roots),
    stderr: toTemplate(withoutBuildEnvironmentNoise(stderr), unit.roots),
  };
  if (depInfoText !== undefined) bundle.depInfo = toTemplate(depInfoText, unit.roots);
  return bundle;
}

/**
 * rustc's stderr without what described this build's environment rather than the crate (a
 * jobserver it could not reach): replaying that into every later build would mislead.
 */
function withoutBuildEnvironmentNoise(stderr: string): string {
  return stderr
    .split(/(?<=\n)/)
    .filter((line) => !line.includes("failed to connect to jobserver"))
    .join("");
}

/** The crate's enabled features, from its `--cfg feature="…"` flags. */
function featuresOf(args: RustcArgs): string {
  return args.keyedUnordered
    .map((arg) => /^--cfg feature="(.*)"$/.exec(arg)?.[1])
    .filter((feature): feature is string => feature !== undefined)
    .sort()
    .join(",");
}

/** A short profile summary for the index: optimisation and debug-info levels. */
function profileOf(args: RustcArgs): string {
  const opt = args.codegen.get("opt-level") ?? "0";
  const debug = args.codegen.get("debuginfo") ?? "0";
  return `opt-level=${opt},debuginfo=${debug}`;
}

/** Writes through a temporary file and a rename, so cargo never sees half an artefact. */
// Synchronous on purpose: one dispatcher does one thing at a time, and Deno's async file ops
// cost a thread-pool round trip each, which shows on a hit's large writes.
function writeAtomically(path: string, source: Uint8Array | string, mode: number): void {
  const temp = join(dirname(path), `.${crypto.randomUUID()}.warmup-tmp`);
  try {
    // A file source is copied in the kernel (copy_file_range), keeping its mode.
    if (typeof source === "string") Deno.copyFileSync(source, temp);
    else Deno.writeFileSync(temp, source, { mode });
    Deno.renameSync(temp, path);
  } catch (error) {
    try {
      Deno.removeSync(temp);
    } catch {
      // nothing was written
    }
    throw error;
  }
}

async function writeAll(
  sink: { write(p: Uint8Array): Promise<number> },
  text: string,
): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  let written = 0;
  while (written < bytes.length) written += await sink.write(bytes.subarray(written));
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
