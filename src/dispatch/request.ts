/**
 * One rustc call as the cache sees it: what cargo asked for, which build it belongs to, where its
 * output goes and how long each phase took. The in-process dispatcher makes one per process;
 * the daemon makes one per connection, so nothing here may live in a module-level variable.
 * @module
 */

import type { Builds } from "../cache/build_of.ts";
import { type CacheCall, orderedSink, type OutputSink, PhaseClock } from "../cache/call.ts";

/** One rustc call routed through the cache: what the cache needs of it, and the rest. */
export interface DispatchRequest extends CacheCall {
  /** rustc's arguments. */
  argv: string[];
  /** The call's working directory (for a registry crate: its unpacked source). */
  cwd: string;
  stdout: OutputSink;
  /** Who serves the call, for the dispatch log. */
  via: "daemon" | "in-process";
  /**
   * Work that helps later calls but not this one (writing a hot copy): the daemon runs
   * it after cargo has its answer, a process before it exits.
   */
  afterReply: Array<() => void>;
  /**
   * Whether whoever asked has given up on the answer (a daemon's client that timed out and ran
   * the compiler itself): then the call must write nothing more into the build. Absent: never.
   */
  abandoned?: () => boolean;
}

/** A sink writing to one of this process's standard streams. */
export function processSink(stream: { write(p: Uint8Array): Promise<number> }): OutputSink {
  return orderedSink(async (bytes) => {
    let written = 0;
    while (written < bytes.length) written += await stream.write(bytes.subarray(written));
  });
}

/**
 * The request of this process when cargo ran it as the wrapper: cargo is the parent process,
 * its working directory is read from /proc (cargo runs rustc for a registry crate inside that
 * crate's source directory, so our own cwd would find none of the project's config files).
 */
export function requestOfThisProcess(
  rustc: string,
  argv: string[],
  builds: Builds,
): DispatchRequest {
  const phases = new PhaseClock();
  return {
    rustc,
    argv,
    env: Deno.env.toObject(),
    cwd: Deno.cwd(),
    cargoCwd: cwdOfProcess(Deno.ppid) ?? Deno.cwd(),
    buildId: String(Deno.ppid),
    builds,
    stdout: processSink(Deno.stdout),
    stderr: processSink(Deno.stderr),
    phases,
    via: "in-process",
    afterReply: [],
  };
}

/** The working directory of process `pid`, when this user may read it. */
export function cwdOfProcess(pid: number): string | undefined {
  try {
    return Deno.realPathSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}
