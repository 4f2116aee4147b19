/**
 * Notices a toolchain change without being asked: the first build that brings a rustc release
 * this cache has not seen, to a cache filled by another one, is told once how to re-warm, or,
 * with `[warmup] auto-rewarm = true`, the re-warm starts in the background by itself. A marker
 * file per release (under `warm/toolchains/`) is the cache's memory of the releases it has seen:
 * one failed stat on a miss, nothing on a hit.
 * @module
 */

import { join } from "node:path";
import { warmDir } from "./warm_dir.ts";
import { cargoEnv } from "./_cargo.ts";
import { WARMING_ENV } from "../config/config.ts";

/** What to tell the user about `release`, if it is new to this cache. */
export type ToolchainNotice = { message: string } | undefined;

/**
 * Marks `release` as seen by the cache in `cacheDir`; when it was new and another release was
 * seen before, returns the one line to say (and starts the re-warm when `autoRewarm`). Only one
 * caller ever gets the notice for a release, however many compile at once.
 */
export async function noticeNewToolchain(
  cacheDir: string,
  release: string,
  call: { rustc: string; env: Record<string, string> },
  autoRewarm: boolean,
): Promise<ToolchainNotice> {
  if (call.env[WARMING_ENV]) return undefined;
  const dir = join(warmDir(cacheDir), "toolchains");
  const marker = join(dir, release.replace(/[^\w.+-]/g, "_"));
  try {
    Deno.statSync(marker);
    return undefined;
  } catch {
    // not seen yet
  }
  let seen: string[];
  try {
    Deno.mkdirSync(dir, { recursive: true });
    seen = [...Deno.readDirSync(dir)].map((entry) => entry.name);
    Deno.openSync(marker, { createNew: true, write: true }).close();
  } catch {
    return undefined; // another call marked it first, or the cache dir is read-only
  }
  if (seen.length === 0) return undefined; // a new cache: nothing to re-warm from
  const before = seen.join(", ");
  if (!autoRewarm) {
    return {
      message: `rustc ${release} is new to this cache (filled with ${before}): run ` +
        `'cargo-warmup init --rewarm --background' to rebuild your recent projects' ` +
        `dependencies for it, or set [warmup] auto-rewarm = true`,
    };
  }
  const { spawnBackground } = await import("./background.ts");
  const exe = Deno.env.get("CARGO_WARMUP_EXE") || Deno.execPath();
  const env: Record<string, string> = { ...cargoEnv(call.env), RUSTC: call.rustc };
  // The build's jobserver and log are its own, not the re-warm's.
  for (const name of ["CARGO_MAKEFLAGS", "MAKEFLAGS", "MFLAGS", "CARGO_WARMUP_LOG"]) {
    delete env[name];
  }
  const child = await spawnBackground(exe, ["--rewarm"], cacheDir, env);
  return {
    message: `rustc ${release} is new to this cache (filled with ${before}): re-warming your ` +
      `recent projects for it in the background (pid ${child.pid}; 'cargo-warmup status')`,
  };
}
