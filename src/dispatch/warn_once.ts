/**
 * Faults that should be met once per cargo build, not once per crate. A build's calls may be
 * served by several processes (in-process dispatchers, the daemon), so "once" is a marker file
 * named after the request's build id; the same markers let later calls of the build skip a part
 * already found broken.
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
  return join(markerDir(), `warned-${sha256Hex(buildId + "\0" + topic).slice(0, 24)}`);
}
