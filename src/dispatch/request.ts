/**
 * One rustc call as the cache sees it: what cargo asked for, which build it belongs to, where its
 * output goes and how long each phase took. The in-process dispatcher makes one per process;
 * the daemon makes one per connection, so nothing here may live in a module-level variable.
 * @module
 */

/**
 * Where a call's stdout or stderr bytes go: this process's stream, or frames to a client. Writes
 * land in the order they were made even when nobody awaits them (a warning is fire-and-forget);
 * the promise of the last write settles after every earlier one.
 */
export interface OutputSink {
  write(bytes: Uint8Array): Promise<void>;
}

/** One rustc call routed through the cache. */
export interface DispatchRequest {
  /** The compiler cargo named (first argument of the wrapper). */
  rustc: string;
  /** rustc's arguments. */
  argv: string[];
  /** The environment cargo gave the call. */
  env: Record<string, string>;
  /** The call's working directory (for a registry crate: its unpacked source). */
  cwd: string;
  /** Where cargo was started: its `.cargo/config.toml` files are the ones that count. */
  cargoCwd: string;
  /** Names the build the call belongs to (cargo's pid): "once per build" keys on it. */
  buildId: string;
  stdout: OutputSink;
  stderr: OutputSink;
  /**
   * Where the cache's own warnings go when they must not mix into `stderr`: a build script's
   * stderr is the script's (cargo keeps it and shows it only on failure), so the daemon holds
   * them for the build's next rustc call. Default: `stderr`.
   */
  warnings?: OutputSink;
  phases: PhaseClock;
  /** Who serves the call, for the dispatch log. */
  via: "daemon" | "in-process";
  /**
   * Work that helps later calls but not this one (writing an unpacked mirror): the daemon runs
   * it after cargo has its answer, a process before it exits.
   */
  afterReply: Array<() => void>;
  /**
   * Whether whoever asked has given up on the answer (a daemon's client that timed out and ran
   * the compiler itself): then the call must write nothing more into the build. Absent: never.
   */
  abandoned?: () => boolean;
  /**
   * The call's entries stay on local disk, never read from or written to a shared level: a
   * workspace crate cached by default (`[warmup] workspace = "incremental"`) is the user's code.
   */
  localOnly?: boolean;
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

/** A sink writing to one of this process's standard streams. */
export function processSink(stream: { write(p: Uint8Array): Promise<number> }): OutputSink {
  return orderedSink(async (bytes) => {
    let written = 0;
    while (written < bytes.length) written += await stream.write(bytes.subarray(written));
  });
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

/**
 * The request of this process when cargo ran it as the wrapper: cargo is the parent process,
 * its working directory is read from /proc (cargo runs rustc for a registry crate inside that
 * crate's source directory, so our own cwd would find none of the project's config files).
 */
export function requestOfThisProcess(rustc: string, argv: string[]): DispatchRequest {
  const phases = new PhaseClock();
  return {
    rustc,
    argv,
    env: Deno.env.toObject(),
    cwd: Deno.cwd(),
    cargoCwd: cwdOfProcess(Deno.ppid) ?? Deno.cwd(),
    buildId: String(Deno.ppid),
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

/** Writes `text` to `sink` as UTF-8. */
export function writeText(sink: OutputSink, text: string): Promise<void> {
  return text.length === 0 ? Promise.resolve() : sink.write(new TextEncoder().encode(text));
}
