/**
 * Faults that should be met once per cargo build, not once per crate. A build's calls may be
 * served by several processes (in-process dispatchers, the daemon), so "once" is a marker file
 * named after the request's build (cargo's pid and when that process started, so that a reused
 * pid is another build); the same markers let later calls of the build skip a part already found
 * broken. Markers of builds long over are swept. They live in the runtime directory, where the
 * daemon's own checks apply (see `markerDir`).
 * @module
 */

import { join } from "node:path";
import { tmpdir } from "node:os";
import { sha256Hex } from "../digest.ts";
import { ensurePrivateDir, runtimeDirOf, whyRuntimeDirRefused } from "../runtime_dir.ts";
import { type CacheCall, writeText } from "./call.ts";

/** Writes `warning: cargo-warmup: …` to the call's stderr unless its build already saw `topic`. */
export function warnOncePerBuild(request: CacheCall, topic: string, message: string): void {
  const dir = markerDir(request.env);
  try {
    if (dir !== undefined) {
      if (!request.builds.markersSwept) sweepOldMarkers(dir);
      request.builds.markersSwept = true;
      Deno.writeFileSync(markerPath(dir, request, topic), new Uint8Array(0), {
        createNew: true,
      });
    }
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return;
    // No marker could be written: better to repeat than to stay silent.
  }
  void writeText(request.warnings ?? request.stderr, `warning: cargo-warmup: ${message}\n`)
    .catch(() => {});
}

/** Whether a call of this build already warned about `topic`. */
export function warnedThisBuild(request: CacheCall, topic: string): boolean {
  const dir = markerDir(request.env);
  try {
    if (dir === undefined) return false;
    Deno.statSync(markerPath(dir, request, topic));
    return true;
  } catch {
    return false;
  }
}

/**
 * Markers live where the daemon's socket does, in the runtime directory only this user can enter
 * (not in the cache dir: that may be the very thing that is broken). When that directory is
 * refused, in a private directory of the system's temp dir instead; when that is not private
 * either, nowhere: better to repeat a warning than to let another user silence it.
 */
function markerDir(env: Record<string, string>): string | undefined {
  const runtime = runtimeDirOf(env);
  const candidates = [join(tmpdir(), `cargo-warmup-${Deno.uid()}-warned`)];
  if (whyRuntimeDirRefused(runtime) === undefined) candidates.unshift(join(runtime, "warned"));
  for (const dir of candidates) {
    try {
      ensurePrivateDir(dir);
      return dir;
    } catch {
      // taken by someone else: the next place, or none
    }
  }
  return undefined;
}

function markerPath(dir: string, request: CacheCall, topic: string): string {
  const build = `${request.buildId}\0${request.builds.startOf(request.buildId)}`;
  return join(dir, `warned-${sha256Hex(build + "\0" + topic).slice(0, 24)}`);
}

/** Markers older than this belong to builds long over. */
const MARKER_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** Removes old markers (once per session: the daemon's, once per start). */
function sweepOldMarkers(dir: string): void {
  const now = Date.now();
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.startsWith("warned-")) continue;
    const path = join(dir, entry.name);
    try {
      if (now - (Deno.statSync(path).mtime?.getTime() ?? now) > MARKER_MAX_AGE_MS) {
        Deno.removeSync(path);
      }
    } catch {
      // another process swept it first
    }
  }
}
