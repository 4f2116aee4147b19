/**
 * What this program asks of another process by its pid, from `/proc`: whether it runs, and when
 * it started (which tells a pid reused later from the process it once named). The front door
 * (src/frontdoor/cargo_warmup.rs) asks "does it run" by the same rule in its own language.
 * @module
 */

/** The fields of `/proc/<pid>/stat` after the command name (which may hold spaces, even ")"). */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/**
 * Whether process `pid` runs. A zombie does not: a process that exited stays one where nothing
 * reaps it (a container whose first process reaps no orphans). Without `/proc` (another OS) no
 * process is known to run.
 *
 * @example
 * ```ts
 * import { isRunning } from "./processes.ts";
 * console.log(isRunning(Deno.pid)); // true
 * ```
 */
export function isRunning(pid: number | string): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== "Z" && state !== "X";
}

/**
 * When process `pid` started, in clock ticks since boot; "" where that cannot be read (another
 * OS, a process gone, an id that is no pid).
 */
export function processStartOf(pid: number | string): string {
  if (!/^\d+$/.test(String(pid))) return "";
  // The 22nd field of all, the 20th after the command name.
  return statFields(pid)?.[19] ?? "";
}
