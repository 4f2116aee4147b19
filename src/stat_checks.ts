/**
 * Whether a path is there, asked without throwing: for the checks where a missing path, a
 * permission error and a dangling link all mean "not usable here".
 * @module
 */

/**
 * Whether anything is at `path` (following links).
 *
 * @example
 * ```ts
 * import { exists } from "./stat_checks.ts";
 * console.log(exists("/")); // true
 * ```
 */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `path` is a regular file (following links).
 *
 * @example
 * ```ts
 * import { isFile } from "./stat_checks.ts";
 * console.log(isFile("/")); // false
 * ```
 */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
