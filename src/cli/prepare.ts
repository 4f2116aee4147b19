/**
 * `cargo warmup prepare [cargo build flags]`: before a build in a new target dir (a CI step, a
 * Dockerfile, a new worktree), places the registry units the last build of the same Cargo.lock
 * left, so that cargo finds them fresh (src/place/); on a machine with no such build, fetches the
 * entries of the build's team manifest into the local level (manifest_prefetch.ts).
 * @module
 */

import { errorMessage } from "../error_message.ts";
import { formatBytes } from "../units.ts";
import { CacheSession } from "../cache/session.ts";
import { type BuildDirs, buildDirsOf } from "../place/build_dirs.ts";
import type { Cache } from "../cache/cache.ts";
import type { DispatchRequest } from "../dispatch/request.ts";
import { cargoVersionOf } from "../place/cargo_version.ts";
import { fetchForBuild, placeForBuild } from "../place/prepare.ts";
import { placingRequest } from "../place/place.ts";
import { settleDaemons } from "../daemon/settle.ts";
import { cargoCommandOf } from "../place/captured_build.ts";
import { UsageError } from "./usage_error.ts";
import { rustcIdentity } from "../rustc_identity.ts";
import { runtimeDirOf } from "../runtime_dir.ts";

export const PREPARE_HELP =
  `Place the dependencies an earlier build of this Cargo.lock used in this build's target dir.

Usage: cargo-warmup prepare [COMMAND] [cargo flags]

COMMAND is the cargo command to come (build, the default; check, test, run, bench, clippy).
Takes the flags the build will get (--release, --profile, --target, --target-dir,
--manifest-path, --features ...): cargo then finds those units fresh and compiles only the rest.
Nothing already in the target dir is replaced. Off with [warmup] place = false
(CARGO_WARMUP_PLACE=0).

On a machine with no earlier build of this Cargo.lock (a CI job, a container), it fetches the
entries of the build's team manifest from the shared level into local disk instead, many at a
time, so that the build reads them there.`;

/** Runs `prepare`; resolves to the exit code. */
export async function runPrepare(argv: string[]): Promise<number> {
  if (argv.includes("-h") || argv.includes("--help")) {
    console.log(PREPARE_HELP);
    return 0;
  }
  const env = Deno.env.toObject();
  const cwd = Deno.cwd();
  const cargo = env.CARGO ?? "cargo";
  // A build that just ended is captured by the daemon when asked to settle.
  await settleDaemons(runtimeDirOf(env));
  const args = argv[0]?.startsWith("-") === false ? argv : ["build", ...argv];
  const invocation = cargoCommandOf(args);
  if (invocation === undefined) {
    throw new UsageError(`prepare: not a cargo build command: ${argv[0]}`);
  }
  const dirs = await buildDirsOf(cargo, invocation.flags, cwd, env);
  const session = new CacheSession();
  const request = placingRequest(env, dirs.workspaceRoot, `prepare-${Deno.pid}`, session.builds);
  try {
    const configured = await session.cacheFor(request);
    if ("reason" in configured) {
      console.error(`cargo-warmup prepare: nothing placed: ${configured.reason}`);
      return 0;
    }
    const { cache } = configured;
    const rustc = await rustcIdentity(env.RUSTC ?? "rustc", env, cache.rustcMemo);
    const placed = configured.config.place
      ? await place(cargo, dirs, invocation, rustc.release, cache, request)
      : undefined;
    if (placed === undefined) {
      console.error("cargo-warmup prepare: placing is off ([warmup] place = false)");
    }
    // A machine with no earlier build of this Cargo.lock (a CI job, a container) fetches what
    // the team's manifest of the build names into the local level, for the build to read there.
    if (placed?.predicted === undefined) {
      const fetched = await fetchForBuild(dirs, ["cargo", ...args], rustc.identity, cache, request);
      if (fetched?.refused) {
        console.error(`cargo-warmup prepare: ignoring the team manifest: ${fetched.refused}`);
      } else if (fetched !== undefined) {
        console.error(
          `cargo-warmup prepare: fetched ${fetched.fetched} of the ${fetched.entries} entries ` +
            `of the team manifest (${formatBytes(fetched.bytes)}) in ${fetched.ms} ms`,
        );
      }
    }
    return 0;
  } catch (error) {
    console.error(`cargo-warmup prepare: nothing placed: ${errorMessage(error)}`);
    return 0;
  } finally {
    session.release(request);
    await session.close();
  }
}

/** Places what the last build of this Cargo.lock left, saying how it went. */
async function place(
  cargo: string,
  dirs: BuildDirs,
  invocation: { command: string; flags: string[] },
  rustc: string,
  cache: Cache,
  request: DispatchRequest,
): Promise<{ predicted?: string }> {
  const version = await cargoVersionOf(cargo);
  if (version === undefined) throw new Error(`cannot run "${cargo} -V"`);
  const versions = { cargo: version, rustc };
  const placed = await placeForBuild(dirs, invocation, versions, cache, request);
  if (placed.refused) console.error(`cargo-warmup prepare: nothing placed: ${placed.refused}`);
  else if (placed.predicted === undefined) {
    console.error("cargo-warmup prepare: no earlier build of this Cargo.lock to place from");
  } else {
    console.error(
      `cargo-warmup prepare: placed ${placed.placed} units (${formatBytes(placed.bytes)}) in ` +
        `${placed.ms} ms into ${dirs.buildDir}; ${placed.skipped} left to the build`,
    );
  }
  return placed;
}
