// Unit tests of one front-door connection (src/daemon/connection.ts) over a real Unix socket,
// without a front door: the control requests (settle, status), every refused request (logged,
// answered with nothing), a call the compiler runs itself, and the warnings kept for a build's
// next call.

import assert from "node:assert/strict";
import { join } from "node:path";
import { DeferredWarnings, serveConnection } from "../src/daemon/connection.ts";
import { encodeFrame, FRAME, type Frame, FrameReader } from "../src/daemon/frames.ts";
import { CacheSession } from "../src/cache/session.ts";
import { Placing } from "../src/place/placing.ts";
import { tempDir } from "./_fixtures.ts";

const TAG = "test-tag";

/** A request as the front door sends it (see request_json in cargo_warmup.rs). */
function wireRequest(fields: Record<string, unknown> = {}): Uint8Array {
  const request = { v: 1, tag: TAG, argv: ["rustc", "-vV"], cwd: "/", ppid: 1, env: {} };
  return encodeFrame(FRAME.request, JSON.stringify({ ...request, ...fields }));
}

/** What the daemon did with the bytes a client sent: the frames it answered and what it logged. */
interface Served {
  frames: Frame[];
  logged: string[];
  settled: number;
}

/**
 * Serves one connection whose client sends `sent` and then nothing (or, `hangUp`, closes its
 * side), and reads what the daemon answers to its end.
 */
async function serve(sent: Uint8Array, hangUp = false): Promise<Served> {
  await using dir = await tempDir("cargo-warmup-connection-");
  const path = join(dir.path, "socket");
  using listener = Deno.listen({ transport: "unix", path });
  const logged: string[] = [];
  let settled = 0;
  const control = {
    settled: () => Promise.resolve(void settled++),
    status: () => Promise.resolve({ pid: 42, requests: 7 }),
  };
  const session = new CacheSession();
  const placing = new Placing();
  const serving = listener.accept().then((conn) =>
    serveConnection(
      conn,
      session,
      placing,
      TAG,
      (line) => logged.push(line),
      control,
      new DeferredWarnings(),
    )
  );
  const client = await Deno.connect({ transport: "unix", path });
  const frames: Frame[] = [];
  try {
    await client.write(sent);
    if (hangUp) await client.closeWrite();
    const reader = new FrameReader(client);
    for (let frame = await reader.next(); frame; frame = await reader.next()) frames.push(frame);
  } finally {
    client.close();
    await serving;
    placing.close();
    await session.close();
  }
  return { frames, logged, settled };
}

const text = (frame: Frame | undefined) => new TextDecoder().decode(frame?.payload);

Deno.test("a settle request waits for the daemon to settle, then answers X 0", async () => {
  const { frames, settled, logged } = await serve(encodeFrame(FRAME.settle, ""));
  assert.equal(settled, 1);
  assert.deepEqual(frames.map((frame) => [frame.type, text(frame)]), [[FRAME.served, "0"]]);
  assert.deepEqual(logged, []);
});

Deno.test("a status request answers the daemon's state as JSON, then X 0", async () => {
  const { frames } = await serve(encodeFrame(FRAME.status, ""));
  assert.deepEqual(frames.map((frame) => frame.type), [FRAME.stdout, FRAME.served]);
  assert.deepEqual(JSON.parse(text(frames[0])), { pid: 42, requests: 7 });
});

Deno.test("a refused request is logged with why, and answered with nothing", async () => {
  const notUtf8 = encodeFrame(FRAME.request, new Uint8Array([0x7b, 0xff, 0x7d]));
  // The front door writes one frame and waits; the last two hang up before a whole frame.
  const cases: [string, Uint8Array, RegExp, boolean?][] = [
    [
      "another version",
      wireRequest({ tag: "0.0.0-other" }),
      /^request for version "0\.0\.0-other", this daemon is "test-tag"$/,
    ],
    ["not JSON", encodeFrame(FRAME.request, "{argv"), /^malformed request: /],
    ["not UTF-8", notUtf8, /^malformed request: /],
    ["no argv", wireRequest({ argv: [] }), /^malformed request: missing or mistyped fields$/],
    ["a number in argv", wireRequest({ argv: ["rustc", 1] }), /missing or mistyped fields$/],
    ["an env value not text", wireRequest({ env: { A: 1 } }), /missing or mistyped fields$/],
    ["a ppid not a number", wireRequest({ ppid: "1" }), /missing or mistyped fields$/],
    ["a wire version 2", wireRequest({ v: 2 }), /missing or mistyped fields$/],
    ["a frame of the wrong type", encodeFrame(FRAME.stdout, "x"), /^unexpected frame type "O"$/],
    ["nothing sent", new Uint8Array(0), /^no request frame$/, true],
    ["half a frame", wireRequest().subarray(0, 3), /inside a frame header/, true],
  ];
  for (const [what, sent, why, hangUp] of cases) {
    const { frames, logged } = await serve(sent, hangUp);
    assert.deepEqual(frames, [], what);
    assert.equal(logged.length, 1, `${what}: ${logged}`);
    const [line] = logged as [string];
    assert.ok(line.startsWith("refused a request: "), `${what}: ${line}`);
    assert.match(line.slice("refused a request: ".length), why, what);
  }
});

Deno.test("a call the cache has no part in is handed back to the client, once", async () => {
  // `rustc -vV` is a query, not a compile: the client runs it itself, told so with R and nothing
  // after (no X: the client is gone to run rustc).
  const { frames, logged } = await serve(wireRequest());
  assert.deepEqual(frames.map((frame) => frame.type), [FRAME.runRustc]);
  assert.deepEqual(logged, []);
});

Deno.test("warnings kept for a build go to its next call only, once", () => {
  const deferred = new DeferredWarnings();
  const bytes = (text: string) => new TextEncoder().encode(text);
  deferred.keep("build-1", bytes("first"));
  deferred.keep("build-1", bytes("second"));
  deferred.keep("build-2", bytes("other"));
  assert.deepEqual(deferred.take("build-1").map((b) => new TextDecoder().decode(b)), [
    "first",
    "second",
  ]);
  assert.deepEqual(deferred.take("build-1"), [], "taken once");
  assert.equal(deferred.take("build-2").length, 1);
  // Builds that never call again do not keep it growing.
  for (let build = 0; build < 300; build++) deferred.keep(`gone-${build}`, bytes("x"));
  assert.ok(deferred.take("gone-0").length === 0, "the oldest builds' warnings were dropped");
});
