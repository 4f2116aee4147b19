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
