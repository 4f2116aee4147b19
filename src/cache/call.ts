/**
 * A call as the cache layer sees it: the program cargo ran, which build it belongs to (and what
 * its session knows of that build), the environment cargo gave it, where the cache's warnings go,
 * the clock of its phases and whether its entries stay on local disk. The dispatcher's request
 * (dispatch/request.ts) is one; the cache needs nothing else of it.
 * @module
 */

import type { Builds } from "./build_of.ts";

/** What the cache needs of a call. */
export interface CacheCall {
  /**
   * The program cargo named (first argument of the wrapper): the compiler, or, for a build-script
   * run, the real script. A build's shape (team_manifests.ts) names the rustc of its first call.
   */
  rustc: string;
  /** Names the build the call belongs to (cargo's pid): "once per build" keys on it. */
  buildId: string;
  /** What the call's session knows of its builds (`CacheSession.builds`). */
  builds: Builds;
  /** The environment cargo gave the call. */
  env: Record<string, string>;
  /** Where cargo was started: its `.cargo/config.toml` files are the ones that count. */
  cargoCwd: string;
  stderr: OutputSink;
  /**
   * Where the cache's own warnings go when they must not mix into `stderr`: a build script's
   * stderr is the script's (cargo keeps it and shows it only on failure), so the daemon holds
   * them for the build's next rustc call. Default: `stderr`.
   */
  warnings?: OutputSink;
  phases: PhaseClock;
  /**
   * The call's entries stay on local disk, never read from or written to a shared level: a
   * workspace crate cached by default (`[warmup] workspace = "incremental"`) is the user's code.
   */
  localOnly?: boolean;
}

/**
 * Where a call's stdout or stderr bytes go: this process's stream, or frames to a client. Writes
 * land in the order they were made even when nobody awaits them (a warning is fire-and-forget);
 * the promise of the last write settles after every earlier one.
 */
export interface OutputSink {
  write(bytes: Uint8Array): Promise<void>;
}

/** Makes `writeOnce` an {@linkcode OutputSink} whose writes never overtake each other. */
export function orderedSink(writeOnce: (bytes: Uint8Array) => Promise<void>): OutputSink {
  let last: Promise<void> = Promise.resolve();
  return {
    write(bytes) {
      last = last.then(() => writeOnce(bytes));
      return last;
    },
  };
}

/** Writes `text` to `sink` as UTF-8. */
export function writeText(sink: OutputSink, text: string): Promise<void> {
  return text.length === 0 ? Promise.resolve() : sink.write(new TextEncoder().encode(text));
}

/** When each phase of a call ended, in ms since it started: "why was this hit slow?". */
export class PhaseClock {
  readonly started: number = performance.now();
  readonly ended: Record<string, number> = {};

  /** Records that the phase `name` ended now. */
  done(name: string): void {
    this.ended[name] = Math.round((performance.now() - this.started) * 10) / 10;
  }

  /** Milliseconds since the call started. */
  elapsed(): number {
    return performance.now() - this.started;
  }
}
