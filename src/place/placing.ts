/**
 * Placing in one dispatcher: the state it keeps (the builds noted for capture, the builds placed
 * for at their probe, cargo's versions) and the {@linkcode PlacingHooks} through which the
 * dispatcher reaches it. The daemon owns one for every build it serves, the in-process launcher
 * one for its call; nothing of it is module-level, so two in one process (a test) share nothing.
 * @module
 */

import type { Cache } from "../cache/cache.ts";
import type { CacheSession } from "../cache/session.ts";
import { cargoHomeOf } from "../config/cargo_home.ts";
import { depInfoPath, outputStem, unitKindOf } from "../dispatch/outputs.ts";
import type { PlacingHooks, RunOfBuild } from "../dispatch/placing_hooks.ts";
import type { DispatchRequest } from "../dispatch/request.ts";
import type { Unit } from "../dispatch/unit.ts";
import { Captures, type CompileToCapture } from "./capture.ts";
import { CargoVersions } from "./cargo_version.ts";
import { placeOnProbe } from "./on_probe.ts";

/** At most this many builds are remembered as placed for. */
const MAX_PLACED_FOR = 256;

/** Placing's state in one dispatcher, and the dispatcher's hooks into it. */
export class Placing implements PlacingHooks {
  readonly #cargoVersions = new CargoVersions();
  /** The builds noted for capture. */
  readonly captures: Captures = new Captures(this.#cargoVersions);
  /** Builds (cargo's pids) already placed for: cargo asks `-vV` once, but a pid is worth a guard. */
  readonly #placedFor = new Set<string>();

  compiled(unit: Unit, cache: Cache, request: DispatchRequest): void {
    // Only registry units are placed, and a build is captured once its cargo is gone, which
    // only the daemon outlives.
    if (request.via !== "daemon" || unit.fromWorkspace) return;
    this.captures.noteCompile(compileToCapture(unit), cache, request);
  }

  ran(run: RunOfBuild, cache: Cache, request: DispatchRequest): void {
    if (request.via !== "daemon") return;
    const cargoHome = cargoHomeOf(request.env);
    this.captures.noteRun({ ...run, cargoHome, scriptBinary: request.rustc }, cache, request);
  }

  async probed(session: CacheSession, request: DispatchRequest): Promise<void> {
    if (this.#placedFor.has(request.buildId)) return;
    if (this.#placedFor.size > MAX_PLACED_FOR) this.#placedFor.clear();
    this.#placedFor.add(request.buildId);
    await placeOnProbe(session, request, this.captures, this.#cargoVersions);
  }

  /** Stops watching for builds' ends (the daemon stopping). */
  close(): void {
    this.captures.close();
  }
}

/** What capture needs of a compile, from the dispatcher's unit. */
function compileToCapture(unit: Unit): CompileToCapture {
  const { args } = unit;
  const depInfo = depInfoPath(args);
  return {
    key: unit.key,
    crate: unit.crate,
    version: unit.version,
    kind: unitKindOf(args),
    outDir: args.outDir,
    crateName: args.crateName,
    extraFilename: args.extraFilename,
    ...(args.target !== undefined ? { target: args.target } : {}),
    stem: outputStem(args),
    ...(depInfo !== undefined ? { depInfo } : {}),
    externs: args.externs.flatMap((extern) => extern.path ? [extern.path] : []),
    outputs: unit.outputs,
    env: unit.env,
    cargoHome: cargoHomeOf(unit.env),
    rustcRelease: unit.rustcRelease,
  };
}
