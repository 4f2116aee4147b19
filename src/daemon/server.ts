/**
 * The daemon's lifecycle: one resident process per user and version tag, listening on a Unix
 * socket in a private runtime directory, holding one {@linkcode CacheSession} for every build.
 * It replaces an older daemon of the same program, exits after an idle timeout, on SIGTERM, or
 * when its socket is taken from it, and removes only the files that are still its own.
 * @module
 */

import { resolve } from "node:path";
import { CacheSession } from "../cache/session.ts";
import { errorMessage } from "../error_message.ts";
import { Placing } from "../place/placing.ts";
import { DeferredWarnings, serveConnection } from "./connection.ts";
import { type ProcessFootprint, processFootprint } from "./process_info.ts";
import type { OpenCacheInfo } from "../cache/session.ts";
import {
  daemonFiles,
  type DaemonRecord,
  daemonRecords,
  ensurePrivateDir,
  isDaemonProcess,
} from "../runtime_dir.ts";
import { afterTimeout } from "../timeout.ts";

/** How often the daemon checks its idle time and that its socket is still its own. */
const TICK_MS = 2_000;
/** A stopping daemon waits this long for requests in flight (a miss being stored). */
const DRAIN_MS = 30_000;
/** The log is cut back when a daemon starts and finds it past this size. */
const MAX_LOG_BYTES = 1024 * 1024;

/** What `cargo-warmup daemon status` shows of a running daemon. */
export interface DaemonStatus extends DaemonRecord, ProcessFootprint {
  uptimeSeconds: number;
  /** Connections served since it started (builds' calls, status and settle requests). */
  requests: number;
  inFlight: number;
  caches: OpenCacheInfo[];
}

/** Options for {@linkcode runDaemon}. */
export interface DaemonOptions {
  tag: string;
  runtimeDir: string;
  /** The program this daemon runs as (recorded, so only its own older daemons are replaced). */
  program: string;
  idleTimeoutSeconds: number;
}

/**
 * Runs the daemon until it is idle, stopped or displaced. Resolves to the exit code: 0, also when
 * another daemon of the same tag already runs (then this one is not needed).
 */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  options = { ...options, runtimeDir: resolve(options.runtimeDir) };
  ensurePrivateDir(options.runtimeDir);
  // Started from some crate's directory, which a test or `cargo clean` may delete: hold none.
  Deno.chdir("/");
  const files = daemonFiles(options.runtimeDir, options.tag);
  const lock = await Deno.open(files.lock, { create: true, write: true, mode: 0o600 });
  if (!await lock.tryLock(true)) {
    lock.close();
    return 0;
  }
  const log = openLog(files.log);
  replaceOlderDaemons(options, log);

  // Whatever is at the socket path now was left by a daemon that died: we hold the lock.
  await Deno.remove(files.socket).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path: files.socket });
  Deno.chmodSync(files.socket, 0o600);
  const socketIno = Deno.statSync(files.socket).ino;
  const record: DaemonRecord = {
    pid: Deno.pid,
    tag: options.tag,
    program: options.program,
    startedAt: new Date().toISOString(),
    idleTimeoutSeconds: options.idleTimeoutSeconds,
  };
  Deno.writeTextFileSync(files.record, JSON.stringify(record) + "\n", { mode: 0o600 });
  log(`started, pid ${Deno.pid}, tag ${options.tag}`);

  const session = new CacheSession({ longLived: true });
  // The builds' units noted for placing, captured as each build ends.
  const placing = new Placing();
  let requests = 0;
  const status = async (): Promise<DaemonStatus> => {
    await session.sweep();
    return {
      ...record,
      uptimeSeconds: Math.round((Date.now() - Date.parse(record.startedAt)) / 1000),
      requests,
      inFlight: inFlight.size,
      ...processFootprint(),
      caches: session.openCaches(),
    };
  };
  const inFlight = new Set<Promise<void>>();
  const waiters = new Set<Promise<void>>();
  const deferred = new DeferredWarnings();
  let lastActivity = Date.now();
  let stopping: string | undefined;
  const stop = (why: string) => {
    if (stopping !== undefined) return;
    stopping = why;
    try {
      listener.close();
    } catch {
      // already closed
    }
  };

  const ticker = setInterval(() => {
    if (inFlight.size === 0 && Date.now() - lastActivity > options.idleTimeoutSeconds * 1000) {
      stop("idle");
    } else if (!socketStillOurs(files.socket, socketIno)) {
      stop("socket removed or replaced");
    } else {
      // Caches idle for a while, or beyond the few kept open, are closed.
      void session.sweep().catch((error) => log(`cache sweep failed: ${errorMessage(error)}`));
    }
  }, TICK_MS);
  const onSignal = () => stop("signal");
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);

  try {
    for await (const conn of listener) {
      lastActivity = Date.now();
      // Waits for every request but those that wait themselves (two waiters must not wait on
      // each other).
      const settled = async () => {
        waiters.add(served);
        let others = [...inFlight].filter((request) => !waiters.has(request));
        while (others.length > 0) {
          await Promise.all(others);
          others = [...inFlight].filter((request) => !waiters.has(request));
        }
        await session.settle();
        // A script that built and then prepares a copy finds its build captured.
        await placing.captures.captureFinished();
      };
      requests++;
      const served: Promise<void> = serveConnection(
        conn,
        session,
        placing,
        options.tag,
        log,
        { settled, status },
        deferred,
      )
        .finally(() => {
          inFlight.delete(served);
          waiters.delete(served);
          lastActivity = Date.now();
        });
      inFlight.add(served);
    }
  } catch (error) {
    if (stopping === undefined) log(`listener failed: ${errorMessage(error)}`);
  }

  clearInterval(ticker);
  Deno.removeSignalListener("SIGTERM", onSignal);
  Deno.removeSignalListener("SIGINT", onSignal);
  log(`stopping (${stopping ?? "listener closed"}), ${inFlight.size} request(s) in flight`);
  await Promise.race([
    // Stores held back until the builds were over are written now, if there is time.
    Promise.all(inFlight).then(() => session.heldStores.storeAll()),
    new Promise<void>((resolve) => afterTimeout(DRAIN_MS, resolve)),
  ]);
  placing.close();
  await session.close().catch(() => {});
  if (socketStillOurs(files.socket, socketIno)) await Deno.remove(files.socket).catch(() => {});
  removeRecordIfOurs(files.record);
  lock.close();
  log("stopped");
  return 0;
}

function socketStillOurs(path: string, ino: number | null): boolean {
  try {
    return Deno.statSync(path).ino === ino;
  } catch {
    return false;
  }
}

function removeRecordIfOurs(path: string): void {
  try {
    if (JSON.parse(Deno.readTextFileSync(path)).pid === Deno.pid) Deno.removeSync(path);
  } catch {
    // gone already
  }
}

/**
 * Stops daemons of the same program with another tag: an upgrade's front door talks only to its
 * own version, so an older daemon would only hold memory until its idle timeout.
 */
function replaceOlderDaemons(options: DaemonOptions, log: (message: string) => void): void {
  for (const other of daemonRecords(options.runtimeDir)) {
    if (other.tag === options.tag || other.program !== options.program) continue;
    if (isDaemonProcess(other.pid)) {
      log(`replacing daemon ${other.pid} of tag ${other.tag}`);
      try {
        Deno.kill(other.pid, "SIGTERM");
      } catch {
        // it exited meanwhile
      }
    } else {
      Deno.remove(other.file).catch(() => {});
    }
  }
}

/** A log that never throws: the daemon's own messages, with a time stamp. */
function openLog(path: string): (message: string) => void {
  try {
    if (Deno.statSync(path).size > MAX_LOG_BYTES) Deno.truncateSync(path, 0);
  } catch {
    // no log yet
  }
  return (message) => {
    try {
      Deno.writeTextFileSync(path, `${new Date().toISOString()} ${message}\n`, {
        append: true,
        mode: 0o600,
      });
    } catch {
      // a daemon that cannot log still serves
    }
  };
}
