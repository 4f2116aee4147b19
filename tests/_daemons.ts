// The daemons tests start: every cached build in a test gets its own runtime directory beside its
// cache dir, so a test that kills its daemon touches no other test, and whatever a test started
// is stopped when its temporary directory goes (a daemon that outlives its test is a failure:
// see assertNoDaemonsUnder).

import { join } from "node:path";
import { daemonRecords, isDaemonProcess } from "../src/runtime_dir.ts";
import { ROOT, WARMUP_BIN } from "./_fixtures.ts";
import { waitUntil } from "./_wait.ts";

/** The front door the tests point RUSTC_WRAPPER at, built once from this checkout. */
export const FRONT_DOOR: string = join(ROOT, ".tools", "frontdoor", "cargo-warmup");

/** Builds {@linkcode FRONT_DOOR} unless it is current; throws with rustc's output on failure. */
export async function buildFrontDoorForTests(): Promise<void> {
  const output = await new Deno.Command(WARMUP_BIN, {
    args: ["frontdoor", "--out", FRONT_DOOR],
    stdin: "null",
  }).output();
  if (output.code !== 0) {
    throw new Error(`Cannot build the front door: ${new TextDecoder().decode(output.stderr)}`);
  }
}

/** The runtime directory (socket, records, log) of builds using the cache `cacheDir`. */
export function runtimeDirFor(cacheDir: string): string {
  return `${cacheDir}.run`;
}

/** The pids of live daemons whose runtime directory is `runtimeDir`. */
export function liveDaemons(runtimeDir: string): number[] {
  return daemonRecords(runtimeDir).map((record) => record.pid).filter(isDaemonProcess);
}

/** Runtime directories directly in `dir` or one level down (where tests put caches). */
function runtimeDirsUnder(dir: string): string[] {
  const found: string[] = [];
  const visit = (path: string, depth: number) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(path)];
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!entry.isDirectory) continue;
      const child = join(path, entry.name);
      if (entry.name.endsWith(".run")) found.push(child);
      else if (depth > 0) visit(child, depth - 1);
    }
  };
  visit(dir, 1);
  return found;
}

/**
 * The daemon processes whose runtime directory is under `dir`, found by their command line: also
 * one still starting, which has written no record yet (a build's last call may have started it).
 * Missed, it would make its removed directory again and outlive its test by its idle timeout.
 */
function daemonProcessesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let args: string[];
    try {
      args = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
    } catch {
      continue; // exited meanwhile
    }
    const runtimeDir = args[args.indexOf("--runtime-dir") + 1];
    const isDaemon = args.includes("daemon") && args.includes("run");
    if (isDaemon && runtimeDir?.startsWith(`${dir}/`)) pids.push(Number(entry.name));
  }
  return pids;
}

/** Whether process `pid` is stopped (SIGSTOP): nothing in it can finish until it is resumed. */
export function isStopped(pid: number): boolean {
  try {
    // The state follows the command name, which is in parentheses and may hold spaces.
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return /^[tT]$/.test(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
  } catch {
    return false;
  }
}

/** Stops every daemon whose runtime dir is under `dir`, started or starting; resolves to how many. */
export function stopDaemonsUnder(dir: string): Promise<number> {
  const pids = new Set([
    ...runtimeDirsUnder(dir).flatMap(liveDaemons),
    ...daemonProcessesUnder(dir),
  ]);
  return stopPids([...pids]);
}

/** Stops (SIGTERM, then SIGKILL after 10 s) the daemons of `runtimeDirs`; resolves to how many. */
export function stopDaemons(runtimeDirs: string[]): Promise<number> {
  return stopPids(runtimeDirs.flatMap(liveDaemons));
}

async function stopPids(pids: number[]): Promise<number> {
  for (const pid of pids) signal(pid, "SIGTERM");
  const stopped = await waitUntil(() => !pids.some(isDaemonProcess), { timeoutMs: 10_000 })
    .then(() => true, () => false);
  if (!stopped) { for (const pid of pids.filter(isDaemonProcess)) signal(pid, "SIGKILL"); }
  return pids.length;
}

function signal(pid: number, name: Deno.Signal): void {
  try {
    Deno.kill(pid, name);
  } catch {
    // exited meanwhile
  }
}
