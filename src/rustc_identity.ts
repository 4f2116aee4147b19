/**
 * Who the compiler is: `rustc -vV` plus the names of the sysroot's target libraries (their
 * file names carry rustc's own hashes), remembered in the index per binary and stat so that a
 * hit does not pay for starting rustc.
 * @module
 */

import { dirname, join } from "node:path";
import { findProgram } from "./processes.ts";
import { sha256Hex, statSignature } from "./digest.ts";
import type { RustcIdentityMemo, RustcIdentityRow } from "./index/index_db.ts";
import { askRustc, parseRustcVersion } from "./rustc_version.ts";

/**
 * The identity of the rustc at `rustc`, from the index when the binary has not changed.
 *
 * @example
 * ```ts
 * import { rustcIdentity } from "./rustc_identity.ts";
 * const identity = await rustcIdentity("rustc", Deno.env.toObject(), undefined);
 * console.log(identity.host); // e.g. "x86_64-unknown-linux-gnu"
 * ```
 */
export async function rustcIdentity(
  rustc: string,
  env: Record<string, string>,
  memo?: RustcIdentityMemo,
): Promise<RustcIdentityRow> {
  // A path is taken as cargo gave it; a bare name is looked up as the compile will run it.
  const path = rustc.includes("/") ? rustc : findProgram(rustc, env) ?? rustc;
  const info = Deno.statSync(path);
  // A rustup proxy stays the same file while the toolchain behind it is updated, so its stat
  // says nothing: ask it every time. Cargo run through rustup passes the real toolchain rustc.
  const probe = isRustupProxy(path, info)
    ? undefined
    : JSON.stringify([path, statSignature(info), env.RUSTUP_TOOLCHAIN ?? ""]);
  const remembered = probe === undefined ? undefined : memo?.lookup(probe);
  if (remembered) return remembered;

  const versionText = await askRustc(rustc, ["-vV"], env);
  const { host, release } = parseRustcVersion(versionText);
  const sysroot = (await askRustc(rustc, ["--print", "sysroot"], env)).trim();
  const libraries: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(sysroot, "lib", "rustlib", host, "lib"))) {
      libraries.push(entry.name);
    }
  } catch {
    // A sysroot without target libraries still has a version; the -vV text identifies it.
  }
  const identity = sha256Hex(JSON.stringify([versionText, libraries.sort()]));
  const row = { identity, host, release };
  if (probe !== undefined) memo?.remember(probe, row);
  return row;
}

function isRustupProxy(path: string, info: Deno.FileInfo): boolean {
  try {
    const rustup = Deno.statSync(join(dirname(path), "rustup"));
    return rustup.size === info.size;
  } catch {
    return false;
  }
}
