/**
 * Runs the real rustc: either handing it our stdio untouched, or forwarding its output as it
 * comes while keeping a copy to cache. Forwarding is immediate because cargo starts dependent
 * crates as soon as rustc announces the `.rmeta` file (pipelining).
 * @module
 */

import type { OutputSink } from "../cache/call.ts";

/** What a compilation printed and how it ended. */
export interface RustcRun {
  code: number;
  stdout: string;
  stderr: string;
  elapsedMs: number;
}

/** Runs rustc with our own stdin, stdout and stderr; resolves to its exit code. */
export async function runRustcPassthrough(rustc: string, args: string[]): Promise<number> {
  const status = await new Deno.Command(rustc, {
    args,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  return exitCodeOf(status);
}

/** Runs rustc, forwarding stdout and stderr chunk by chunk to `sinks` while recording both. */
export async function runRustcRecorded(
  rustc: string,
  args: string[],
  sinks: { stdout: OutputSink; stderr: OutputSink },
): Promise<RustcRun> {
  const started = performance.now();
  const child = new Deno.Command(rustc, {
    args,
    stdin: "inherit",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const [stdout, stderr, status] = await Promise.all([
    forward(child.stdout, sinks.stdout),
    forward(child.stderr, sinks.stderr),
    child.status,
  ]);
  return { code: exitCodeOf(status), stdout, stderr, elapsedMs: performance.now() - started };
}

async function forward(source: ReadableStream<Uint8Array>, sink: OutputSink): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of source) {
    await sink.write(chunk);
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

function exitCodeOf(status: Deno.CommandStatus): number {
  if (status.signal) return 128 + (signalNumbers[status.signal] ?? 1);
  return status.code;
}

const signalNumbers: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
};
