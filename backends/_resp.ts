/**
 * A minimal Redis client speaking RESP2 over one `Deno.connect` socket: pipelined commands,
 * binary-safe values, short timeouts. Small and without dependencies: a call served in a process
 * of its own (no daemon yet, `CARGO_WARMUP_DAEMON=0`) and a manager command load it afresh, and
 * its outages must look like every other store's (one warning, then local disk only).
 * @module
 */

import { errorMessage } from "../src/error_message.ts";
import { afterTimeout } from "../src/timeout.ts";

/** A reply: simple string, integer, bulk bytes, array, or `null` for a nil bulk or array. */
export type RespValue = string | number | Uint8Array | null | RespValue[];

/** An error reply sent by the server (`-ERR ...`, `-WRONGPASS ...`). */
export class RespServerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RespServerError";
  }
}

/** The connection failed, timed out or was closed before the reply arrived. */
export class RespConnectionError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RespConnectionError";
  }
}

/** Options for {@linkcode RespConnection.open}. */
export interface RespConnectOptions {
  hostname: string;
  port: number;
  tls?: boolean;
  /** Milliseconds allowed for the TCP (and TLS) connection. */
  connectTimeoutMs: number;
  /** Milliseconds a pending command may wait without any byte arriving. */
  idleTimeoutMs: number;
}

type Pending = { resolve: (value: RespValue) => void; reject: (error: Error) => void };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CR = 13;

/** One connection; replies are matched to commands in order, as RESP guarantees. */
export class RespConnection {
  #conn: Deno.Conn;
  #options: RespConnectOptions;
  #pending: Pending[] = [];
  #buffer = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #closed: Error | undefined;
  #cancelIdleTimer: (() => void) | undefined;
  #writing: Promise<void> = Promise.resolve();

  private constructor(conn: Deno.Conn, options: RespConnectOptions) {
    this.#conn = conn;
    this.#options = options;
    this.#conn.unref();
    this.#readLoop();
  }

  /**
   * Connects, failing with {@linkcode RespConnectionError} after `connectTimeoutMs`.
   *
   * @example
   * ```ts ignore
   * const connection = await RespConnection.open({
   *   hostname: "127.0.0.1", port: 6379, connectTimeoutMs: 1500, idleTimeoutMs: 10000,
   * });
   * console.log(await connection.command(["PING"])); // "PONG"
   * connection.close();
   * ```
   */
  static async open(options: RespConnectOptions): Promise<RespConnection> {
    const connecting = options.tls
      ? Deno.connectTls({ hostname: options.hostname, port: options.port })
      : Deno.connect({ hostname: options.hostname, port: options.port });
    let cancelTimeout = () => {};
    const timeout = new Promise<never>((_, reject) => {
      cancelTimeout = afterTimeout(options.connectTimeoutMs, () => {
        reject(new RespConnectionError(`no connection within ${options.connectTimeoutMs} ms`));
      });
    });
    try {
      const conn = await Promise.race([connecting, timeout]);
      return new RespConnection(conn, options);
    } catch (error) {
      // A connection that completes after the timeout must not keep the process alive.
      connecting.then((late) => late.close(), () => {});
      if (error instanceof RespConnectionError) throw error;
      throw new RespConnectionError(describeNetworkError(error), { cause: error });
    } finally {
      cancelTimeout();
    }
  }

  /** Sends one command; several calls without awaiting in between are pipelined. */
  command(args: (string | number | Uint8Array)[]): Promise<RespValue> {
    if (this.#closed) return Promise.reject(this.#closed);
    const promise = new Promise<RespValue>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
    });
    // An idle connection must not keep the process alive; a pending command must.
    this.#conn.ref();
    this.#armIdleTimer();
    const frame = encodeCommand(args);
    this.#writing = this.#writing.then(() => this.#writeAll(frame)).catch((error) => {
      this.#fail(new RespConnectionError(describeNetworkError(error), { cause: error }));
    });
    return promise;
  }

  /** Closes the socket; pending commands reject. */
  /** Whether the connection is closed (by us, the server, a failure or the idle timeout). */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  close(): void {
    this.#fail(new RespConnectionError("connection closed"));
  }

  async #writeAll(frame: Uint8Array): Promise<void> {
    let written = 0;
    while (written < frame.length) written += await this.#conn.write(frame.subarray(written));
  }

  async #readLoop(): Promise<void> {
    try {
      while (!this.#closed) {
        if (this.#end === this.#buffer.length) this.#makeRoom();
        const count = await this.#conn.read(this.#buffer.subarray(this.#end));
        if (count === null) throw new RespConnectionError("connection closed by the server");
        this.#end += count;
        this.#armIdleTimer();
        this.#drainReplies();
      }
    } catch (error) {
      if (this.#closed) return;
      this.#fail(
        error instanceof RespConnectionError
          ? error
          : new RespConnectionError(describeNetworkError(error), { cause: error }),
      );
    }
  }

  #drainReplies(): void {
    while (this.#pending.length > 0) {
      const parsed = parseReply(this.#buffer, this.#start, this.#end);
      if (parsed === undefined) break;
      this.#start = parsed.next;
      const pending = this.#pending.shift()!;
      if (parsed.value instanceof RespServerError) pending.reject(parsed.value);
      else pending.resolve(parsed.value);
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#pending.length === 0) {
      this.#disarmIdleTimer();
      this.#conn.unref();
    }
  }

  /** Moves unread bytes to the front, growing the buffer when a large reply needs it. */
  #makeRoom(): void {
    const unread = this.#end - this.#start;
    if (this.#start > 0 && unread * 2 <= this.#buffer.length) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
    } else {
      const next = new Uint8Array(this.#buffer.length * 2);
      next.set(this.#buffer.subarray(this.#start, this.#end), 0);
      this.#buffer = next;
    }
    this.#start = 0;
    this.#end = unread;
  }

  #armIdleTimer(): void {
    this.#disarmIdleTimer();
    if (this.#pending.length === 0) return;
    this.#cancelIdleTimer = afterTimeout(this.#options.idleTimeoutMs, () => {
      this.#fail(new RespConnectionError(`no answer within ${this.#options.idleTimeoutMs} ms`));
    });
  }

  #disarmIdleTimer(): void {
    this.#cancelIdleTimer?.();
    this.#cancelIdleTimer = undefined;
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#closed = error;
    this.#disarmIdleTimer();
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer.
    }
    for (const pending of this.#pending.splice(0)) pending.reject(error);
  }
}

function encodeCommand(args: (string | number | Uint8Array)[]): Uint8Array {
  const parts = args.map((arg) => arg instanceof Uint8Array ? arg : encoder.encode(String(arg)));
  let size = 0;
  const headers = parts.map((part) => {
    const header = encoder.encode(`$${part.length}\r\n`);
    size += header.length + part.length + 2;
    return header;
  });
  const head = encoder.encode(`*${parts.length}\r\n`);
  const frame = new Uint8Array(head.length + size);
  frame.set(head, 0);
  let offset = head.length;
  for (let i = 0; i < parts.length; i++) {
    frame.set(headers[i]!, offset);
    offset += headers[i]!.length;
    frame.set(parts[i]!, offset);
    offset += parts[i]!.length;
    frame[offset++] = 13;
    frame[offset++] = 10;
  }
  return frame;
}

type Parsed = { value: RespValue | RespServerError; next: number };

/** Parses one reply from `buffer[start, end)`; `undefined` when more bytes are needed. */
function parseReply(buffer: Uint8Array, start: number, end: number): Parsed | undefined {
  const lineEnd = findLineEnd(buffer, start + 1, end);
  if (lineEnd < 0) return undefined;
  const line = decoder.decode(buffer.subarray(start + 1, lineEnd));
  const afterLine = lineEnd + 2;
  switch (buffer[start]) {
    case 0x2b: // '+'
      return { value: line, next: afterLine };
    case 0x2d: // '-'
      return { value: new RespServerError(line), next: afterLine };
    case 0x3a: // ':'
      return { value: Number(line), next: afterLine };
    case 0x24: { // '$'
      const length = Number(line);
      if (length < 0) return { value: null, next: afterLine };
      if (afterLine + length + 2 > end) return undefined;
      // A copy, so the value survives the buffer being reused for the next replies.
      return { value: buffer.slice(afterLine, afterLine + length), next: afterLine + length + 2 };
    }
    case 0x2a: { // '*'
      const count = Number(line);
      if (count < 0) return { value: null, next: afterLine };
      const items: RespValue[] = [];
      let next = afterLine;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, next, end);
        if (item === undefined) return undefined;
        if (item.value instanceof RespServerError) throw item.value;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new RespConnectionError(`unexpected reply byte ${buffer[start]}`);
  }
}

function findLineEnd(buffer: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 1 < end; i++) {
    if (buffer[i] === CR && buffer[i + 1] === 10) return i;
  }
  return -1;
}

function describeNetworkError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset";
  return errorMessage(error);
}

/** Decodes a bulk or simple string reply to text; other replies become `undefined`. */
export function replyText(value: RespValue): string | undefined {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return decoder.decode(value);
  return undefined;
}
