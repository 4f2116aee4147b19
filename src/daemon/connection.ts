/**
 * One front-door connection: reads its request frame, turns it into a {@linkcode DispatchRequest}
 * whose output goes back as frames, runs it through the same dispatcher the in-process path uses,
 * and tells the client how it ended. A miss is compiled by the client (it holds cargo's jobserver
 * and streams rustc's output itself); the bundle is stored after the client has gone.
 * @module
 */

import { dispatch } from "../dispatch/dispatch.ts";
import type { RustcRunner } from "../dispatch/through_cache.ts";
import { dispatchRun, isBuildScriptRun } from "../dispatch/build_script_run.ts";
import { cwdOfProcess, type DispatchRequest } from "../dispatch/request.ts";
import type { Builds } from "../cache/build_of.ts";
import { orderedSink, PhaseClock } from "../cache/call.ts";
import type { RustcRun } from "../dispatch/run_rustc.ts";
import type { CacheSession } from "../cache/session.ts";
import type { PlacingHooks } from "../dispatch/placing_hooks.ts";
import { errorMessage } from "../error_message.ts";
import { encodeFrame, FRAME, type Frame, FrameReader } from "./frames.ts";
import { afterTimeout } from "../timeout.ts";

/** A client that has not sent its request by then is dropped. */
const REQUEST_TIMEOUT_MS = 10_000;

/** What the daemon logs, apart from answers to clients. */
export type DaemonLog = (message: string) => void;

/**
 * Warnings written after their client left (a miss that could not be stored: the store runs
 * after the client exits), kept per build and shown by that build's next call.
 */
export class DeferredWarnings {
  readonly #byBuild = new Map<string, Uint8Array[]>();

  keep(buildId: string, text: Uint8Array): void {
    // A build that never calls again must not grow this without end.
    if (this.#byBuild.size > 256) this.#byBuild.clear();
    const kept = this.#byBuild.get(buildId) ?? [];
    kept.push(text);
    this.#byBuild.set(buildId, kept);
  }

  take(buildId: string): Uint8Array[] {
    const kept = this.#byBuild.get(buildId) ?? [];
    this.#byBuild.delete(buildId);
    return kept;
  }
}

/** The request a front door sends: its argv starts with the compiler. */
interface WireRequest {
  v: 1;
  tag: string;
  argv: string[];
  cwd: string;
  ppid: number;
  env: Record<string, string>;
}

/** What the daemon answers besides builds' requests. */
export interface DaemonControl {
  /** Settles once nothing else is in flight (a `W` request). */
  settled(): Promise<void>;
  /** The daemon's state as JSON (an `I` request, `cargo-warmup daemon status`). */
  status(): Promise<unknown>;
}

/** Serves one connection to its end, with the daemon's session and placing; never throws. */
export async function serveConnection(
  conn: Deno.Conn,
  session: CacheSession,
  placing: PlacingHooks,
  tag: string,
  log: DaemonLog,
  control: DaemonControl,
  deferred: DeferredWarnings,
): Promise<void> {
  const reader = new FrameReader(conn);
  // Every frame to the client goes through one chain, so none overtakes another.
  let clientGone = false;
  const send = orderedSink((bytes) => conn.write(bytes).then(() => {}));
  const sendFrame = (type: string, payload: Uint8Array | string = "") =>
    send.write(encodeFrame(type, payload)).catch(() => {
      clientGone = true;
    });
  try {
    const wire = await readRequest(reader, tag);
    if (wire === "settle") {
      await control.settled();
      await sendFrame(FRAME.served, "0");
      return;
    }
    if (wire === "status") {
      await sendFrame(FRAME.stdout, JSON.stringify(await control.status()));
      await sendFrame(FRAME.served, "0");
      return;
    }
    if (typeof wire === "string") {
      log(`refused a request: ${wire}`);
      return;
    }
    // The client sends nothing more until it reports a miss: the end of its stream before then
    // means it gave up waiting (its timeout) and runs the compiler itself. So does the time: a
    // daemon paused past the client's timeout learns it only from the clock.
    const afterRequest = reader.next().catch(() => undefined);
    let gaveUp = false;
    void afterRequest.then((frame) => {
      if (frame === undefined) gaveUp = true;
    });
    const deadline = Date.now() + clientTimeoutMs(wire.env);
    const request = requestOf(wire, session.builds, (type, text) => {
      // Said after the client left (a store that failed): the daemon's log keeps it.
      if (!clientGone) return sendFrame(type, text);
      log(new TextDecoder().decode(text).trimEnd());
      if (type === FRAME.stderr) deferred.keep(request.buildId, text);
      return Promise.resolve();
    });
    request.abandoned = () => gaveUp || Date.now() > deadline;
    if (isBuildScriptRun(request)) {
      request.warnings = {
        write: (bytes) => Promise.resolve(deferred.keep(request.buildId, bytes)),
      };
    } else {
      for (const text of deferred.take(request.buildId)) void sendFrame(FRAME.stderr, text);
    }
    const runner: RustcRunner = {
      async passthrough() {
        await sendFrame(FRAME.runRustc);
        clientGone = true;
        return undefined;
      },
      async compile(hold = false) {
        await sendFrame(FRAME.compileMiss, hold ? "hold" : "");
        const run = await readMissReport(afterRequest, reader, request.phases);
        if (!hold) clientGone = true;
        return run;
      },
      async compiled() {
        // A held client exits with its own code on any frame after its report.
        if (!clientGone) await sendFrame(FRAME.served, "0");
        clientGone = true;
      },
    };
    const code = isBuildScriptRun(request)
      ? await dispatchRun(session, placing, request, runner)
      : await dispatch(session, placing, request, runner);
    if (!clientGone) await sendFrame(FRAME.served, String(code ?? 0));
    for (const task of request.afterReply.splice(0)) task();
  } catch (error) {
    log(`connection failed: ${errorMessage(error)}`);
  } finally {
    try {
      conn.close();
    } catch {
      // already closed by the client
    }
  }
}

/** The request frame, checked; a string says why it was refused. */
async function readRequest(
  reader: FrameReader,
  tag: string,
): Promise<WireRequest | "settle" | "status" | string> {
  let cancel: (() => void) | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    cancel = afterTimeout(REQUEST_TIMEOUT_MS, () => resolve(undefined));
  });
  let frame;
  try {
    frame = await Promise.race([reader.next(), timeout]);
  } catch (error) {
    return errorMessage(error);
  } finally {
    cancel?.();
  }
  if (frame === undefined) return "no request frame";
  if (frame.type === FRAME.settle) return "settle";
  if (frame.type === FRAME.status) return "status";
  if (frame.type !== FRAME.request) return `unexpected frame type "${frame.type}"`;
  let wire: unknown;
  try {
    wire = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(frame.payload));
  } catch (error) {
    return `malformed request: ${errorMessage(error)}`;
  }
  if (!isWireRequest(wire)) return "malformed request: missing or mistyped fields";
  if (wire.tag !== tag) return `request for version "${wire.tag}", this daemon is "${tag}"`;
  return wire;
}

/**
 * How long the client waits for an answer (the front door's `CARGO_WARMUP_DAEMON_TIMEOUT_MS`),
 * less a margin for the way back: past it, the client has run the compiler itself.
 */
function clientTimeoutMs(env: Record<string, string>): number {
  const ms = Number(env.CARGO_WARMUP_DAEMON_TIMEOUT_MS);
  return (Number.isSafeInteger(ms) && ms > 0 ? ms : 60_000) - 250;
}

function isWireRequest(value: unknown): value is WireRequest {
  if (typeof value !== "object" || value === null) return false;
  const wire = value as Record<string, unknown>;
  return wire.v === 1 && typeof wire.tag === "string" && Array.isArray(wire.argv) &&
    wire.argv.length > 0 && wire.argv.every((arg) => typeof arg === "string") &&
    typeof wire.cwd === "string" && Number.isSafeInteger(wire.ppid) &&
    typeof wire.env === "object" && wire.env !== null &&
    Object.values(wire.env).every((value) => typeof value === "string");
}

function requestOf(
  wire: WireRequest,
  builds: Builds,
  write: (type: string, bytes: Uint8Array) => Promise<void>,
): DispatchRequest {
  const [rustc, ...argv] = wire.argv as [string, ...string[]];
  return {
    rustc,
    argv,
    env: wire.env,
    cwd: wire.cwd,
    cargoCwd: cwdOfProcess(wire.ppid) ?? wire.cwd,
    buildId: String(wire.ppid),
    builds,
    stdout: { write: (bytes) => write(FRAME.stdout, bytes) },
    stderr: { write: (bytes) => write(FRAME.stderr, bytes) },
    phases: new PhaseClock(),
    via: "daemon",
    afterReply: [],
  };
}

/**
 * What the client reports after compiling a miss: rustc's stdout, stderr and exit. A client that
 * vanishes first reports a failed compile, so nothing is stored.
 */
async function readMissReport(
  first: Promise<Frame | undefined>,
  reader: FrameReader,
  phases: PhaseClock,
): Promise<RustcRun> {
  const decoder = new TextDecoder();
  const run: RustcRun = { code: -1, stdout: "", stderr: "", elapsedMs: phases.elapsed() };
  try {
    for (let frame = await first; frame; frame = await reader.next()) {
      if (frame.type === FRAME.missStdout) run.stdout = decoder.decode(frame.payload);
      else if (frame.type === FRAME.missStderr) run.stderr = decoder.decode(frame.payload);
      else if (frame.type === FRAME.missDone) {
        const done = JSON.parse(decoder.decode(frame.payload));
        if (Number.isInteger(done.code) && typeof done.ms === "number") {
          return { ...run, code: done.code, elapsedMs: done.ms };
        }
        break;
      } else break;
    }
  } catch {
    // a broken report is no report
  }
  return { ...run, code: -1 };
}
