/**
 * Warm-ups that run on their own: `init --background` detaches a child with a log in the cache
 * dir, one warm-up at a time holds the lock, and {@linkcode warmupStatusLines} tells `status`
 * what is running and whether the cache was filled by another rustc.
 * @module
 */

import { join } from "node:path";
import { isRunning } from "../processes.ts";
import { openIndex, parseIndexTime } from "../index/index_db.ts";
import { formatDuration } from "../units.ts";
import { RECENT_DAYS } from "./rewarm.ts";
import { progressLine, readWarmState, statePath, type WarmState } from "./progress.ts";
import { warmDir } from "./warm_dir.ts";
import { queryRustcVersion } from "../rustc_version.ts";
import { warmForLine } from "./warm_for.ts";
import { afterTimeout } from "../timeout.ts";

/** Environment variable telling a detached child where its log is (and that it is the child). */
export const BACKGROUND_LOG_ENV = "CARGO_WARMUP_INIT_LOG";

/**
 * Starts `init argv` detached from this process and its terminal, output to a new log in the
 * cache dir; writes the initial state so `status` shows it at once. Returns the child's pid and
 * log path.
 */
export async function spawnBackground(
  exe: string,
  argv: string[],
  cacheDir: string,
  env: Record<string, string>,
  writeState = true,
): Promise<{ pid: number; log: string }> {
  const dir = warmDir(cacheDir);
  await Deno.mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
  const log = join(dir, `init-${stamp}.log`);
  await Deno.writeTextFile(log, `cargo-warmup init ${argv.join(" ")}\n`);
  // setsid puts the child in a session of its own, so closing the terminal or the hook that
  // started it does not stop it; the shell only wires the log up and gets out of the way.
  const child = new Deno.Command("setsid", {
    args: ["sh", "-c", 'exec "$@" >>"$0" 2>&1 </dev/null', log, exe, "init", ...argv],
    env: { ...env, [BACKGROUND_LOG_ENV]: log },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  if (!writeState) return { pid: child.pid, log };
  const now = new Date().toISOString();
  const state: WarmState = {
    pid: child.pid,
    command: `init ${argv.join(" ")}`.trim(),
    startedAt: now,
    updatedAt: now,
    phase: "resolving",
    done: 0,
    total: 0,
    current: "starting",
    log,
  };
  await Deno.writeTextFile(statePath(cacheDir), JSON.stringify(state, null, 2) + "\n");
  return { pid: child.pid, log };
}

/**
 * `init --background`: starts `init argv` detached, with the caller's environment minus the
 * marker that it is the child. When a warm-up is running, the child waits for its lock and the
 * state file keeps showing the running one; `waitsFor` is then that one's pid.
 */
export async function startBackgroundWarmUp(
  exe: string,
  argv: string[],
  cacheDir: string,
  env: Record<string, string>,
): Promise<{ pid: number; log: string; waitsFor?: number }> {
  const running = await readWarmState(cacheDir);
  const busy = running !== undefined &&
    (running.phase === "resolving" || running.phase === "building") && isRunning(running.pid);
  const childEnv = { ...env };
  delete childEnv[BACKGROUND_LOG_ENV];
  const child = await spawnBackground(exe, argv, cacheDir, childEnv, !busy);
  return busy ? { ...child, waitsFor: running.pid } : child;
}

/**
 * Takes the warm-up lock of `cacheDir`, waiting (and saying so) while another warm-up holds it.
 * Returns the open lock file; closing it releases the lock.
 */
export async function lockWarmup(
  cacheDir: string,
  onWait: (holder: WarmState | undefined) => void,
): Promise<Deno.FsFile> {
  await Deno.mkdir(warmDir(cacheDir), { recursive: true });
  const file = await Deno.open(join(warmDir(cacheDir), "lock"), { create: true, write: true });
  try {
    // Deno has no try-lock; a lock that is not granted at once means another warm-up runs.
    const locking = file.lock(true);
    let cancel: (() => void) | undefined;
    const granted = await Promise.race([
      locking.then(() => true),
      new Promise<false>((resolve) => cancel = afterTimeout(200, () => resolve(false))),
    ]);
    cancel?.();
    if (!granted) {
      onWait(await readWarmState(cacheDir));
      await locking;
    }
    return file;
  } catch (error) {
    file.close();
    throw error;
  }
}

/**
 * Lines for `status`: a running warm-up with its progress and log, the last one's outcome, and
 * a hint when the active rustc is not the one the cache was filled with. Empty when there is
 * nothing to say. Never throws.
 *
 * @example
 * ```ts ignore
 * for (const line of await warmupStatusLines(cacheDir, Deno.env.toObject())) console.log(line);
 * // warm-up      running (pid 4242, init --tier=1), started 12.0 s ago
 * //              [######··················]  30/120 units  syn v2.0.1  12.0 s elapsed, ~36.0 s left
 * //              log: /home/me/.cargo/warmup-cache/warm/init-20250101T120000.log
 * ```
 */
export async function warmupStatusLines(
  cacheDir: string,
  env: Record<string, string> = Deno.env.toObject(),
): Promise<string[]> {
  const lines: string[] = [];
  try {
    const state = await readWarmState(cacheDir);
    if (state) lines.push(...stateLines(state));
  } catch {
    // status must not fail over the warm-up's state
  }
  try {
    const { release } = await queryRustcVersion(env);
    if (release !== "unknown") {
      const warm = warmForLine(cacheDir, release);
      if (warm) lines.push(warm);
      const hint = toolchainHint(cacheDir, release);
      if (hint) lines.push(hint);
    }
  } catch {
    // nor over the hint
  }
  return lines;
}

function stateLines(state: WarmState): string[] {
  const started = Date.parse(state.startedAt);
  const ago = formatDuration(Date.now() - started);
  const active = state.phase === "resolving" || state.phase === "building";
  if (active && isRunning(state.pid)) {
    const lines = [`warm-up      running (pid ${state.pid}, ${state.command}), started ${ago} ago`];
    lines.push(
      state.phase === "resolving"
        ? `             resolving crates against the registry`
        : `             ${
          progressLine({ ...state, elapsedMs: Date.parse(state.updatedAt) - started })
        }`,
    );
    if (state.log) lines.push(`             log: ${state.log}`);
    return lines;
  }
  if (active) {
    return [
      `warm-up      ${state.command} (pid ${state.pid}) stopped before finishing` +
      (state.log ? `; log: ${state.log}` : ""),
    ];
  }
  const finished = formatDuration(Date.now() - Date.parse(state.updatedAt));
  return [
    `last warm-up ${state.command}, ${
      state.phase === "done" ? "finished" : "failed"
    } ${finished} ago` +
    (state.summary ? `: ${state.summary}` : ""),
  ];
}

/** The hint to re-warm when no recently used entry was built by the active rustc release. */
function toolchainHint(cacheDir: string, release: string) {
  try {
    Deno.statSync(join(cacheDir, "index.db"));
  } catch {
    return;
  }
  const index = openIndex(cacheDir);
  let rows: Array<Record<string, string | number>>;
  try {
    rows = index.artefacts(2000);
  } finally {
    index.close();
  }
  const cutoff = Date.now() - RECENT_DAYS * 24 * 60 * 60 * 1000;
  const recent = rows.filter((row) => parseIndexTime(String(row.last_used)) >= cutoff);
  if (recent.length === 0 || recent.some((row) => row.rustc === release)) return;
  const others = [...new Set(recent.map((row) => String(row.rustc)))].join(", ");
  const crates = new Set(recent.map((row) => `${row.crate}@${row.version}`)).size;
  return `hint         rustc ${release} differs from the one the cache was filled with (${others}); ` +
    `run 'cargo-warmup init --rewarm' to rebuild the ${crates} recently used crates for it`;
}
