/**
 * Which build a call belongs to: cargo's pid and when that process started (a pid reused later is
 * another build), and, for the journal, the build's project and lockfile and whether it is a
 * warm-up's. A session's {@linkcode Builds} works each out once per build and remembers it only
 * briefly: a daemon outlives many builds, and a pid cargo had may be another cargo's by the next.
 * @module
 */

import { join } from "node:path";
import { sha256Hex } from "../digest.ts";
import { WARMING_ENV } from "../config/config.ts";
import type { JournalCall } from "../index/journal_tables.ts";
import { workspaceRootFrom } from "../workspace_root.ts";
import { processStartOf } from "../processes.ts";

/** A build as the journal names it, with its project. */
export type BuildOf = Pick<JournalCall, "build" | "project" | "lockfile" | "warming">;

/** How long what is known of a build is trusted. */
const MEMO_MS = 10_000;

/** What a session knows of the builds it serves (each call reaches it as `CacheCall.builds`). */
export class Builds {
  readonly #starts = new Map<string, { start: string; at: number }>();
  readonly #builds = new Map<string, { of: BuildOf; at: number }>();
  /** Whether this session swept old warn-once markers already (warn_once.ts). */
  markersSwept = false;

  /**
   * When the process `buildId` names (cargo's pid) started, in clock ticks since boot; empty
   * where that cannot be read (another OS, a build id that is no pid): the pid alone names it.
   */
  startOf(buildId: string): string {
    const now = Date.now();
    const known = this.#starts.get(buildId);
    if (known !== undefined && now - known.at < MEMO_MS) return known.start;
    const start = processStartOf(buildId);
    if (this.#starts.size >= 256) this.#starts.clear();
    this.#starts.set(buildId, { start, at: now });
    return start;
  }

  /** The build `call` belongs to as the journal names it, and its project. */
  journalBuildOf(
    call: { buildId: string; cargoCwd: string; env: Record<string, string> },
  ): BuildOf {
    const now = Date.now();
    const known = this.#builds.get(call.buildId);
    if (known !== undefined && now - known.at < MEMO_MS) return known.of;
    const start = this.startOf(call.buildId);
    const root = workspaceRootFrom(call.cargoCwd);
    const of = {
      // The pid alone would name many builds over a daemon's life.
      build: start ? `${call.buildId}@${start}` : call.buildId,
      project: root ?? call.cargoCwd,
      lockfile: root === undefined ? "" : lockfileDigest(join(root, "Cargo.lock")),
      warming: call.env[WARMING_ENV] !== undefined,
    };
    if (this.#builds.size >= 64) this.#builds.clear();
    this.#builds.set(call.buildId, { of, at: now });
    return of;
  }
}

/** How the journal names a Cargo.lock: a digest of its bytes ("" without one). */
export function lockfileDigest(path: string): string {
  try {
    return sha256Hex(Deno.readFileSync(path)).slice(0, 32);
  } catch {
    return "";
  }
}
