/**
 * Asking a running daemon what it holds (`cargo-warmup daemon status`): the caches it has open,
 * its memory and open files, the requests it served. The answer is the daemon's own JSON.
 * @module
 */

import { encodeFrame, FRAME, FrameReader } from "./frames.ts";
import type { DaemonStatus } from "./server.ts";
import { afterTimeout } from "../timeout.ts";

/**
 * The state of the daemon listening on `socket`, or undefined when none answers within
 * `timeoutMs`. Never throws.
 */
export async function queryDaemonStatus(
  socket: string,
  timeoutMs = 10_000,
): Promise<DaemonStatus | undefined> {
  let conn: Deno.Conn | undefined;
  const cancel = afterTimeout(timeoutMs, () => conn?.close());
  try {
    conn = await Deno.connect({ transport: "unix", path: socket });
    await conn.write(encodeFrame(FRAME.status, ""));
    const reader = new FrameReader(conn);
    const frame = await reader.next();
    if (frame?.type !== FRAME.stdout) return undefined;
    return JSON.parse(new TextDecoder().decode(frame.payload)) as DaemonStatus;
  } catch {
    return undefined;
  } finally {
    cancel();
    try {
      conn?.close();
    } catch {
      // closed by the timer
    }
  }
}
