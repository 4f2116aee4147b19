/**
 * Which build a call belongs to: cargo's pid and when that process started (a pid reused later is
 * another build), and, for the journal, the build's project and lockfile and whether it is a
 * warm-up's. Worked out once per build; a daemon outlives many builds, so briefly remembered.
 * @module
 */

import { join } from "node:path";
import { sha256Hex } from "../digest.ts";
import { WARMING_ENV } from "../config/config.ts";
import type { JournalCall } from "../index/journal_tables.ts";
import { workspaceRootFrom } from "../workspace_root.ts";
import type { CacheCall } from "./call.ts";
import { processStartOf } from "../processes.ts";

/**
 * Builds' start times by build id: a build asks for its own many times. Remembered only briefly:
 * a daemon outlives many builds, and a pid cargo had may be another cargo's by the next build.
 */
const starts = new Map<string, { start: string; at: number }>();
const START_MEMO_MS = 10_000;

/**
 * When the process `buildId` names (cargo's pid) started, in clock ticks since boot, from
 * `/proc/<pid>/stat`; empty where that cannot be read (another OS, a build id that is no pid).
 */
export function processStart(buildId: string): string {
  const now = Date.now();
  const known = starts.get(buildId);
  if (known !== undefined && now - known.at < START_MEMO_MS) return known.start;
  // The process gone, or no Linux: the pid alone names the build.
  const start = processStartOf(buildId);
  if (starts.size >= 256) starts.clear();
  starts.set(buildId, { start, at: now });
  return start;
}

/** Builds by build id: their journal name and project, worked out once per build. */
type BuildOf = Pick<JournalCall, "build" | "project" | "lockfile" | "warming">;
const builds = new Map<string, { of: BuildOf; at: number }>();
const BUILD_MEMO_MS = 10_000;

/** The build `request` belongs to as the journal names it, and its project. */
export function journalBuildOf(request: CacheCall): BuildOf {
  const now = Date.now();
  const known = builds.get(request.buildId);
  if (known !== undefined && now - known.at < BUILD_MEMO_MS) return known.of;
  const start = processStart(request.buildId);
  const root = workspaceRootFrom(request.cargoCwd);
  const of = {
    // The pid alone would name many builds over a daemon's life.
    build: start ? `${request.buildId}@${start}` : request.buildId,
    project: root ?? request.cargoCwd,
    lockfile: root === undefined ? "" : lockfileDigest(join(root, "Cargo.lock")),
    warming: request.env[WARMING_ENV] !== undefined,
  };
  if (builds.size >= 64) builds.clear();
  builds.set(request.buildId, { of, at: now });
  return of;
}

function lockfileDigest(path: string): string {
  try {
    return sha256Hex(Deno.readFileSync(path)).slice(0, 32);
  } catch {
    return "";
  }
}
