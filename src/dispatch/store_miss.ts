/**
 * The miss path of a crate compile, after rustc ran: collects what it wrote (outputs, dep-info,
 * the sources it read, its replayable output) into a bundle, stored through cache/store_entry.ts.
 * In the daemon this runs after the client has exited, so cargo never waits on it.
 * @module
 */

import { resolve } from "node:path";
import type { Bundle, BundleMeta } from "../bundle/bundle.ts";
import { sha256Hex } from "../digest.ts";
import { digestFile, type DigestMemo, rememberWrittenFile } from "../index/file_digest.ts";
import type { ArtefactRow } from "../index/index_db.ts";
import type { Cache } from "../cache/cache.ts";
import { storeEntry } from "../cache/store_entry.ts";
import { parseDepInfo } from "./dep_info.ts";
import { depInfoPath, type ExpectedOutput, unitKindOf } from "./outputs.ts";
import { toTemplate } from "../cache/path_roots.ts";
import { recordedEnvDep } from "../cache/variants.ts";
import type { DispatchRequest } from "./request.ts";
import type { RustcArgs } from "./rustc_args.ts";
import type { RustcRun } from "./run_rustc.ts";
import type { Unit } from "./unit.ts";
import { failureInputs } from "./failed_probe.ts";
import { renderingOf } from "./diagnostic_rendering.ts";

/**
 * Stores what a successful compile of `unit` wrote (`run` is how rustc ran: its output, exit code
 * and time) in the key's slot, with its hot copy; a failure to store is a warning, never a failed
 * build. With `replacesStale` (the lookup found an entry there with other inputs), that entry
 * stays, as an older variant.
 */
export function storeCompiled(
  unit: Unit,
  run: RustcRun,
  cache: Cache,
  request: DispatchRequest,
  replacesStale = false,
): Promise<void> {
  return storeEntry(
    {
      key: unit.key,
      label: `${unit.crate} ${unit.version}`,
      collect: () =>
        bundleOutputs(unit, run.stdout, run.stderr, run.elapsedMs, cache.memo, startOf(request)),
      rowOf: (meta, size) => rowOf(unit, meta, size),
      replacesStale,
      hotCopyFrom: unit.outputs,
    },
    cache,
    request,
  );
}

/**
 * Stores a compile that failed deterministically (see failed_probe.ts): no outputs, its
 * diagnostics and exit code, and the probe file among its recorded inputs.
 */
export function storeFailure(
  unit: Unit,
  run: RustcRun,
  cache: Cache,
  request: DispatchRequest,
): Promise<void> {
  const collect = () => {
    const meta: BundleMeta = {
      format: 1,
      key: unit.key,
      crate: unit.crate,
      version: unit.version,
      kind: unitKindOf(unit.args),
      outputs: [],
      ...failureInputs(unit, cache.memo),
      compileMs: Math.round(run.elapsedMs),
      createdAt: new Date().toISOString(),
      rendering: renderingOf(unit.args),
      exitCode: run.code,
    };
    return Promise.resolve({
      meta,
      files: new Map(),
      stdout: toTemplate(run.stdout, unit.roots),
      stderr: toTemplate(withoutBuildEnvironmentNoise(run.stderr), unit.roots),
    });
  };
  return storeEntry(
    {
      key: unit.key,
      label: `${unit.crate} ${unit.version}'s failed probe`,
      collect,
      rowOf: (meta, size) => rowOf(unit, meta, size),
      replacesStale: false,
    },
    cache,
    request,
  );
}

/** The index row of an entry of `unit`. */
function rowOf(unit: Unit, meta: BundleMeta, size: number): ArtefactRow {
  return {
    key: unit.key,
    crate: unit.crate,
    version: unit.version,
    kind: meta.kind,
    crateTypes: unit.args.crateTypes.join(","),
    source: unit.source,
    features: featuresOf(unit.args),
    profile: profileOf(unit.args),
    target: unit.target,
    rustc: unit.rustcRelease,
    size,
    compileMs: meta.compileMs,
    recipe: unit.recipe(),
  };
}

/** When `request` started, in ms since the epoch: before rustc read anything. */
function startOf(request: DispatchRequest): number {
  return Date.now() - (performance.now() - request.phases.started);
}

/** The entry of a compile; undefined when a source of it was saved since `compileStart`. */
async function bundleOutputs(
  unit: Unit,
  stdout: string,
  stderr: string,
  compileMs: number,
  memo: DigestMemo,
  compileStart: number,
): Promise<Bundle | undefined> {
  const depInfoFile = depInfoPath(unit.args);
  const depInfoText = depInfoFile === undefined ? undefined : await Deno.readTextFile(depInfoFile);
  const depInfo = depInfoText === undefined
    ? { sources: [], envDeps: [] }
    : parseDepInfo(depInfoText);
  // A workspace crate's sources are named relative to where rustc ran; recorded absolute (then
  // templated), they are checked on a hit wherever the checking process runs.
  const sourcePaths = depInfo.sources.map((path) => resolve(unit.cwd, path));
  // A workspace source saved since the call began (by an editor, during the build or before a
  // store held back until the builds are over: settled_store.ts) may not be what rustc read: its
  // digest now would vouch for an artefact of other sources. The next build compiles it anyway.
  if (unit.fromWorkspace && sourcePaths.some((path) => savedSince(path, compileStart))) {
    return undefined;
  }

  const files = new Map<ExpectedOutput["role"], Uint8Array>();
  const outputs: BundleMeta["outputs"] = [];
  for (const output of unit.outputs) {
    const data = await Deno.readFile(output.path);
    const digest = sha256Hex(data);
    files.set(output.role, data);
    outputs.push({ role: output.role, digest });
    rememberWrittenFile(output.path, digest, memo);
  }
  const sources = sourcePaths.map((path) => ({
    path: toTemplate(path, unit.roots),
    digest: digestFile(path, memo),
  }));
  const envDeps = depInfo.envDeps.map((dep) => recordedEnvDep(dep.name, dep.value, unit.roots));

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
      rendering: renderingOf(unit.args),
    },
    files,
    stdout: toTemplate(stdout, unit.roots),
    stderr: toTemplate(withoutBuildEnvironmentNoise(stderr), unit.roots),
  };
  if (depInfoText !== undefined) bundle.depInfo = toTemplate(depInfoText, unit.roots);
  return bundle;
}

/**
 * Whether the file was saved after `time`. The kernel stamps files from a clock a tick behind,
 * never ahead: a file written before the call began (a build script's generated source, just
 * before) passes, and a write rustc missed comes after rustc started, many ticks later.
 */
function savedSince(path: string, time: number): boolean {
  const modified = Deno.statSync(path).mtime?.getTime();
  return modified === undefined || modified > time;
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
