/**
 * The miss path: runs rustc, forwarding its output as it comes, and stores what it wrote as a
 * bundle (and its unpacked mirror). A failure to store is a warning, never a failed build.
 * @module
 */

import { type Bundle, type BundleMeta, packBundle } from "../bundle/bundle.ts";
import {
  digestFile,
  type DigestMemo,
  rememberWrittenFile,
  sha256Hex,
} from "../index/file_digest.ts";
import { errorMessage } from "../error_message.ts";
import { parseDepInfo } from "./dep_info.ts";
import { depInfoPath, type ExpectedOutput, unitKindOf } from "./outputs.ts";
import { toTemplate } from "./path_roots.ts";
import { phaseDone } from "./phases.ts";
import type { RustcArgs } from "./rustc_args.ts";
import { runRustcRecorded } from "./run_rustc.ts";
import { mirrorQuietly } from "./serve_hit.ts";
import type { DispatchSettings } from "./settings.ts";
import type { RustcOutcome, Unit } from "./unit.ts";

/** Runs rustc and, when it succeeds, stores its outputs; a failure to store never fails the build. */
export async function compileAndStore(
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
      `cannot store ${unit.crate} ${unit.version} in the cache: ${errorMessage(error)}`,
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
