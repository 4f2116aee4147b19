/** Where cargo keeps its home (registry sources, config, our default cache). @module */

import { join, resolve } from "node:path";

/**
 * `CARGO_HOME` as cargo resolves it: the variable (relative to `cwd` when relative), else
 * `~/.cargo`.
 *
 * @example
 * ```ts
 * import { cargoHomeOf } from "./cargo_home.ts";
 * console.log(cargoHomeOf({ HOME: "/home/a" })); // "/home/a/.cargo"
 * ```
 */
export function cargoHomeOf(env: Record<string, string | undefined>, cwd = "/"): string {
  if (env.CARGO_HOME) return resolve(cwd, env.CARGO_HOME);
  return join(env.HOME ?? env.USERPROFILE ?? "/", ".cargo");
}
