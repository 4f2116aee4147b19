/**
 * Waiting for the daemon to finish what builds left it (stores after misses), so that a script
 * or a test reading the cache right after `cargo build` sees everything the build stored.
 * @module
 */

import { encodeFrame, FRAME, FrameReader } from "./frames.ts";
import { daemonFiles, daemonRecords, isDaemonProcess } from "../runtime_dir.ts";
import { afterTimeout } from "../timeout.ts";

/**
 * Asks every live daemon in `runtimeDir` to answer once nothing else is in flight; resolves when
 * all have answered, vanished, or `timeoutMs` has passed. Never throws.
 */
export async function settleDaemons(runtimeDir: string, timeoutMs = 30_000): Promise<void> {
  const sockets = daemonRecords(runtimeDir)
    .filter((record) => isDaemonProcess(record.pid))
    .map((record) => daemonFiles(runtimeDir, record.tag).socket);
  await Promise.all(sockets.map((socket) => settleOne(socket, timeoutMs)));
}

async function settleOne(socket: string, timeoutMs: number): Promise<void> {
  let conn: Deno.Conn | undefined;
  const cancel = afterTimeout(timeoutMs, () => conn?.close());
  try {
    conn = await Deno.connect({ transport: "unix", path: socket });
    await conn.write(encodeFrame(FRAME.settle, ""));
    await new FrameReader(conn).next();
  } catch {
    // no daemon there after all, or it went away: nothing in flight either way
  } finally {
    cancel();
    try {
      conn?.close();
    } catch {
      // closed by the timer
    }
  }
}
