/**
 * Faults that should be met once per cargo build, not once per crate: every rustc call is its
 * own dispatcher process, so "once" is remembered in a marker file named after cargo's pid. The
 * same markers let later dispatchers of the build skip a part already found broken.
 * @module
 */

import { join } from "node:path";
import { tmpdir } from "node:os";
import { sha256Hex } from "../index/file_digest.ts";

/** Prints `warning: cargo-warmup: …` unless this build (cargo process) already saw `topic`. */
export function warnOncePerBuild(cacheDir: string, topic: string, message: string): void {
  try {
    Deno.mkdirSync(markerDir(), { recursive: true });
    Deno.writeFileSync(markerPath(cacheDir, topic), new Uint8Array(0), { createNew: true });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return;
    // No marker could be written: better to repeat than to stay silent.
  }
  console.error(`warning: cargo-warmup: ${message}`);
}

/** Whether a dispatcher of this build already warned about `topic`. */
export function warnedThisBuild(cacheDir: string, topic: string): boolean {
  try {
    Deno.statSync(markerPath(cacheDir, topic));
    return true;
  } catch {
    return false;
  }
}

// Markers live in the system's temp dir: the cache dir may be the very thing that is broken.
function markerDir(): string {
  return join(tmpdir(), `cargo-warmup-${Deno.uid() ?? "user"}`);
}

function markerPath(cacheDir: string, topic: string): string {
  return join(
    markerDir(),
    `warned-${Deno.ppid}-${sha256Hex(cacheDir + "\0" + topic).slice(0, 16)}`,
  );
}
