/**
 * Placing for one build about to start: the capture predicted for it (the last build of the same
 * Cargo.lock, cargo, profile and target; the same flags first) placed into its build dir.
 * `cargo warmup prepare` runs this before a build; on a machine that has no such build (a CI job,
 * a container), it fetches the entries of the build's team manifest into the local level instead.
 * @module
 */

import { join } from "node:path";
import type { Cache } from "../cache/cache.ts";
import type { DispatchRequest } from "../dispatch/request.ts";
import { lockfileDigest } from "../cache/build_of.ts";
import { predictedBuild } from "./captured_build.ts";
import type { BuildDirs } from "./build_dirs.ts";
import { placeCapture, type Placed } from "./place.ts";
import { buildShapeOf } from "../cache/build_shape.ts";
import { type Prefetched, prefetchTeamManifest } from "../cache/manifest_prefetch.ts";

/**
 * Places what a build of `dirs` with `invocation` (cargo's command and flags), by these cargo and
 * rustc versions, will probably need; counts it in the cache.
 */
export async function placeForBuild(
  dirs: BuildDirs,
  invocation: { command: string; flags: string[] },
  versions: { cargo: string; rustc: string },
  cache: Cache,
  request: DispatchRequest,
): Promise<Placed & { predicted?: string }> {
  const lockfile = lockfileDigest(join(dirs.workspaceRoot, "Cargo.lock"));
  const capture = lockfile === ""
    ? undefined
    : predictedBuild(cache.dir, { lockfile, profiles: dirs.profiles, ...invocation, ...versions });
  if (capture === undefined) return { placed: 0, skipped: 0, bytes: 0, linkedBytes: 0, ms: 0 };
  const placed = await placeCapture(capture, dirs.buildDir, cache, request);
  if (placed.placed > 0) {
    cache.count({ placed_units: placed.placed, placed_bytes: placed.bytes, placings: 1 }, request);
    await cache.endRequest();
  }
  return { ...placed, predicted: capture.build };
}

/**
 * Fetches into the local level the entries of the team manifest of a build of `dirs` by cargo run
 * as `argv` (program first) with `rustc` (its identity) in `env`, the shape the build's first
 * call will work out; undefined without a Cargo.lock, a shared level or a manifest of that shape.
 */
export async function fetchForBuild(
  dirs: BuildDirs,
  argv: readonly string[],
  rustc: string,
  cache: Cache,
  request: DispatchRequest,
): Promise<Prefetched | undefined> {
  const lockfile = lockfileDigest(join(dirs.workspaceRoot, "Cargo.lock"));
  if (lockfile === "") return undefined;
  const shape = buildShapeOf(lockfile, rustc, argv, request.env);
  const fetched = await prefetchTeamManifest(cache, shape, request);
  if (fetched !== undefined) {
    cache.count({ prefetched_entries: fetched.fetched, prefetched_bytes: fetched.bytes }, request);
    await cache.endRequest();
  }
  return fetched;
}
