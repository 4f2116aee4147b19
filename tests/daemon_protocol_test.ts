// The daemon's socket protocol, spoken directly: a request gets its answer, garbage and
// half-sent frames are refused without harming the daemon, another version's client is turned
// away, and lifecycle commands start, report and stop it. (The front door and real builds
// through it are in daemon_test.ts.)

import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeFrame, FRAME, FrameReader } from "../src/daemon/frames.ts";
import { daemonFiles } from "../src/runtime_dir.ts";
import { versionTag } from "../src/version.ts";
import { cleanEnv, liveDaemons, runWarmup, tempDir, waitUntil, WARMUP_BIN } from "./_harness.ts";

const TAG = versionTag(WARMUP_BIN);

/** Starts a daemon in a fresh runtime dir; the returned dir's disposal stops it. */
async function startedDaemon() {
  const dir = await tempDir("cargo-warmup-daemon-");
  const runtimeDir = join(dir.path, "daemon.run");
  const env = { CARGO_WARMUP_RUNTIME_DIR: runtimeDir, CARGO_WARMUP_DIR: join(dir.path, "cache") };
  const started = await runWarmup(["daemon", "start"], { env });
  assert.equal(started.code, 0, started.stderr);
  return { dir, runtimeDir, env, socket: daemonFiles(runtimeDir, TAG).socket };
}

/** Sends `bytes` and collects every frame until the daemon closes the connection. */
async function exchange(socket: string, bytes: Uint8Array): Promise<Array<[string, string]>> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  await conn.write(bytes);
  // Said all it has to say: a cut frame is then cut for the daemon too, not a slow sender.
  await conn.closeWrite();
  const reader = new FrameReader(conn);
  const frames: Array<[string, string]> = [];
  try {
    for (let frame = await reader.next(); frame; frame = await reader.next()) {
      frames.push([frame.type, new TextDecoder().decode(frame.payload)]);
      if (frame.type === FRAME.runRustc || frame.type === FRAME.served) break;
    }
  } finally {
    conn.close();
  }
  return frames;
}

function request(argv: string[], tag = TAG): Uint8Array {
  const env = { ...cleanEnv() };
  return encodeFrame(
    FRAME.request,
    JSON.stringify({ v: 1, tag, argv, cwd: Deno.cwd(), ppid: Deno.pid, env }),
  );
}

Deno.test("daemon: a query rustc must answer itself is handed back with R", async () => {
  const daemon = await startedDaemon();
  await using _ = daemon.dir;
  const frames = await exchange(daemon.socket, request(["rustc", "-vV"]));
  assert.deepEqual(frames, [[FRAME.runRustc, ""]]);
});

Deno.test("daemon: garbage, a cut frame and another version are refused; it keeps serving", async () => {
  const daemon = await startedDaemon();
  await using _ = daemon.dir;
  const [pid] = liveDaemons(daemon.runtimeDir);
  assert.ok(pid, "a daemon runs");

  // Not a frame at all, a request that is not JSON, an unknown frame type, a length past the cap,
  // a frame cut in the middle, and a client of another version.
  const hostile = [
    new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"),
    encodeFrame(FRAME.request, "{not json"),
    encodeFrame("Z", "{}"),
    Uint8Array.from([81, 0xff, 0xff, 0xff, 0xff]),
    encodeFrame(FRAME.request, JSON.stringify({ v: 1 })).subarray(0, 8),
    request(["rustc", "-vV"], "0.0.0-other"),
  ];
  for (const bytes of hostile) {
    assert.deepEqual(await exchange(daemon.socket, bytes), [], "refused without an answer");
  }
  // Still the same daemon, still answering.
  assert.deepEqual(liveDaemons(daemon.runtimeDir), [pid]);
  assert.deepEqual(await exchange(daemon.socket, request(["rustc", "-vV"])), [[
    FRAME.runRustc,
    "",
  ]]);
  const log = await Deno.readTextFile(daemonFiles(daemon.runtimeDir, TAG).log);
  assert.match(log, /refused a request: malformed request/);
  assert.match(log, /refused a request: request for version "0\.0\.0-other"/);
});

Deno.test("daemon: status shows it, stop ends it and removes its socket", async () => {
  const daemon = await startedDaemon();
  await using _ = daemon.dir;
  const status = await runWarmup(["daemon", "status", "--json"], { env: daemon.env });
  const shown = JSON.parse(status.stdout);
  assert.equal(shown.daemons.length, 1);
  assert.equal(shown.daemons[0].running, true);
  assert.equal(shown.daemons[0].current, true);

  const stopped = await runWarmup(["daemon", "stop"], { env: daemon.env });
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.deepEqual(liveDaemons(daemon.runtimeDir), []);
  await assert.rejects(Deno.stat(daemon.socket), Deno.errors.NotFound);
});

Deno.test("daemon: a second start finds the first and starts nothing", async () => {
  const daemon = await startedDaemon();
  await using _ = daemon.dir;
  const again = await runWarmup(["daemon", "start"], { env: daemon.env });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(liveDaemons(daemon.runtimeDir).length, 1);
});

Deno.test("daemon: exits by itself after the idle timeout", async () => {
  const daemon = await startedDaemon();
  await using _ = daemon.dir;
  await runWarmup(["daemon", "stop"], { env: daemon.env });
  const env = { ...daemon.env, CARGO_WARMUP_IDLE_TIMEOUT: "1" };
  assert.equal((await runWarmup(["daemon", "start"], { env })).code, 0);
  assert.equal(liveDaemons(daemon.runtimeDir).length, 1);
  // The deadline only bounds a hang: a daemon that ignored its idle timeout would never go.
  await waitUntil(() => liveDaemons(daemon.runtimeDir).length === 0, {
    what: "the daemon to exit after its 1 s idle timeout",
    everyMs: 100,
  });
});
