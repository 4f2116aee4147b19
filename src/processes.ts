/**
 * Other processes, as this program meets them: where a program is found (the way exec finds it:
 * a name with a slash is a path from the working directory, a bare name the first executable
 * file of that name in PATH's directories, relative ones skipped), running a tool to ask it
 * something (exactly the environment given, no input, and a time limit: a tool that hangs is a
 * fault that costs the call its cache, never the build its progress), and, from `/proc`, whether
 * a process runs and when it started (which tells a pid reused later from the process it once
 * named). The front door (src/frontdoor/cargo_warmup.rs) asks "does it run" by the same rule.
 * @module
 */

import { delimiter, isAbsolute, join, resolve } from "node:path";

/**
 * The path `program` runs from for a process with `env` started in `cwd`, or undefined when there
 * is none; `lookedIn` is told each directory searched, in order.
 *
 * @example
 * ```ts
 * import { findProgram } from "./processes.ts";
 * console.log(findProgram("sh", { PATH: "relative:/bin" })); // "/bin/sh"
 * console.log(findProgram("no-such-program", { PATH: "/bin" })); // undefined
 * ```
 */
export function findProgram(
  program: string,
  env: Record<string, string | undefined>,
  cwd: string = Deno.cwd(),
  lookedIn?: (dir: string) => void,
): string | undefined {
  if (program.includes("/")) {
    const path = resolve(cwd, program);
    return isExecutableFile(path) ? path : undefined;
  }
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    lookedIn?.(dir);
    const candidate = join(dir, program);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** A tool that does not answer in this long is a fault (the call compiles without the cache). */
const TOOL_TIMEOUT_MS = 20_000;

/** What a tool printed, and whether it succeeded. */
export interface ToolOutput {
  success: boolean;
  stdout: string;
  stderr: string;
}

/**
 * Runs `program` with exactly `env` and no input, from `cwd` (default: this process's); rejects
 * when it cannot be run at all or does not answer in time.
 */
export async function runTool(
  program: string,
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<ToolOutput> {
  const output = await new Deno.Command(program, {
    args,
    env,
    clearEnv: true,
    ...(cwd === undefined ? {} : { cwd }),
    stdin: "null",
    signal: AbortSignal.timeout(TOOL_TIMEOUT_MS),
  }).output();
  const decoder = new TextDecoder();
  return {
    success: output.success,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** The fields of `/proc/<pid>/stat` after the command name (which may hold spaces, even ")"). */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/**
 * Whether process `pid` runs. A zombie does not: a process that exited stays one where nothing
 * reaps it (a container whose first process reaps no orphans). Without `/proc` (another OS) no
 * process is known to run.
 *
 * @example
 * ```ts
 * import { isRunning } from "./processes.ts";
 * console.log(isRunning(Deno.pid)); // true
 * ```
 */
export function isRunning(pid: number | string): boolean {
  const state = statFields(pid)?.[0];
  return state !== undefined && state !== "Z" && state !== "X";
}

/**
 * When process `pid` started, in clock ticks since boot; "" where that cannot be read (another
 * OS, a process gone, an id that is no pid).
 */
export function processStartOf(pid: number | string): string {
  if (!/^\d+$/.test(String(pid))) return "";
  // The 22nd field of all, the 20th after the command name.
  return statFields(pid)?.[19] ?? "";
}
