/**
 * The program's version, printed by `--version`, and its version tag: the version and a digest of
 * the front door's source and the program's path, which names a daemon (two checkouts never share
 * one) and the front door binary built for it.
 * @module
 */

import { sha256Hex } from "./digest.ts";

/** cargo-warmup's version. */
export const VERSION = "0.1.0";

const FRONT_DOOR_SOURCE = new URL("./frontdoor/cargo_warmup.rs", import.meta.url);

/** The program manager calls and in-process fallbacks run: the launcher or the compiled binary. */
export function programPath(): string {
  return Deno.env.get("CARGO_WARMUP_EXE") ?? Deno.execPath();
}

/**
 * The version tag of this program with `program` as its entry: the release, and a digest of the
 * front door's source and the program's path (two checkouts never share a daemon).
 */
export function versionTag(program: string = programPath()): string {
  const source = Deno.readTextFileSync(FRONT_DOOR_SOURCE);
  return `${VERSION}-${sha256Hex(JSON.stringify([source, program])).slice(0, 12)}`;
}
