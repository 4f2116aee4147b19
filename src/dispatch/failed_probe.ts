/**
 * Failed compiler probes served from the cache. Build scripts (anyhow's, thiserror's) compile a
 * test file into OUT_DIR to learn what the compiler supports; on a stable compiler the probe
 * fails, every build, serially, before the crate can compile. Such a failure is as deterministic
 * as a success when nothing about the machine caused it: it is stored with its diagnostics and
 * exit code, keyed like any unit, and a hit replays them.
 *
 * Never a transient failure: only a metadata-only compile (`--emit` without `link`) of a file in
 * the registry crate's OUT_DIR, that exited 1 with an error diagnostic from the compiler and
 * nothing that names the machine (a full disk, a missing file, a signal, an ICE). The probe
 * file's digest is one of the recorded inputs, checked on every hit.
 * @module
 */

import { relative, resolve } from "node:path";
import type { BundleMeta } from "../bundle/bundle.ts";
import { digestFile, type DigestMemo } from "../index/file_digest.ts";
import { parseDepInfo } from "./dep_info.ts";
import { depInfoPath } from "./outputs.ts";
import { toTemplate } from "../cache/path_roots.ts";
import type { RustcRun } from "./run_rustc.ts";
import type { Unit } from "./unit.ts";

/** What a failure caused by the machine, not by the code, says somewhere in rustc's output. */
const TRANSIENT =
  /No space left|Too many open files|Cannot allocate memory|out of memory|Resource temporarily unavailable|Permission denied|Input\/output error|Read-only file system|No such file or directory|couldn't read|failed to write|could not write|error writing|internal compiler error|signal|linking with|could not exec|failed to run/i;

/** Whether a failed compile of `unit` may be stored and replayed. */
export function isDeterministicProbeFailure(unit: Unit, run: RustcRun): boolean {
  const outDir = unit.env.OUT_DIR;
  if (run.code !== 1 || unit.fromWorkspace || !outDir) return false;
  if (unit.args.emit.includes("link")) return false;
  const input = relative(outDir, resolve(unit.cwd, unit.args.input));
  if (input.startsWith("..") || input.startsWith("/")) return false;
  const output = run.stderr + run.stdout;
  const compilerError = /"\$message_type":"diagnostic".*"level":"error"|^error(\[E\d+\])?:/m;
  return compilerError.test(output) && !TRANSIENT.test(output);
}

/**
 * The inputs of a failed compile: its input file (the probe) with its digest, plus what its
 * dep-info lists when the compiler got that far.
 */
export function failureInputs(
  unit: Unit,
  memo: DigestMemo,
): Pick<BundleMeta, "sources" | "envDeps"> {
  const input = resolve(unit.cwd, unit.args.input);
  const sources = [{ path: toTemplate(input, unit.roots), digest: digestFile(input, memo) }];
  let envDeps: BundleMeta["envDeps"] = [];
  const depInfo = depInfoPath(unit.args);
  try {
    if (depInfo !== undefined) {
      const parsed = parseDepInfo(Deno.readTextFileSync(depInfo));
      for (const path of parsed.sources.map((source) => resolve(unit.cwd, source))) {
        if (path !== input) {
          sources.push({ path: toTemplate(path, unit.roots), digest: digestFile(path, memo) });
        }
      }
      envDeps = parsed.envDeps.map((dep) =>
        dep.value === undefined
          ? { name: dep.name }
          : { name: dep.name, value: toTemplate(dep.value, unit.roots) }
      );
    }
  } catch {
    // no dep-info: the compiler stopped before writing it
  }
  return { sources, envDeps };
}
