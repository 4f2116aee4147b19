/**
 * Asking rustc about itself (`-vV`, `--print`): the release and host triple every part of the
 * program asks for, and the one way they all run such a query.
 * @module
 */

import { runTool } from "./processes.ts";

/** What `rustc -vV` says about the compiler. */
export interface RustcVersion {
  /** `release:`, e.g. "1.95.0"; "unknown" when absent. */
  release: string;
  /** `host:`, e.g. "x86_64-unknown-linux-gnu"; "unknown" when absent. */
  host: string;
}

/**
 * Parses the output of `rustc -vV`.
 *
 * @example
 * ```ts
 * import { parseRustcVersion } from "./rustc_version.ts";
 * const text = "rustc 1.95.0\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\n";
 * console.log(parseRustcVersion(text)); // { release: "1.95.0", host: "x86_64-unknown-linux-gnu" }
 * ```
 */
export function parseRustcVersion(text: string): RustcVersion {
  const field = (name: string) =>
    new RegExp(`^${name}: (.+)$`, "m").exec(text)?.[1]?.trim() ?? "unknown";
  return { release: field("release"), host: field("host") };
}

/**
 * Runs `rustc -vV` for the compiler `env` names (`RUSTC`, else `rustc` on its PATH) and parses it;
 * both fields are "unknown" when that compiler cannot be run.
 *
 * @example
 * ```ts
 * import { queryRustcVersion } from "./rustc_version.ts";
 * const { release } = await queryRustcVersion({ RUSTC: "/nonexistent/rustc" });
 * console.log(release); // "unknown"
 * ```
 */
export async function queryRustcVersion(env: Record<string, string>): Promise<RustcVersion> {
  try {
    return parseRustcVersion(await askRustc(env.RUSTC || "rustc", ["-vV"], env));
  } catch {
    return parseRustcVersion("");
  }
}

/**
 * What `rustc` prints to stdout for a query (`-vV`, `--print sysroot`), run with exactly `env`
 * (from `cwd`, where a rust-toolchain file may choose the toolchain); rejects when it fails or
 * does not answer in time (processes.ts).
 */
export async function askRustc(
  rustc: string,
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<string> {
  const output = await runTool(rustc, args, env, cwd);
  if (!output.success) throw new Error(`"${rustc} ${args.join(" ")}" failed`);
  return output.stdout;
}
