/**
 * `cargo-warmup daemon run|start|stop|status`: the warm-cache daemon's lifecycle by hand.
 * Builds start the daemon by themselves; these are for scripts, CI and curiosity.
 * @module
 */

import { loadConfig } from "../config/config.ts";
import { runDaemon } from "../daemon/server.ts";
import {
  daemonFiles,
  daemonRecords,
  ensurePrivateDir,
  isDaemonProcess,
  runtimeDirOf,
} from "../runtime_dir.ts";
import { programPath, versionTag } from "../version.ts";
import { queryDaemonStatus } from "../daemon/query_status.ts";
import { formatBytes } from "../units.ts";
import { parseFlags } from "./parse_flags.ts";
import { UsageError } from "./usage_error.ts";
import { afterTimeout } from "../timeout.ts";

export const DAEMON_HELP = `Manage the warm-cache daemon that serves builds.

Usage: cargo-warmup daemon <run|start|stop|status> [options]

  run      Serve in the foreground (what a build starts, detached)
  start    Start the daemon in the background unless it runs; wait until it answers
  stop     Stop this version's daemon (--all: every cargo-warmup daemon of this user)
  status   Show the daemons of this user and what each holds: caches open, memory,
           open files, requests served, uptime (--json)

Options:
  --tag TAG            Version tag to serve (run; default: this program's)
  --runtime-dir DIR    Where the socket lives (default: CARGO_WARMUP_RUNTIME_DIR,
                       else $XDG_RUNTIME_DIR/cargo-warmup, else /tmp/cargo-warmup-<uid>)
  -h, --help           Print this help

A build never waits for the daemon: the first call that finds none starts it and serves itself.
CARGO_WARMUP_DAEMON=0 makes every call serve itself. The daemon exits after
[warmup] idle-timeout seconds without a request (default 600).`;

/** Runs `daemon …`; resolves to the exit code. */
export async function runDaemonCommand(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const { values } = parseFlags(`daemon ${action ?? ""}`.trim(), rest, {
    tag: { type: "string" },
    "runtime-dir": { type: "string" },
    all: { type: "boolean" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help || action === "--help" || action === "-h") {
    console.log(DAEMON_HELP);
    return 0;
  }
  const runtimeDir = values["runtime-dir"] ?? runtimeDirOf(Deno.env.toObject());
  const tag = values.tag ?? versionTag();
  switch (action) {
    case "run": {
      const { config } = await loadConfig();
      return await runDaemon({
        tag,
        runtimeDir,
        program: programPath(),
        idleTimeoutSeconds: config.idleTimeoutSeconds,
      });
    }
    case "start":
      return await startDaemon(runtimeDir, tag);
    case "stop":
      return await stopDaemons(runtimeDir, values.all ? undefined : tag);
    case "status":
      return await showStatus(runtimeDir, tag, values.json ?? false);
    default:
      throw new UsageError(
        action === undefined
          ? "daemon: expected one of run, start, stop, status"
          : `daemon: unknown action "${action}"`,
      );
  }
}

async function startDaemon(runtimeDir: string, tag: string): Promise<number> {
  ensurePrivateDir(runtimeDir);
  const socket = daemonFiles(runtimeDir, tag).socket;
  if (await answers(socket)) return 0;
  const child = new Deno.Command(programPath(), {
    args: ["daemon", "run", "--tag", tag, "--runtime-dir", runtimeDir],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    env: { CARGO_WARMUP_IN_PROCESS: "1" },
  }).spawn();
  child.unref();
  for (let waited = 0; waited < 10_000; waited += 50) {
    if (await answers(socket)) return 0;
    await new Promise<void>((resolve) => afterTimeout(50, resolve));
  }
  console.error(`error: the daemon did not start; see ${daemonFiles(runtimeDir, tag).log}`);
  return 1;
}

/** Whether a daemon accepts connections on `socket`. */
async function answers(socket: string): Promise<boolean> {
  try {
    const conn = await Deno.connect({ transport: "unix", path: socket });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** Stops the daemons of `tag` (every tag when undefined) and waits for them to exit. */
async function stopDaemons(runtimeDir: string, tag: string | undefined): Promise<number> {
  const running = daemonRecords(runtimeDir).filter((record) =>
    (tag === undefined || record.tag === tag) && isDaemonProcess(record.pid)
  );
  for (const record of running) {
    try {
      Deno.kill(record.pid, "SIGTERM");
    } catch {
      // exited meanwhile
    }
  }
  for (let waited = 0; waited < 35_000; waited += 50) {
    if (running.every((record) => !isDaemonProcess(record.pid))) {
      console.log(`stopped ${running.length} daemon(s)`);
      return 0;
    }
    await new Promise<void>((resolve) => afterTimeout(50, resolve));
  }
  console.error("error: a daemon did not stop within 35 s");
  return 1;
}

async function showStatus(runtimeDir: string, tag: string, json: boolean): Promise<number> {
  const daemons = [];
  for (const record of daemonRecords(runtimeDir)) {
    const running = isDaemonProcess(record.pid);
    // What a running daemon holds, in its own words: caches open, memory, files, requests.
    const holds = running
      ? await queryDaemonStatus(daemonFiles(runtimeDir, record.tag).socket, 5_000)
      : undefined;
    daemons.push({
      pid: record.pid,
      tag: record.tag,
      current: record.tag === tag,
      running,
      program: record.program,
      startedAt: record.startedAt,
      idleTimeoutSeconds: record.idleTimeoutSeconds,
      ...(holds ? { holds } : {}),
    });
  }
  if (json) {
    console.log(JSON.stringify({ runtimeDir, tag, daemons }, null, 2));
    return 0;
  }
  if (daemons.length === 0) console.log(`no daemon in ${runtimeDir}`);
  for (const daemon of daemons) {
    console.log(
      `daemon pid ${daemon.pid} ${daemon.running ? "running" : "gone"} since ${daemon.startedAt}` +
        `, tag ${daemon.tag}${daemon.current ? "" : " (another version)"}` +
        `, idle timeout ${daemon.idleTimeoutSeconds} s`,
    );
    const holds = daemon.holds;
    if (holds === undefined) continue;
    console.log(
      `  up ${holds.uptimeSeconds} s, ${holds.requests} requests (${holds.inFlight} in flight), ` +
        `RSS ${formatBytes(holds.rssBytes)} (heap ${formatBytes(holds.heapUsedBytes)}), ` +
        `${holds.openFiles ?? "?"} open files` +
        (holds.deletedFiles.length ? `, ${holds.deletedFiles.length} of them deleted` : ""),
    );
    for (const cache of holds.caches) {
      console.log(
        `  cache ${cache.location}: ${cache.active} calls now, idle ${cache.idleSeconds} s` +
          (cache.retired ? " (replaced on disk, closing)" : ""),
      );
    }
  }
  return 0;
}
