/**
 * A slow network link on loopback, so that a remote cache can be measured as a team across a WAN
 * sees it: a TCP proxy to a target port that delays each direction by a one-way latency and paces
 * it to a bandwidth, and makes a new connection wait one round trip before it carries data, as
 * TCP's handshake does. Bytes are never delivered before their time; they may be a timer tick
 * (about a millisecond) late.
 * @module
 */

/** Options for {@linkcode startSlowLink}. */
export interface SlowLinkOptions {
  /** The port the link leads to, on `targetHostname` (default 127.0.0.1). */
  targetPort: number;
  targetHostname?: string;
  /** Milliseconds every byte takes to cross, in each direction. */
  latencyMs: number;
  /** Bits per second each direction carries; default unlimited. */
  bitsPerSecond?: number;
}

/** A running link: connect to `127.0.0.1:port` to reach the target through it. */
export interface SlowLink extends AsyncDisposable {
  port: number;
  /** Stops accepting and cuts every connection; safe to call twice. */
  close(): Promise<void>;
}

/** Bytes read from one side at a time: small enough to pace, large enough to keep up. */
const CHUNK = 64 * 1024;

/**
 * Starts a slow link to `options.targetPort` on a free loopback port.
 *
 * @example
 * ```ts ignore
 * await using redis = await startRedis();
 * await using link = startSlowLink({ targetPort: redis.port, latencyMs: 25, bitsPerSecond: 500e6 });
 * const url = redis.url.replace(`:${redis.port}/`, `:${link.port}/`);
 * ```
 */
export function startSlowLink(options: SlowLinkOptions): SlowLink {
  if (!(options.latencyMs >= 0)) {
    throw new RangeError(`Invalid latency "${options.latencyMs}": expected milliseconds >= 0`);
  }
  if (options.bitsPerSecond !== undefined && !(options.bitsPerSecond > 0)) {
    throw new RangeError(`Invalid bandwidth "${options.bitsPerSecond}": expected bits/s > 0`);
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const client of listener) {
      const handler = carry(client, options, open);
      handlers.add(handler);
      handler.finally(() => handlers.delete(handler));
    }
  })().catch(() => {
    // The listener was closed.
  });
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      listener.close();
      await accepting;
      for (const conn of open) closeQuietly(conn);
      await Promise.all(handlers);
    })();
  return { port: (listener.addr as Deno.NetAddr).port, close, [Symbol.asyncDispose]: close };
}

/** Carries one connection both ways until both sides are done, or either fails. */
async function carry(
  client: Deno.Conn,
  options: SlowLinkOptions,
  open: Set<Deno.Conn>,
): Promise<void> {
  const openedAt = performance.now();
  open.add(client);
  let server: Deno.Conn | undefined;
  try {
    server = await Deno.connect({
      hostname: options.targetHostname ?? "127.0.0.1",
      port: options.targetPort,
    });
    open.add(server);
    // The client's first bytes leave once the handshake's round trip is over.
    const outbound = pace(client, server, options, openedAt + 2 * options.latencyMs);
    const inbound = pace(server, client, options, openedAt);
    const [sent, received] = await Promise.allSettled([outbound, inbound]);
    if (sent.status === "rejected" || received.status === "rejected") throw new Error("cut");
  } catch {
    // A side that failed or went away: the other one is cut too.
  } finally {
    for (const conn of [client, server]) {
      if (conn) {
        closeQuietly(conn);
        open.delete(conn);
      }
    }
  }
}

/** A chunk on its way, due at `at` (performance.now() time). */
interface InFlight {
  bytes: Uint8Array;
  at: number;
}

/**
 * Moves bytes from `from` to `to` through the link: each chunk leaves when the link is free (not
 * before `firstDeparture`), takes its size over the bandwidth to send, and arrives the latency
 * later. Reading stops while twice a round trip's bandwidth-delay product (at least 256 KiB) is
 * on its way,
 * as a TCP window would stop the sender. Ends by closing `to` for writing once `from` ends.
 */
async function pace(
  from: Deno.Conn,
  to: Deno.Conn,
  options: SlowLinkOptions,
  firstDeparture: number,
): Promise<void> {
  const bytesPerMs = (options.bitsPerSecond ?? Infinity) / 8 / 1000;
  const window = Math.min(
    64 * 1024 * 1024,
    Math.max(256 * 1024, 2 * 2 * bytesPerMs * options.latencyMs || 0),
  );
  const queue: InFlight[] = [];
  let queuedBytes = 0;
  let linkFreeAt = firstDeparture;
  let readerDone = false;
  let wakeWriter: (() => void) | undefined;
  let wakeReader: (() => void) | undefined;

  const deliver = async () => {
    while (true) {
      const next = queue[0];
      if (next === undefined) {
        if (readerDone) return;
        await new Promise<void>((resolve) => wakeWriter = resolve);
        continue;
      }
      const wait = next.at - performance.now();
      if (wait > 0) {
        await new Promise((resolve) => setTimeout(resolve, Math.ceil(wait)));
        continue;
      }
      // Everything due by now goes in one write: a timer tick can cover many small chunks.
      const due: Uint8Array[] = [];
      for (const now = performance.now(); queue[0] && queue[0].at <= now;) {
        due.push(queue.shift()!.bytes);
      }
      const bytes = concat(due);
      await writeAll(to, bytes);
      queuedBytes -= bytes.length;
      if (queuedBytes <= window / 2) wakeReader?.();
    }
  };
  const delivering = deliver();
  // Awaited below; a failed write must not be an unhandled rejection meanwhile.
  delivering.catch(() => {});

  const buffer = new Uint8Array(CHUNK);
  try {
    while (true) {
      const read = await Promise.race([from.read(buffer), delivering.then(() => null)]);
      if (read === null) break;
      const now = performance.now();
      const departs = Math.max(now, linkFreeAt);
      linkFreeAt = departs + read / bytesPerMs;
      queue.push({ bytes: buffer.slice(0, read), at: linkFreeAt + options.latencyMs });
      queuedBytes += read;
      wakeWriter?.();
      while (queuedBytes > window) {
        await Promise.race([new Promise<void>((resolve) => wakeReader = resolve), delivering]);
      }
    }
  } finally {
    readerDone = true;
    wakeWriter?.();
  }
  await delivering;
  await to.closeWrite().catch(() => {});
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
