/**
 * What a linked output (a proc-macro, a build script, any binary) owes to this machine besides
 * rustc: the linker rustc runs and the C library it links against. A proc-macro linked against a
 * newer glibc cannot be loaded where an older one runs, so these are in the key of linked outputs
 * (cache_key.ts) and of build-script runs (run_key.ts); an rlib or rmeta is not linked and stays
 * shared. Asked once per tool and remembered (_tool_memo.ts).
 * @module
 */

import { sha256Hex, statSignature } from "../digest.ts";
import { type FoundProgram, remembered, resolveProgram } from "./_tool_memo.ts";
import { runTool } from "../processes.ts";
import type { RustcArgs } from "./rustc_args.ts";
import type { RustcIdentityMemo } from "../index/index_db.ts";

/** The linker of a linked output, as its key holds it. */
export interface LinkerIdentity {
  /** What `<linker> --version` printed ("" when it would not say). */
  version: string;
  /** SHA-256 of the linker program (a wrapper script is another linker). */
  sha256: string;
  /** The C library it links against: `glibc 2.36`, or `sha256:<digest>` of another libc. */
  libc: string;
}

/** A remembered C library: what it is, and the file that said so, to notice an upgrade. */
interface RememberedLibc {
  libc: string;
  file?: string;
  stat?: string;
}

/**
 * Whether an invocation links a native output (a proc-macro or a binary), whose key then holds
 * the linker's identity.
 *
 * @example
 * ```ts
 * import { linksNatively } from "./machine_identity.ts";
 * import { parseRustcArgs } from "./rustc_args.ts";
 * const parsed = parseRustcArgs(["--crate-name", "m", "src/lib.rs", "--crate-type", "proc-macro",
 *   "--emit=dep-info,link", "--out-dir", "/t/deps"]);
 * if (parsed.cacheable) console.log(linksNatively(parsed.args)); // true
 * ```
 */
export function linksNatively(args: RustcArgs): boolean {
  return args.emit.includes("link") &&
    args.crateTypes.some((type) => type === "proc-macro" || type === "bin");
}

/**
 * The linker rustc runs for an invocation: `-C linker=…` (cargo passes `target.<triple>.linker`
 * and `CARGO_TARGET_<TRIPLE>_LINKER` that way), else `cc`, the default of every Linux target.
 *
 * @example
 * ```ts
 * import { linkerOf } from "./machine_identity.ts";
 * import { parseRustcArgs } from "./rustc_args.ts";
 * const parsed = parseRustcArgs(["--crate-name", "m", "src/main.rs", "--out-dir", "/t/deps",
 *   "-C", "linker=clang"]);
 * if (parsed.cacheable) console.log(linkerOf(parsed.args)); // "clang"
 * ```
 */
export function linkerOf(args: RustcArgs): string {
  return args.codegen.get("linker") || "cc";
}

/**
 * The identity of the linker `program` as rustc, started with `env` in `cwd`, would run it, and
 * of the C library it links against; remembered per linker binary (and libc file).
 *
 * @example
 * ```ts ignore
 * const { libc } = await linkerIdentity("cc", Deno.env.toObject(), Deno.cwd());
 * console.log(libc); // e.g. "glibc 2.36"
 * ```
 */
export async function linkerIdentity(
  program: string,
  env: Record<string, string>,
  cwd: string,
  memo?: RustcIdentityMemo,
): Promise<LinkerIdentity> {
  const found = resolveProgram(program, env, cwd);
  if (found === undefined) {
    // rustc will not find it either: the compile fails and is not stored.
    return {
      version: `${program} not found`,
      sha256: "",
      libc: await libcOfFound(program, undefined, env, cwd, memo),
    };
  }
  const { path, real } = found;
  const probe = JSON.stringify(["linker", path, real, statSignature(Deno.statSync(real))]);
  const identity = await remembered(probe, memo, async () => {
    const version = await runTool(path, ["--version"], env, cwd);
    return JSON.stringify({
      version: version.success ? version.stdout.trim() : "",
      sha256: sha256Hex(await Deno.readFile(real)),
    });
  });
  const { version, sha256 } = JSON.parse(identity) as Omit<LinkerIdentity, "libc">;
  return { version, sha256, libc: await libcOfFound(program, found, env, cwd, memo) };
}

/**
 * The C library the C compiler or linker `program` links against: the glibc release of the
 * `libc.so.6` it resolves (`-print-file-name`), else the SHA-256 of its `libc.so` (musl), else
 * the system's glibc (`getconf GNU_LIBC_VERSION`), else `unknown`. Remembered per compiler
 * binary; a libc file that changed since (an upgrade) is asked again.
 *
 * @example
 * ```ts ignore
 * console.log(await libcOf("cc", Deno.env.toObject(), Deno.cwd())); // e.g. "glibc 2.36"
 * ```
 */
export async function libcOf(
  program: string,
  env: Record<string, string>,
  cwd: string,
  memo?: RustcIdentityMemo,
): Promise<string> {
  return await libcOfFound(program, resolveProgram(program, env, cwd), env, cwd, memo);
}

async function libcOfFound(
  program: string,
  found: FoundProgram | undefined,
  env: Record<string, string>,
  cwd: string,
  memo: RustcIdentityMemo | undefined,
): Promise<string> {
  const probe = JSON.stringify([
    "libc",
    found?.path ?? program,
    found?.real ?? "",
    found === undefined ? "" : statSignature(Deno.statSync(found.real)),
  ]);
  const unchanged = (value: string) => {
    const { file, stat } = JSON.parse(value) as RememberedLibc;
    if (file === undefined) return true;
    try {
      return statSignature(Deno.statSync(file)) === stat;
    } catch {
      return false;
    }
  };
  const answer = await remembered(
    probe,
    memo,
    async () => JSON.stringify(await findLibc(found?.path, env, cwd)),
    unchanged,
  );
  return (JSON.parse(answer) as RememberedLibc).libc;
}

async function findLibc(
  compiler: string | undefined,
  env: Record<string, string>,
  cwd: string,
): Promise<RememberedLibc> {
  for (const name of compiler === undefined ? [] : ["libc.so.6", "libc.so"]) {
    const answer = await runTool(compiler!, [`-print-file-name=${name}`], env, cwd)
      .catch(() => undefined);
    const printed = answer?.success ? answer.stdout.trim() : "";
    // A compiler that does not find the file prints its name back.
    if (!printed.includes("/")) continue;
    let file: string;
    let bytes: Uint8Array;
    try {
      file = Deno.realPathSync(printed);
      bytes = Deno.readFileSync(file);
    } catch {
      continue;
    }
    // glibc's libc.so is a linker script naming libc.so.6, which was looked for first.
    if (name === "libc.so" && isText(bytes)) continue;
    const stat = statSignature(Deno.statSync(file));
    const release = glibcReleaseIn(bytes);
    return { libc: release ? `glibc ${release}` : `sha256:${sha256Hex(bytes)}`, file, stat };
  }
  const getconf = await runTool("getconf", ["GNU_LIBC_VERSION"], env, cwd).catch(() => undefined);
  const system = getconf?.success ? getconf.stdout.trim() : "";
  return { libc: system || "unknown" };
}

/**
 * The release glibc states in its own binary ("… stable release version 2.36."), if it does.
 *
 * @example
 * ```ts
 * import { glibcReleaseIn } from "./machine_identity.ts";
 * const bytes = new TextEncoder().encode("\0GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36.\n");
 * console.log(glibcReleaseIn(bytes)); // "2.36"
 * ```
 */
export function glibcReleaseIn(bytes: Uint8Array): string | undefined {
  const text = new TextDecoder("latin1").decode(bytes);
  return /GNU C Library[^\n\0]*?release version (\d+(?:\.\d+)+)/.exec(text)?.[1];
}

function isText(bytes: Uint8Array): boolean {
  return !bytes.subarray(0, 4096).includes(0);
}
