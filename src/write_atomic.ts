/**
 * Writing a file so that a reader finds the old one or the new one, never half of one: the bytes
 * go to a temporary file beside it, renamed into place. The temporary's name is unique (writers
 * in several processes never share one), and it is removed when the write fails.
 * @module
 */

import { basename, dirname, join } from "node:path";

/** Options for {@linkcode writeFileAtomic}. */
export interface WriteAtomicOptions {
  /** The new file's permissions (before the umask); default that of a new file. */
  mode?: number;
}

function temporaryBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${Deno.pid}.${crypto.randomUUID()}.tmp`);
}

/**
 * Writes `data` to `path` atomically; throws when it cannot (the old file, if any, stays).
 *
 * @example
 * ```ts
 * import { writeFileAtomicSync } from "./write_atomic.ts";
 * const path = `${await Deno.makeTempDir()}/state.json`;
 * writeFileAtomicSync(path, "{}\n");
 * console.log(Deno.readTextFileSync(path)); // "{}\n"
 * ```
 */
export function writeFileAtomicSync(
  path: string,
  data: string | Uint8Array,
  options: WriteAtomicOptions = {},
): void {
  const temp = temporaryBeside(path);
  const write = options.mode === undefined ? {} : { mode: options.mode };
  try {
    if (typeof data === "string") Deno.writeTextFileSync(temp, data, write);
    else Deno.writeFileSync(temp, data, write);
    Deno.renameSync(temp, path);
  } catch (error) {
    try {
      Deno.removeSync(temp);
    } catch {
      // never written
    }
    throw error;
  }
}

/** {@linkcode writeFileAtomicSync}, without blocking. */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteAtomicOptions = {},
): Promise<void> {
  const temp = temporaryBeside(path);
  const write = options.mode === undefined ? {} : { mode: options.mode };
  try {
    if (typeof data === "string") await Deno.writeTextFile(temp, data, write);
    else await Deno.writeFile(temp, data, write);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
