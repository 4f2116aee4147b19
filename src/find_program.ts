/**
 * Where a process finds a program, the way exec does: a name with a slash is a path (from the
 * working directory), a bare name is the first executable file of that name in PATH's
 * directories (relative ones are skipped: they would mean another directory in every process).
 * The one PATH search: rustc's identity, the machine's tools and the report's browser use it.
 * @module
 */

import { delimiter, isAbsolute, join, resolve } from "node:path";

/**
 * The path `program` runs from for a process with `env` started in `cwd`, or undefined when there
 * is none; `lookedIn` is told each directory searched, in order.
 *
 * @example
 * ```ts
 * import { findProgram } from "./find_program.ts";
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
