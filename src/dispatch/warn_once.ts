/**
 * Warnings that should reach the user once per cargo build, not once per crate: every rustc call
 * is its own dispatcher process, so "once" is remembered in a marker file named after cargo's pid.
 * @module
 */

import { join } from "node:path";
import { tmpdir } from "node:os";
import { sha256Hex } from "../index/file_digest.ts";

/** Prints `warning: cargo-warmup: …` unless this build (cargo process) already saw `topic`. */
export function warnOncePerBuild(cacheDir: string, topic: string, message: string): void {
  try {
    // Markers live in the system's temp dir: the cache dir may be the very thing that is broken.
    const dir = join(tmpdir(), `cargo-warmup-${Deno.uid() ?? "user"}`);
    Deno.mkdirSync(dir, { recursive: true });
    const marker = join(dir, `warned-${Deno.ppid}-${sha256Hex(cacheDir + topic).slice(0, 16)}`);
    Deno.writeFileSync(marker, new Uint8Array(0), { createNew: true });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return;
    // No marker could be written (an unwritable cache dir): better to repeat than to stay silent.
  }
  console.error(`warning: cargo-warmup: ${message}`);
}
