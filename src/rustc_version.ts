/** Reading `rustc -vV`: the release and the host triple every part of the program asks for. @module */

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
    const output = await new Deno.Command(env.RUSTC || "rustc", {
      args: ["-vV"],
      env,
      clearEnv: true,
      stdin: "null",
    }).output();
    return parseRustcVersion(new TextDecoder().decode(output.stdout));
  } catch {
    return parseRustcVersion("");
  }
}
