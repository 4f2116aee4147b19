/**
 * Where the warm-up keeps its state, logs and records inside the cache dir. A module of its own
 * because the dispatcher reaches it (remembered projects, toolchain markers) and must not load
 * the progress display along with it.
 * @module
 */

import { join } from "node:path";

/**
 * The warm-up's directory inside `cacheDir`.
 *
 * @example
 * ```ts
 * import { warmDir } from "./warm_dir.ts";
 * console.log(warmDir("/home/me/.cargo/warmup-cache")); // /home/me/.cargo/warmup-cache/warm
 * ```
 */
export function warmDir(cacheDir: string): string {
  return join(cacheDir, "warm");
}
