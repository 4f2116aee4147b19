/**
 * Where a build's workspace is: the nearest directory up from where cargo was started that holds
 * a Cargo.lock. The journal names builds' projects by it; the warm-up records projects by it.
 * @module
 */

import { dirname, join } from "node:path";

/** The nearest directory from `start` up that holds a Cargo.lock: the workspace root. */
export function workspaceRootFrom(start: string): string | undefined {
  for (let dir = start;; dir = dirname(dir)) {
    try {
      if (Deno.statSync(join(dir, "Cargo.lock")).isFile) return dir;
    } catch {
      // not here
    }
    if (dirname(dir) === dir) return undefined;
  }
}
