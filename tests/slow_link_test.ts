// The slow link (tests/_slow_link.ts) against a loopback server in this process: every check is a
// lower bound on when bytes arrive (the link may be late, never early), so none can pass or fail
// by a slow machine; and the bytes arrive whole and in order.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startSlowLink } from "./_slow_link.ts";
import { waitUntil } from "./_wait.ts";

/** A byte and when it reached the other side (performance.now()). */
interface Arrival {
  at: number;
  /** Bytes received so far, including this read's. */
  total: number;
}

/**
 * A server on loopback that records when each read arrives, and answers each connection with
 * `reply(received so far)` whenever it returns bytes.
 */
function recordingServer(reply: (received: Uint8Array) => Uint8Array | undefined) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const arrivals: Arrival[] = [];
  const received: Uint8Array[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buffer = new Uint8Array(64 * 1024);
        let total = 0;
        for (let read; (read = await conn.read(buffer)) !== null;) {
          total += read;
          arrivals.push({ at: performance.now(), total });
          received.push(buffer.slice(0, read));
          const answer = reply(concat(received));
          if (answer) await writeAll(conn, answer);
        }
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    arrivals,
    received: () => concat(received),
    async close() {
      listener.close();
      await serving;
    },
  };
}

Deno.test("slow link: a new connection waits a round trip, then each byte the latency", async () => {
  const latencyMs = 150;
  let answered = false;
  const server = recordingServer(() => {
    if (answered) return undefined;
    answered = true;
    return new TextEncoder().encode("pong");
  });
  const link = startSlowLink({ targetPort: server.port, latencyMs });
  try {
    const connectedAt = performance.now();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: link.port });
    await writeAll(conn, new TextEncoder().encode("ping"));
    const reply = new Uint8Array(4);
    assert.equal(await conn.read(reply), 4);
    const repliedAt = performance.now();
    assert.equal(new TextDecoder().decode(reply), "pong");

    // Handshake (a round trip), then the request's way there.
    const [first] = server.arrivals;
    assert.ok(first !== undefined);
    assert.ok(
      first.at - connectedAt >= 3 * latencyMs,
      `the request arrived ${first.at - connectedAt} ms after connecting`,
    );
    // The answer's way back.
    assert.ok(
      repliedAt - first.at >= latencyMs,
      `the answer arrived ${repliedAt - first.at} ms after it was sent`,
    );

    // On an open connection, only the latency.
    const sentAt = performance.now();
    await writeAll(conn, new TextEncoder().encode("again"));
    await waitUntil(() => server.arrivals.length >= 2, { what: "the second write", everyMs: 5 });
    const second = server.arrivals[1]!;
    assert.ok(second.at - sentAt >= latencyMs, `${second.at - sentAt} ms`);
    assert.equal(new TextDecoder().decode(server.received()), "pingagain");
    conn.close();
  } finally {
    await link.close();
    await server.close();
  }
});

Deno.test("slow link: no more bytes arrive than the bandwidth carried, each way, in order", async () => {
  const latencyMs = 20;
  const bitsPerSecond = 8_000_000; // 1000 bytes per ms
  const bytesPerMs = bitsPerSecond / 8 / 1000;
  const upload = new Uint8Array(randomBytes(400 * 1024));
  const download = new Uint8Array(randomBytes(300 * 1024));
  let answeredAt: number | undefined;
  const server = recordingServer((received) => {
    if (answeredAt !== undefined || received.length < upload.length) return undefined;
    answeredAt = performance.now();
    return download;
  });
  const link = startSlowLink({ targetPort: server.port, latencyMs, bitsPerSecond });
  try {
    const connectedAt = performance.now();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: link.port });
    await writeAll(conn, upload);
    const downloaded: Arrival[] = [];
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(64 * 1024);
    for (let total = 0; total < download.length;) {
      const read = await conn.read(buffer);
      assert.ok(read !== null, `the link closed after ${total} bytes`);
      total += read;
      downloaded.push({ at: performance.now(), total });
      chunks.push(buffer.slice(0, read));
    }
    conn.close();

    // Upload: from the end of the handshake, at most bandwidth x time, plus nothing for free.
    assertPaced(server.arrivals, connectedAt + 3 * latencyMs, bytesPerMs, "upload");
    assert.ok(Buffer.compare(server.received(), upload) === 0, "the upload arrived altered");
    // Download: the same pace from when the server sent it.
    assertPaced(downloaded, answeredAt! + latencyMs, bytesPerMs, "download");
    assert.ok(Buffer.compare(concat(chunks), download) === 0, "the download arrived altered");
  } finally {
    await link.close();
    await server.close();
  }
});

Deno.test("slow link: a target that is not there closes the client's connection", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const link = startSlowLink({ targetPort: port, latencyMs: 1 });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: link.port });
    const read = await conn.read(new Uint8Array(1)).catch(() => null);
    assert.equal(read, null);
    conn.close();
  } finally {
    await link.close();
  }
});

Deno.test("slow link: bad settings are RangeErrors", () => {
  assert.throws(() => startSlowLink({ targetPort: 1, latencyMs: -1 }), RangeError);
  assert.throws(() => startSlowLink({ targetPort: 1, latencyMs: 1, bitsPerSecond: 0 }), RangeError);
});

/**
 * Each arrival's running total is at most what the link could carry between `start` (when the
 * first byte could leave, plus the latency) and its arrival.
 */
function assertPaced(arrivals: Arrival[], start: number, bytesPerMs: number, what: string): void {
  assert.ok(arrivals.length > 0, `no ${what} arrived`);
  for (const { at, total } of arrivals) {
    const carried = (at - start) * bytesPerMs;
    assert.ok(
      total <= carried + 1,
      `${what}: ${total} bytes arrived ${(at - start).toFixed(1)} ms in; ` +
        `the link carries ${Math.max(0, carried).toFixed(0)}`,
    );
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
