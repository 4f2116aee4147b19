/**
 * What the daemon holds of the machine, read from `/proc/self`: its resident memory and its open
 * files, deleted ones named apart (a cache directory removed under it shows there first).
 * Elsewhere than Linux the file counts are unknown.
 * @module
 */

/** The daemon's own footprint. */
export interface ProcessFootprint {
  rssBytes: number;
  /** The JavaScript heap in use (RSS also holds memory freed but not yet given back). */
  heapUsedBytes: number;
  /** Memory held outside the heap by JavaScript objects (buffers of bundles being read). */
  externalBytes: number;
  /** Open file descriptors, or undefined where `/proc/self/fd` cannot be read. */
  openFiles: number | undefined;
  /** Paths of open files that have been deleted. */
  deletedFiles: string[];
}

/**
 * This process's resident memory and open files.
 *
 * @example
 * ```ts
 * import { processFootprint } from "./process_info.ts";
 * const { rssBytes, openFiles } = processFootprint();
 * console.log(rssBytes > 0, openFiles === undefined || openFiles > 0); // true true
 * ```
 */
export function processFootprint(): ProcessFootprint {
  let openFiles: number | undefined;
  const deletedFiles: string[] = [];
  try {
    openFiles = 0;
    for (const entry of Deno.readDirSync("/proc/self/fd")) {
      openFiles++;
      try {
        const target = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
        if (target.endsWith(" (deleted)")) deletedFiles.push(target.slice(0, -" (deleted)".length));
      } catch {
        // closed while we looked (the directory listing's own descriptor)
      }
    }
  } catch {
    openFiles = undefined;
  }
  const memory = Deno.memoryUsage();
  return {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    externalBytes: memory.external,
    openFiles,
    deletedFiles,
  };
}
