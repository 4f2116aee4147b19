/**
 * The optional per-invocation log (`CARGO_WARMUP_LOG=path`): one JSON line per rustc call with
 * its outcome, for tests, benchmarks and users asking "why did this crate miss?".
 * @module
 */

/** One line of the dispatch log. */
export interface DispatchLogLine {
  crate: string;
  version?: string;
  kind?: string;
  outcome: "hit" | "miss" | "not-cacheable";
  /** Who served the call: the daemon, or the dispatcher process cargo started. */
  via?: "daemon" | "in-process";
  reason?: string;
  key?: string;
  /** Wall time of the whole dispatch. */
  ms: number;
  /** On a miss, how much of `ms` rustc itself took. */
  rustcMs?: number;
  /** When each phase ended, in ms since the dispatch started. */
  phases?: Record<string, number>;
}

/** Appends `line` to the log named by `path`; a log that cannot be written is skipped. */
export function appendDispatchLog(path: string | undefined, line: DispatchLogLine): void {
  if (!path) return;
  try {
    // One write with O_APPEND keeps lines from concurrent dispatchers whole.
    Deno.writeTextFileSync(path, JSON.stringify(line) + "\n", { append: true });
  } catch {
    // The log is a diagnostic aid; it never affects the build.
  }
}
