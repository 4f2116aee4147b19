/**
 * The automatic trigger: cargo asks `rustc -vV` through the wrapper before it checks any
 * fingerprint whenever the target dir is new (an existing one keeps the answer in
 * `.rustc_info.json` and is not asked again). That call is held while the build's predicted
 * units are placed (prepare.ts), so cargo, which waits for the answer, finds them fresh. What
 * the call knows: cargo's pid (its command line in /proc), its working directory and env.
 * @module
 */

import { join } from "node:path";
import type { CacheSession } from "../cache/session.ts";
import type { DispatchRequest } from "../dispatch/request.ts";
import { lockfileDigest } from "../cache/build_of.ts";
import { workspaceRootFrom } from "../workspace_root.ts";
import { errorMessage } from "../error_message.ts";
import { warnOncePerBuild } from "../cache/warn_once.ts";
import { capturesDir } from "./captured_build.ts";
import { type Captures, cargoInvocationOf } from "./capture.ts";
import { buildDirsOf } from "./build_dirs.ts";
import type { CargoVersions } from "./cargo_version.ts";
import { placeForBuild } from "./prepare.ts";
import { rustcIdentity } from "../rustc_identity.ts";

/**
 * Places the build's predicted units before its probe is answered, capturing first what
 * `captures` holds of builds that are over. Never throws, and costs a build with nothing
 * captured for its Cargo.lock two stats and a read.
 */
export async function placeOnProbe(
  session: CacheSession,
  request: DispatchRequest,
  captures: Captures,
  cargoVersions: CargoVersions,
): Promise<void> {
  try {
    const root = workspaceRootFrom(request.cargoCwd);
    if (root === undefined) return;
    const invocation = cargoInvocationOf(request.buildId);
    if (invocation === undefined) return;
    const configured = await session.cacheFor(request);
    if ("reason" in configured || !configured.config.place) return;
    const { cache } = configured;
    // A build that ended a moment ago (a script's next cargo, a worktree hook) may not have been
    // captured by the ticker yet: capture it first, or its sibling would find nothing to place.
    await captures.captureFinished();
    const lockfile = lockfileDigest(join(root, "Cargo.lock"));
    if (lockfile === "" || !hasEntries(capturesDir(cache.dir, lockfile))) return;
    const cargo = cargoOf(request);
    const version = await cargoVersions.of(cargo);
    if (version === undefined) return;
    const rustc = await rustcIdentity(request.rustc, request.env, cache.rustcMemo);
    // Its own probe, if it makes one, must not place again.
    const env: Record<string, string> = { ...request.env, CARGO_WARMUP_PLACE: "0" };
    delete env.RUSTC_WRAPPER;
    const dirs = await buildDirsOf(cargo, invocation.flags, request.cargoCwd, env);
    await placeForBuild(dirs, invocation, { cargo: version, rustc: rustc.release }, cache, request);
  } catch (error) {
    warnOncePerBuild(request, "place", `cannot place units: ${errorMessage(error)}`);
  }
}

/** The cargo binary that asked: the one running as the build's process. */
function cargoOf(request: DispatchRequest): string {
  try {
    return Deno.realPathSync(`/proc/${request.buildId}/exe`);
  } catch {
    return request.env.CARGO ?? "cargo";
  }
}

function hasEntries(dir: string): boolean {
  try {
    for (const _ of Deno.readDirSync(dir)) return true;
  } catch {
    // none
  }
  return false;
}
