/**
 * Puts the replayer in front of a registry crate's build script: once its binary is compiled or
 * served, the real binary moves aside (`warmup-real-build-script` in the same directory) and a
 * copy of the front door takes its name. When cargo runs the script, the front door sees it was
 * started as `build-script-*`, asks the daemon for the run (build_script_run.ts) and runs the
 * real binary on a miss, or whenever no daemon answers: cargo never sees the difference.
 * @module
 */

import { dirname, join } from "node:path";
import { defaultFrontDoorPath } from "../frontdoor/build.ts";
import { versionTag } from "../version.ts";
import type { Unit } from "./unit.ts";

/** The real build-script binary's name beside the replayer; the front door looks for it. */
export const REAL_BUILD_SCRIPT = "warmup-real-build-script";

/**
 * Installs the replayer for `unit` when it is a registry crate's build script and a front door
 * of this version is built; resolves to where the real binary now is (undefined: nothing was
 * changed). Never throws: a replayer that cannot be installed leaves the real binary in place.
 */
export function installReplayer(unit: Unit, cacheDir: string): string | undefined {
  const binary = unit.outputs.find((output) => output.role === "bin");
  const frontDoor = replayerFor(unit, cacheDir);
  if (binary === undefined || frontDoor === undefined) return undefined;
  const real = join(dirname(binary.path), REAL_BUILD_SCRIPT);
  const temp = join(dirname(binary.path), `.${crypto.randomUUID()}.warmup-tmp`);
  try {
    // A copy, not a link: a later rebuild of the script links over this file in place.
    Deno.copyFileSync(frontDoor, temp);
    Deno.chmodSync(temp, 0o755);
    Deno.renameSync(binary.path, real);
    Deno.renameSync(temp, binary.path);
    return real;
  } catch {
    try {
      Deno.removeSync(temp);
    } catch {
      // never written
    }
    try {
      // Moved aside but not replaced: the real binary goes back under its name.
      Deno.statSync(binary.path);
    } catch {
      try {
        Deno.renameSync(real, binary.path);
      } catch {
        // it never moved
      }
    }
    return undefined;
  }
}

/** Whether {@linkcode installReplayer} would put a replayer in front of `unit`. */
export function willReplay(unit: Unit, cacheDir: string): boolean {
  return replayerFor(unit, cacheDir) !== undefined;
}

/**
 * The front door to copy in front of `unit`: only for a registry crate's build script (checked
 * first, so that other units, every library hit, cost nothing here) and when a front door of
 * this version is built.
 */
function replayerFor(unit: Unit, cacheDir: string): string | undefined {
  const buildScript = !unit.fromWorkspace && unit.args.crateName.startsWith("build_script_") &&
    unit.outputs.some((output) => output.role === "bin");
  if (!buildScript) return undefined;
  const path = defaultFrontDoorPath(cacheDir);
  try {
    return Deno.readTextFileSync(`${path}.tag`) === versionTag() && Deno.statSync(path).isFile
      ? path
      : undefined;
  } catch {
    return undefined;
  }
}
