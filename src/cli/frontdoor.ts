/**
 * `cargo-warmup frontdoor`: builds the native front door cargo runs as RUSTC_WRAPPER (it talks
 * to the daemon) and prints its path, for scripts and installers that want it in place before
 * the first build.
 * @module
 */

import { loadConfig } from "../config/config.ts";
import { buildFrontDoor, defaultFrontDoorPath } from "../frontdoor/build.ts";
import { parseFlags } from "./parse_flags.ts";

export const FRONTDOOR_HELP =
  `Build the native front door (the RUSTC_WRAPPER that talks to the daemon).

Usage: cargo-warmup frontdoor [--out PATH] [--force]

Compiles src/frontdoor/cargo_warmup.rs with your rustc (standard library only) unless a binary of
this version is already there, and prints its path. Point RUSTC_WRAPPER at it.`;

/** Runs `frontdoor`; prints the path of the built front door. */
export async function runFrontDoorCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags("frontdoor", argv, {
    out: { type: "string" },
    force: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(FRONTDOOR_HELP);
    return 0;
  }
  const out = values.out ?? defaultFrontDoorPath((await loadConfig()).config.dir);
  console.log(await buildFrontDoor({ out, force: values.force ?? false }));
  return 0;
}
