/**
 * How an environment variable says yes or no: one rule for every switch, the settings' booleans
 * set through the environment (`CARGO_WARMUP_READ_ONLY=1`), `CARGO_WARMUP_DISABLE` and
 * `CARGO_WARMUP_DAEMON`. The front door (src/frontdoor/cargo_warmup.rs) and the launcher
 * (bin/cargo-warmup) read `CARGO_WARMUP_DAEMON` by the same words.
 * @module
 */

const YES = new Set(["1", "true", "yes", "on"]);
const NO = new Set(["0", "false", "no", "off"]);

/**
 * True or false when `value` says so, undefined when it says neither (unset, empty, other words).
 *
 * @example
 * ```ts
 * import { envFlag } from "./env_flag.ts";
 * console.log(envFlag("1"), envFlag("off"), envFlag(undefined)); // true false undefined
 * ```
 */
export function envFlag(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (YES.has(value)) return true;
  if (NO.has(value)) return false;
  return undefined;
}

/** Whether `CARGO_WARMUP_DAEMON` turns the daemon off: every call then serves itself. */
export function daemonOff(env: Record<string, string | undefined>): boolean {
  return envFlag(env.CARGO_WARMUP_DAEMON) === false;
}

/** Whether `CARGO_WARMUP_DISABLE` turns the cache off for this build. */
export function cacheDisabled(env: Record<string, string | undefined>): boolean {
  return envFlag(env.CARGO_WARMUP_DISABLE) === true;
}
