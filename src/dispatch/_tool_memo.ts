/**
 * Asking this machine's tools (the linker, the C compiler, rustc) what they resolve to, once: the
 * answer is remembered for the process, and in the index for other processes, under a probe that
 * changes when the tool or the machine does.
 * @module
 */

import { resolve } from "node:path";
import { findProgram } from "../processes.ts";
import type { RustcIdentityMemo } from "../index/index_db.ts";

/** What this process already knows or is finding out, by probe. */
const known = new Map<string, Promise<string>>();
let bootIdOfThisMachine: string | undefined;

/**
 * The value remembered under `probe`, else what `compute` finds (run once per process, however
 * many calls ask at once), remembered for this process and in `memo`. `stillValid` is asked of
 * every remembered value first (a file it names may have changed since).
 */
export async function remembered(
  probe: string,
  memo: RustcIdentityMemo | undefined,
  compute: () => Promise<string>,
  stillValid: (value: string) => boolean = () => true,
): Promise<string> {
  const inProcess = known.get(probe);
  if (inProcess !== undefined) {
    const value = await inProcess;
    if (stillValid(value)) return value;
    known.delete(probe);
  }
  const stored = memo?.lookup(probe)?.identity;
  if (stored !== undefined && stillValid(stored)) {
    known.set(probe, Promise.resolve(stored));
    return stored;
  }
  const computing = known.get(probe) ?? compute();
  known.set(probe, computing);
  try {
    const value = await computing;
    // The index's rows are rustc's; a tool's answer rides in the identity column.
    memo?.remember(probe, { identity: value, host: "", release: "" });
    return value;
  } catch (error) {
    known.delete(probe);
    throw error;
  }
}

/** A program as a process would find it: the path it runs, and the file behind its symlinks. */
export interface FoundProgram {
  /** What to run: a wrapper such as ccache decides what it is by the name it was run as. */
  path: string;
  real: string;
}

/**
 * Where a process started with `env` from `cwd` finds `program` (a path, else a name on PATH);
 * undefined when it finds none. A PATH search is remembered with the directories it passed over:
 * repeated while none of them changed (a `cc` put into one of them is seen at once), it costs a
 * stat per directory instead of a failed lookup per directory.
 */
export function resolveProgram(
  program: string,
  env: Record<string, string>,
  cwd: string,
): FoundProgram | undefined {
  if (program.includes("/")) return programAt(resolve(cwd, program));
  const searchKey = `${program}\0${env.PATH ?? ""}`;
  const known = searches.get(searchKey);
  if (known && known.passed.every(([dir, mtime]) => mtimeOf(dir) === mtime)) {
    const again = known.path === undefined ? undefined : programAt(known.path);
    if (again !== undefined || known.path === undefined) return again;
  }
  const passed: Array<[string, number | undefined]> = [];
  const path = findProgram(program, env, cwd, (dir) => passed.push([dir, mtimeOf(dir)]));
  const found = path === undefined ? undefined : programAt(path);
  searches.set(searchKey, { path: found?.path, passed });
  return found;
}

/** PATH searches of this process: what each found, and the directories it looked in. */
const searches = new Map<
  string,
  { path: string | undefined; passed: Array<[string, number | undefined]> }
>();

function programAt(path: string): FoundProgram | undefined {
  try {
    const real = Deno.realPathSync(path);
    if (Deno.statSync(real).isFile) return { path, real };
  } catch {
    // not here
  }
  return undefined;
}

/** A directory's mtime (an entry added or removed changes it); undefined when there is none. */
function mtimeOf(dir: string): number | undefined {
  try {
    return Deno.statSync(dir).mtime?.getTime();
  } catch {
    return undefined;
  }
}

/**
 * This boot of this machine ("" when unknown): what a CPU-dependent answer is remembered under,
 * since an index may be carried to another machine (a CI cache restored on another runner).
 */
export function bootId(): string {
  if (bootIdOfThisMachine === undefined) {
    try {
      bootIdOfThisMachine = Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
    } catch {
      bootIdOfThisMachine = "";
    }
  }
  return bootIdOfThisMachine;
}
