/**
 * Where the daemon and its front door meet: a runtime directory only this user can enter, and in
 * it one socket, lock, record and log per version tag. The front door (src/frontdoor/) computes
 * the same directory; a client and a daemon of different versions never share a socket. Below
 * every layer: the cache keeps its warn-once markers here too.
 * @module
 */

import { join } from "node:path";
import { VERSION } from "./version.ts";

/**
 * The runtime directory: `CARGO_WARMUP_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/cargo-warmup`, else
 * `/tmp/cargo-warmup-<uid>`.
 *
 * @example
 * ```ts
 * import { runtimeDirOf } from "./runtime_dir.ts";
 * console.log(runtimeDirOf({ CARGO_WARMUP_RUNTIME_DIR: "/run/w" })); // "/run/w"
 * ```
 */
export function runtimeDirOf(env: Record<string, string | undefined>): string {
  if (env.CARGO_WARMUP_RUNTIME_DIR) return env.CARGO_WARMUP_RUNTIME_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, "cargo-warmup");
  return `/tmp/cargo-warmup-${Deno.uid() ?? "user"}`;
}

/** The longest path a Unix socket can be bound to on Linux (sun_path less its NUL). */
const MAX_SOCKET_PATH = 107;
/** Length of a version tag (versionTag in version.ts: the version and 12 hex digits). */
const TAG_LENGTH = `${VERSION}-`.length + 12;

/** The files of the daemon with version tag `tag` in `runtimeDir`. */
export function daemonFiles(runtimeDir: string, tag: string) {
  const stem = join(runtimeDir, `daemon-${tag}`);
  return {
    socket: `${stem}.sock`,
    /** Held (flock) by the running daemon: only one per tag. */
    lock: `${stem}.lock`,
    /** `DaemonRecord` of the running daemon. */
    record: `${stem}.json`,
    log: `${stem}.log`,
  };
}

/** What a running daemon says about itself, in its record file. */
export interface DaemonRecord {
  pid: number;
  tag: string;
  /** The program it runs (the launcher or the compiled binary): daemons of others are left alone. */
  program: string;
  startedAt: string;
  idleTimeoutSeconds: number;
}

/**
 * Creates the runtime directory (mode 0700) or checks the one there: owned by this user, closed
 * to everyone else. Throws when it is not safe, so no one else can plant or read a socket.
 */
export function ensurePrivateDir(dir: string): void {
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  const info = Deno.lstatSync(dir);
  const uid = Deno.uid();
  if (!info.isDirectory || (uid !== null && info.uid !== uid) || ((info.mode ?? 0) & 0o077)) {
    throw new Error(
      `Unsafe runtime directory "${dir}": it must be a directory owned by this user with mode 0700`,
    );
  }
}

/**
 * Why `dir` cannot serve as a runtime directory (another owner, open to others, not a
 * directory), or undefined when it can or does not exist yet (it is created private). Creates
 * nothing.
 *
 * @example
 * ```ts
 * import { whyRuntimeDirRefused } from "./runtime_dir.ts";
 * console.log(whyRuntimeDirRefused("/nonexistent/cargo-warmup")); // undefined
 * console.log(whyRuntimeDirRefused("/tmp") !== undefined); // true: open to everyone
 * ```
 */
export function whyRuntimeDirRefused(dir: string): string | undefined {
  // A Unix socket's path has room for 107 bytes (sun_path); a longer one cannot be listened on.
  const socket = daemonFiles(dir, "0".repeat(TAG_LENGTH)).socket;
  if (new TextEncoder().encode(socket).length > MAX_SOCKET_PATH) {
    return `runtime directory "${dir}" is too deep for the daemon's socket ` +
      `(${MAX_SOCKET_PATH} bytes at most)`;
  }
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(dir);
  } catch {
    return undefined;
  }
  const uid = Deno.uid();
  if (!info.isDirectory) return `runtime directory "${dir}" is not a directory`;
  if (uid !== null && info.uid !== uid) {
    return `runtime directory "${dir}" belongs to another user (uid ${info.uid})`;
  }
  const mode = (info.mode ?? 0) & 0o777;
  if (mode & 0o077) {
    return `runtime directory "${dir}" is open to others (mode ${mode.toString(8)}, not 700)`;
  }
  return undefined;
}

/** The records of every daemon in `runtimeDir` (any tag), for status and stop. */
export function daemonRecords(runtimeDir: string): Array<DaemonRecord & { file: string }> {
  const records: Array<DaemonRecord & { file: string }> = [];
  let names: string[];
  try {
    names = [...Deno.readDirSync(runtimeDir)].map((entry) => entry.name);
  } catch {
    return records;
  }
  for (const name of names) {
    if (!/^daemon-.+\.json$/.test(name)) continue;
    const file = join(runtimeDir, name);
    try {
      const record = JSON.parse(Deno.readTextFileSync(file)) as DaemonRecord;
      if (Number.isInteger(record.pid) && typeof record.tag === "string") {
        records.push({ ...record, file });
      }
    } catch {
      // a record half-written or removed meanwhile
    }
  }
  return records;
}

/** Whether `pid` is a live cargo-warmup daemon (not a recycled pid of something else). */
export function isDaemonProcess(pid: number): boolean {
  try {
    const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
    return cmdline.includes("daemon") && cmdline.includes("run");
  } catch {
    return false;
  }
}
