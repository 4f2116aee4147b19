/**
 * The wire format between the front door and the daemon: frames of one type byte, a big-endian
 * u32 payload length and the payload, in both directions over one Unix-socket connection.
 *
 * Client to daemon: `Q` the request (JSON: v, tag, argv, cwd, ppid, env); after a miss `o`
 * (rustc's stdout), `e` (its stderr) and `D` (JSON: code, ms). When `M` said "hold", it then
 * waits for any frame (or the end of the stream) before it exits with rustc's code: the daemon
 * puts a build script's replayer in place, or reads the OUT_DIR of a run, first. A build-script run (argv[0] is the
 * real script, `warmup-real-build-script`) speaks the same protocol, the script in rustc's place. Or `W` alone: wait until the
 * daemon has nothing in flight (scripts and tests that read the cache right after a build).
 * Daemon to client: `O`/`E` bytes for the client's stdout/stderr, then one of `X` (served; ASCII
 * exit code), `R` (not cacheable: exec rustc) or `M` (a miss: run rustc, report with o/e/D).
 * @module
 */

/**
 * Frame types, as the byte on the wire. The front door (src/frontdoor/cargo_warmup.rs) names the
 * same bytes `FRAME_<NAME>` (`missStdout`: `FRAME_MISS_STDOUT`); tests/frontdoor_test.ts fails
 * when the two lists differ, so a type added or changed here must be added or changed there.
 */
export const FRAME = {
  request: "Q",
  /** Answered with `X` once no other request is in flight: a build's stores are done. */
  settle: "W",
  missStdout: "o",
  missStderr: "e",
  missDone: "D",
  stdout: "O",
  stderr: "E",
  served: "X",
  runRustc: "R",
  compileMiss: "M",
  /** Answered with `O` (the daemon's state as JSON) and `X`: `cargo-warmup daemon status`. */
  status: "I",
} as const;

/** Requests and rustc output past this are refused: a protocol error, not a build. */
export const MAX_PAYLOAD = 256 * 1024 * 1024;
const HEADER = 5;

/** One frame. */
export interface Frame {
  type: string;
  payload: Uint8Array;
}

/** The frame's bytes on the wire. */
export function encodeFrame(type: string, payload: Uint8Array | string): Uint8Array {
  const body = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const bytes = new Uint8Array(HEADER + body.length);
  bytes[0] = type.charCodeAt(0);
  new DataView(bytes.buffer).setUint32(1, body.length);
  bytes.set(body, HEADER);
  return bytes;
}

/** A malformed stream: an oversize length, or the peer closing inside a frame. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/**
 * Reads frames from `reader` one by one; resolves to undefined at a clean end of stream (the
 * peer closed between frames).
 */
export class FrameReader {
  readonly #reader: { read(p: Uint8Array): Promise<number | null> };
  #buffer = new Uint8Array(0);
  #ended = false;

  constructor(reader: { read(p: Uint8Array): Promise<number | null> }) {
    this.#reader = reader;
  }

  async next(): Promise<Frame | undefined> {
    if (!await this.#fill(HEADER)) {
      if (this.#buffer.length === 0) return undefined;
      throw new FrameError("Connection closed inside a frame header");
    }
    const length = new DataView(this.#buffer.buffer, this.#buffer.byteOffset).getUint32(1);
    if (length > MAX_PAYLOAD) throw new FrameError(`Frame of ${length} bytes is too large`);
    if (!await this.#fill(HEADER + length)) {
      throw new FrameError("Connection closed inside a frame");
    }
    const type = String.fromCharCode(this.#buffer[0]!);
    const payload = this.#buffer.slice(HEADER, HEADER + length);
    this.#buffer = this.#buffer.subarray(HEADER + length);
    return { type, payload };
  }

  /** Reads until `size` bytes are buffered; false when the stream ends first. */
  async #fill(size: number): Promise<boolean> {
    while (this.#buffer.length < size) {
      if (this.#ended) return false;
      const chunk = new Uint8Array(Math.max(64 * 1024, size - this.#buffer.length));
      const read = await this.#reader.read(chunk);
      if (read === null) {
        this.#ended = true;
        return false;
      }
      const grown = new Uint8Array(this.#buffer.length + read);
      grown.set(this.#buffer);
      grown.set(chunk.subarray(0, read), this.#buffer.length);
      this.#buffer = grown;
    }
    return true;
  }
}
