/**
 * The one timer: a callback after a delay unless cancelled, for every one-shot wait of the
 * program (the stores' clients, staging, the daemon, the cache's batches). Built on
 * `AbortSignal.timeout` because Deno's first `setTimeout` loads its Node-compatible timers for
 * ~5 ms, a tax on every rustc call that talks to a remote. Repeating work uses `setInterval`.
 * @module
 */

/**
 * Calls `onTimeout` after `ms` unless the returned function is called first.
 *
 * @example
 * ```ts
 * import { afterTimeout } from "./timeout.ts";
 * const cancel = afterTimeout(10_000, () => console.log("too slow"));
 * cancel(); // nothing is printed, and the timer no longer keeps the process alive
 * ```
 */
export function afterTimeout(ms: number, onTimeout: () => void): () => void {
  const signal = AbortSignal.timeout(ms);
  // While a listener is attached the timer keeps the process alive: cancelling removes it.
  signal.addEventListener("abort", onTimeout, { once: true });
  return () => signal.removeEventListener("abort", onTimeout);
}
