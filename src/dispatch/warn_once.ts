/**
 * Faults that should be met once per cargo build, not once per crate. A build's calls may be
 * served by several processes (in-process dispatchers, the daemon), so "once" is a marker file
 * named after the request's build (cargo's pid and when that process started, so that a reused
 * pid is another build); the same markers let later calls of the build skip a part already found
 * broken. Markers of builds long over are swept.
 * @module
 */

import { join } from "node:path";
import { tmpdir } from "node:os";
import { sha256Hex } from "../digest.ts";
import { type DispatchRequest, writeText } from "./request.ts";

/** Writes `warning: cargo-warmup: …` to the call's stderr unless its build already saw `topic`. */
export function warnOncePerBuild(request: DispatchRequest, topic: string, message: string): void {
  try {
    Deno.mkdirSync(markerDir(), { recursive: true, mode: 0o700 });
    sweepOldMarkers();
    Deno.writeFileSync(markerPath(request.buildId, topic), new Uint8Array(0), { createNew: true });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return;
    // No marker could be written: better to repeat than to stay silent.
  }
  void writeText(request.warnings ?? request.stderr, `warning: cargo-warmup: ${message}\n`)
    .catch(() => {});
}

/** Whether a call of this build already warned about `topic`. */
export function warnedThisBuild(request: DispatchRequest, topic: string): boolean {
  try {
    Deno.statSync(markerPath(request.buildId, topic));
    return true;
  } catch {
    return false;
  }
}

// Markers live in the system's temp dir: the cache dir may be the very thing that is broken.
function markerDir(): string {
  return join(tmpdir(), `cargo-warmup-${Deno.uid() ?? "user"}`);
}

function markerPath(buildId: string, topic: string): string {
  const build = `${buildId}\0${processStart(buildId)}`;
  return join(markerDir(), `warned-${sha256Hex(build + "\0" + topic).slice(0, 24)}`);
}

/** Builds' start times by build id: a build asks for its own many times. */
const starts = new Map<string, string>();

/**
 * When the process `buildId` names (cargo's pid) started, in clock ticks since boot, from
 * `/proc/<pid>/stat`; empty where that cannot be read (another OS, a build id that is no pid).
 */
function processStart(buildId: string): string {
  let start = starts.get(buildId);
  if (start !== undefined) return start;
  start = "";
  if (/^\d+$/.test(buildId)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${buildId}/stat`);
      // Fields after the command name (which may hold spaces), the 22nd of all is the start.
      start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
    } catch {
      // the process is gone or this is no Linux: the pid alone names the build
    }
  }
  if (starts.size >= 256) starts.clear();
  starts.set(buildId, start);
  return start;
}

/** Markers older than this belong to builds long over. */
const MARKER_MAX_AGE_MS = 24 * 60 * 60 * 1000;
let swept = false;

/** Removes old markers, once per process (the daemon: once per start). */
function sweepOldMarkers(): void {
  if (swept) return;
  swept = true;
  const now = Date.now();
  for (const entry of Deno.readDirSync(markerDir())) {
    if (!entry.name.startsWith("warned-")) continue;
    const path = join(markerDir(), entry.name);
    try {
      if (now - (Deno.statSync(path).mtime?.getTime() ?? now) > MARKER_MAX_AGE_MS) {
        Deno.removeSync(path);
      }
    } catch {
      // another process swept it first
    }
  }
}
