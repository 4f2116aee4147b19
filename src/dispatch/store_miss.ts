/**
 * The miss path, after rustc ran: packs what it wrote into a bundle (and its unpacked mirror) and
 * stores it. In the daemon this runs after the client has exited, so cargo never waits on it.
 * @module
 */

import { resolve } from "node:path";
import {
  type Bundle,
  BundleError,
  type BundleMeta,
  openBundle,
  packBundle,
} from "../bundle/bundle.ts";
import { sha256Hex } from "../digest.ts";
import { digestFile, type DigestMemo, rememberWrittenFile } from "../index/file_digest.ts";
import { errorMessage } from "../error_message.ts";
import type { ArtefactRow } from "../index/index_db.ts";
import { parseDepInfo } from "./dep_info.ts";
import { depInfoPath, type ExpectedOutput, unitKindOf } from "./outputs.ts";
import { toTemplate } from "./path_roots.ts";
import type { DispatchRequest } from "./request.ts";
import type { RustcArgs } from "./rustc_args.ts";
import type { RustcRun } from "./run_rustc.ts";
import type { Cache } from "./session.ts";
import type { Unit } from "./unit.ts";
import { variantIdOf, variantKeyOf, variantsAfter } from "./variants.ts";
import { warnOncePerBuild } from "./warn_once.ts";
import { failureInputs } from "./failed_probe.ts";

/**
 * Stores what a successful compile of `unit` wrote (`run` is how rustc ran: its output, exit code
 * and time) in the key's slot; a failure to store is a warning, never a failed build. With
 * `replacesStale` (the lookup found an entry there with other inputs), that entry stays, as an
 * older variant.
 */
export async function storeCompiled(
  unit: Unit,
  run: RustcRun,
  cache: Cache,
  request: DispatchRequest,
  replacesStale = false,
): Promise<void> {
  try {
    const bundle = await bundleOutputs(unit, run.stdout, run.stderr, run.elapsedMs, cache.memo);
    request.phases.done("collected");
    const displaced = replacesStale
      ? await keepAsVariant(unit.key, (meta, size) => rowOf(unit, meta, size), cache, request)
      : undefined;
    const variants = variantsAfter(displaced, variantIdOf(bundle.meta));
    if (variants.length > 0) bundle.meta.variants = variants;
    const bytes = await packBundle(bundle, {
      compressionLevel: cache.compressionLevel,
      signingKey: cache.signingKey,
    });
    request.phases.done("packed");
    // The slot's mirror is of the entry this one replaces.
    if (displaced) cache.local.removeMirror(unit.key);
    await cache.put(unit.key, bytes, rowOf(unit, bundle.meta, bytes.length), request);
    cache.mirror(unit.key, bundle, unit.outputs);
  } catch (error) {
    warnOncePerBuild(
      request,
      "store",
      `cannot store ${unit.crate} ${unit.version} in the cache: ${errorMessage(error)}`,
    );
    cache.count({ store_errors: 1 });
  }
}

/**
 * Stores a compile that failed deterministically (see failed_probe.ts): no outputs, its
 * diagnostics and exit code, and the probe file among its recorded inputs.
 */
export async function storeFailure(
  unit: Unit,
  run: RustcRun,
  cache: Cache,
  request: DispatchRequest,
): Promise<void> {
  try {
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
      exitCode: run.code,
    };
    const bytes = await packBundle({
      meta,
      files: new Map(),
      stdout: toTemplate(run.stdout, unit.roots),
      stderr: toTemplate(withoutBuildEnvironmentNoise(run.stderr), unit.roots),
    }, { compressionLevel: cache.compressionLevel, signingKey: cache.signingKey });
    await cache.put(unit.key, bytes, rowOf(unit, meta, bytes.length), request);
  } catch (error) {
    warnOncePerBuild(
      request,
      "store",
      `cannot store ${unit.crate} ${unit.version}'s failed probe: ${errorMessage(error)}`,
    );
    cache.count({ store_errors: 1 });
  }
}

/**
 * Moves the entry now in `key`'s slot (made from other inputs) to its own variant slot, so that
 * builds with those inputs still hit; resolves to its meta, or undefined when the slot holds
 * nothing usable by now. `rowFor` gives its index row.
 */
export async function keepAsVariant(
  key: string,
  rowFor: (meta: BundleMeta, size: number) => ArtefactRow,
  cache: Cache,
  request: DispatchRequest,
): Promise<BundleMeta | undefined> {
  const bytes = await cache.get(key, request);
  if (bytes === undefined) return undefined;
  let current: Bundle;
  try {
    current = await openBundle(bytes, key, { signingKey: cache.signingKey });
  } catch (error) {
    if (error instanceof BundleError) return undefined;
    throw error;
  }
  const slot = variantKeyOf(key, variantIdOf(current.meta));
  await cache.put(slot, bytes, { ...rowFor(current.meta, bytes.length), key: slot }, request);
  return current.meta;
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
  };
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
  // A workspace crate's sources are named relative to where rustc ran; recorded absolute (then
  // templated), they are checked on a hit wherever the checking process runs.
  const sources = depInfo.sources.map((path) => resolve(unit.cwd, path)).map((path) => ({
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
