/**
 * What `native` means on this machine. `-C target-cpu=native` (and `-march=native` in a build
 * script's C flags) compiles for this CPU: an artefact built with AVX-512 dies with SIGILL on a
 * machine without it, so the key holds what the word resolves to here (the CPU name and the
 * target features), never the word alone. Asked once per compiler and boot, and remembered.
 * @module
 */

import { statSignature } from "../digest.ts";
import { bootId, remembered, resolveProgram } from "./_tool_memo.ts";
import { runTool } from "../processes.ts";
import type { RustcArgs } from "./rustc_args.ts";
import type { RustcIdentityMemo } from "../index/index_db.ts";

/** A native CPU as rustc resolves it. */
export interface NativeCpu {
  /** The host CPU rustc picks for `native` (`znver4`). */
  cpu: string;
  /** The target features enabled for this call's CPU and feature options, sorted. */
  features: string[];
}

/** C flags that ask the compiler for this machine's CPU. */
const C_NATIVE = /^-m(arch|cpu|tune)=native$/;

/**
 * The `-C target-cpu` and `-C target-feature` options of an invocation that asks for this
 * machine's CPU (`target-cpu=native`, or `native` in a feature list), in order; undefined when it
 * does not ask.
 *
 * @example
 * ```ts
 * import { nativeCpuOptions } from "./native_cpu.ts";
 * import { parseRustcArgs } from "./rustc_args.ts";
 * const parsed = parseRustcArgs(["--crate-name", "a", "src/lib.rs", "--out-dir", "/o",
 *   "-C", "target-cpu=native"]);
 * if (parsed.cacheable) console.log(nativeCpuOptions(parsed.args)); // ["-C", "target-cpu=native"]
 * ```
 */
export function nativeCpuOptions(args: RustcArgs): string[] | undefined {
  const options = args.keyed
    .filter((arg) => /^-C target-(cpu|feature)=/.test(arg))
    .map((arg) => arg.slice("-C ".length));
  const asksForNative = args.codegen.get("target-cpu") === "native" ||
    options.some((option) => option.startsWith("target-feature=") && /\bnative\b/.test(option));
  return asksForNative ? options.flatMap((option) => ["-C", option]) : undefined;
}

/** What one invocation's native CPU resolution needs. */
export interface NativeCpuQuery {
  /** The rustc cargo runs, and the identity the key already holds for it. */
  rustc: string;
  rustcIdentity: string;
  args: RustcArgs;
  target: string;
  env: Record<string, string>;
  cwd: string;
}

/**
 * The CPU and target features `native` resolves to for an invocation, from
 * `rustc --print cfg --print target-cpus`; undefined when the invocation does not ask for the
 * native CPU. Remembered per rustc identity, target, options and boot.
 *
 * @example
 * ```ts ignore
 * const native = await nativeCpuOf({ rustc: "rustc", rustcIdentity, args, target, env, cwd });
 * console.log(native?.cpu); // e.g. "znver4"
 * ```
 */
export async function nativeCpuOf(
  query: NativeCpuQuery,
  memo?: RustcIdentityMemo,
): Promise<NativeCpu | undefined> {
  const options = nativeCpuOptions(query.args);
  if (options === undefined) return undefined;
  const boot = bootId();
  const probe = JSON.stringify(["native-cpu", query.rustcIdentity, query.target, options, boot]);
  // Without a boot id an index carried to another machine could answer for this one.
  const value = await remembered(probe, boot ? memo : undefined, async () => {
    const printed = await runTool(
      query.rustc,
      ["--print", "cfg", "--print", "target-cpus", "--target", query.target, ...options],
      query.env,
      query.cwd,
    );
    if (!printed.success) {
      throw new Error(`rustc cannot resolve the native CPU: ${printed.stderr.trim()}`);
    }
    return JSON.stringify(parseNativeCpu(printed.stdout));
  });
  return JSON.parse(value) as NativeCpu;
}

/**
 * Reads `rustc --print cfg --print target-cpus` output: the target features and the CPU
 * `native` stands for.
 *
 * @example
 * ```ts
 * import { parseNativeCpu } from "./native_cpu.ts";
 * const printed = 'target_feature="sse2"\ntarget_feature="avx2"\nAvailable CPUs for this target:\n' +
 *   "    native  - Select the CPU of the current host (currently znver4).\n";
 * console.log(parseNativeCpu(printed)); // { cpu: "znver4", features: ["avx2", "sse2"] }
 * ```
 */
export function parseNativeCpu(printed: string): NativeCpu {
  const features = [...printed.matchAll(/^target_feature="([^"]*)"$/gm)].map((match) => match[1]!);
  const cpu = /^\s*native\b.*\(currently ([^)]+)\)/m.exec(printed)?.[1]?.trim();
  if (cpu === undefined) throw new SyntaxError(`No native CPU in rustc's answer: "${printed}"`);
  return { cpu, features: features.sort() };
}

/**
 * The native CPU flags (`-march=native`, `-mcpu=native`, `-mtune=native`) among a build script's
 * C flags (`CFLAGS=… -march=native`), each once, in order of appearance.
 *
 * @example
 * ```ts
 * import { cNativeFlags } from "./native_cpu.ts";
 * console.log(cNativeFlags(["-O2 -march=native", "-mtune=native -march=native"]));
 * // ["-march=native", "-mtune=native"]
 * ```
 */
export function cNativeFlags(flagValues: string[]): string[] {
  const flags = flagValues.flatMap((value) => value.split(/\s+/)).filter((flag) =>
    C_NATIVE.test(flag)
  );
  return [...new Set(flags)];
}

/**
 * What the C compiler `program` makes of `flags` (native CPU flags) here: the CPU options of its
 * compiler proper, from `-###` (gcc's cc1 `-march=znver3 -mavx2 … --param l1-cache-size=32`,
 * clang's `-target-cpu … -target-feature …`). Remembered per compiler binary, flags and boot.
 *
 * @example
 * ```ts ignore
 * console.log(await cNativeOf("cc", ["-march=native"], Deno.env.toObject(), Deno.cwd()));
 * ```
 */
export async function cNativeOf(
  program: string,
  flags: string[],
  env: Record<string, string>,
  cwd: string,
  memo?: RustcIdentityMemo,
): Promise<string> {
  const found = resolveProgram(program, env, cwd);
  if (found === undefined) return `${program} not found`;
  const { path, real } = found;
  const boot = bootId();
  const probe = JSON.stringify([
    "c-native",
    path,
    real,
    statSignature(Deno.statSync(real)),
    flags,
    boot,
  ]);
  return await remembered(probe, boot ? memo : undefined, async () => {
    const shown = await runTool(path, [...flags, "-###", "-E", "-x", "c", "/dev/null"], env, cwd);
    const resolved = shown.success ? cpuOptionsOfDriverLine(shown.stderr) : [];
    // A compiler that resolves nothing is keyed as failing, never as the word "native".
    if (resolved.length === 0) {
      throw new Error(`${program} does not say what ${flags.join(" ")} means here`);
    }
    return resolved.join(" ");
  });
}

/**
 * The CPU options of the compiler proper in a driver's `-###` output: the first command line
 * (gcc's `cc1`, `clang -cc1`), its `-m…` options, `--param` pairs and clang's target CPU and
 * feature pairs.
 *
 * @example
 * ```ts
 * import { cpuOptionsOfDriverLine } from "./native_cpu.ts";
 * const shown = 'gcc version 12\n /usr/lib/gcc/cc1 -E -quiet - "-march=znver3" -mavx2 ' +
 *   '--param "l1-cache-size=32" "-mtune=znver3" -dumpbase -\n';
 * console.log(cpuOptionsOfDriverLine(shown));
 * // ["-march=znver3", "-mavx2", "--param", "l1-cache-size=32", "-mtune=znver3"]
 * ```
 */
export function cpuOptionsOfDriverLine(shown: string): string[] {
  const line = shown.split("\n").find((text) => /^ +"?\//.test(text));
  if (line === undefined) return [];
  const words = [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((match) =>
    match[1] ?? match[2]!
  );
  const options: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (["--param", "-target-cpu", "-target-feature", "-tune-cpu"].includes(word)) {
      options.push(word, words[i + 1] ?? "");
      i++;
    } else if (word.startsWith("-m")) {
      options.push(word);
    }
  }
  return options;
}
