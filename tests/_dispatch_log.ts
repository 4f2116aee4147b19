// Reading the dispatch log: the dispatcher appends one JSON object per rustc invocation to the
// file named by CARGO_WARMUP_LOG, which is how tests see hits and misses.

/** The outcome of one rustc invocation, as the dispatcher reports it. */
export type DispatchOutcome = "hit" | "miss" | "not-cacheable";

/** One line of the dispatch log (CARGO_WARMUP_LOG). */
export interface DispatchLogEntry {
  crate: string;
  version?: string;
  outcome: DispatchOutcome;
  reason?: string;
  key?: string;
  kind?: string;
  [field: string]: unknown;
}

/**
 * Reads the dispatch log: one JSON object per line. A log that was never written (no rustc
 * invocation went through the wrapper) reads as empty.
 *
 * @example
 * ```ts ignore
 * const entries = await readDispatchLog(log);
 * assert.equal(countOutcomes(entries).miss, 0);
 * ```
 */
export async function readDispatchLog(path: string): Promise<DispatchLogEntry[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return text.split("\n").filter((line) => line.trim() !== "").map((line, index) => {
    try {
      return JSON.parse(line) as DispatchLogEntry;
    } catch (error) {
      throw new SyntaxError(`Cannot parse dispatch log "${path}" line ${index + 1}: ${error}`);
    }
  });
}

/**
 * Registry units (rustc compiles) compiled instead of served. Build scripts such as anyhow's and
 * thiserror's probe the compiler by compiling a test file through RUSTC_WRAPPER; a probe that is
 * meant to fail is logged as a failed `check` compile and is no unit of the build. Build-script
 * runs are not units either: tests/build_script_run_test.ts counts them.
 *
 * @example
 * ```ts ignore
 * assert.deepEqual(registryMisses(await readDispatchLog(log)), []);
 * ```
 */
export function registryMisses(entries: DispatchLogEntry[]): DispatchLogEntry[] {
  return entries.filter((entry) =>
    entry.outcome === "miss" && entry.kind !== "build-run" &&
    !(entry.kind === "check" && entry.reason === "compile failed")
  );
}

/**
 * Counts the entries per outcome, optionally only those matching `filter`.
 *
 * @example
 * ```ts ignore
 * const deps = countOutcomes(entries, (entry) => entry.crate !== "server");
 * assert.deepEqual(deps, { hit: 17, miss: 0, "not-cacheable": 0 });
 * ```
 */
export function countOutcomes(
  entries: DispatchLogEntry[],
  filter: (entry: DispatchLogEntry) => boolean = () => true,
): Record<DispatchOutcome, number> {
  const counts: Record<DispatchOutcome, number> = { hit: 0, miss: 0, "not-cacheable": 0 };
  for (const entry of entries) {
    if (filter(entry) && entry.outcome in counts) counts[entry.outcome]++;
  }
  return counts;
}
