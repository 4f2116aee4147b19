// The one way a test waits for something another process or task does: poll until it holds. The
// deadline only bounds a hang (a test never passes or fails by how fast the machine is), and
// reaching it says what was awaited.

/** Options of {@linkcode waitUntil}. */
export interface WaitOptions {
  /** What is awaited, for the error at the deadline ("the daemon to exit"). */
  what?: string;
  /** Bounds a hang, nothing else: generous, never what a test measures. Default 60 s. */
  timeoutMs?: number;
  /** How often `probe` runs, in ms. Default 25. */
  everyMs?: number;
}

/** What {@linkcode waitUntil} keeps waiting on. */
type NotYet = undefined | null | false;

/**
 * Runs `probe` every `everyMs` until it returns something other than `undefined`, `null` or
 * `false`, and resolves to that. A probe that throws ends the wait with its error (so a probe
 * can assert on what must not happen meanwhile); past the deadline the wait throws.
 *
 * @example
 * ```ts ignore
 * const pid = await waitUntil(() => liveDaemons(runtimeDir)[0], { what: "a daemon" });
 * await waitUntil(async () => (await readDispatchLog(log)).length >= 3, { everyMs: 5 });
 * ```
 */
export async function waitUntil<T>(
  probe: () => T | NotYet | Promise<T | NotYet>,
  options: WaitOptions = {},
): Promise<T> {
  const { what = "a condition", timeoutMs = 60_000, everyMs = 25 } = options;
  const deadline = performance.now() + timeoutMs;
  while (true) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value as T;
    if (performance.now() > deadline) {
      throw new Error(`Still waiting for ${what} after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
