/**
 * The run key of a registry crate's build script: everything that decides what the script prints
 * and writes to OUT_DIR, known before it runs. SHA-256 of a canonical JSON recipe: the binary's
 * content digest, the package's source identity, the rustc it probes, the variables cargo sets
 * for build scripts (paths templated; never NUM_JOBS or jobserver variables), and the C toolchain
 * a script may call (CC, CFLAGS, … in every form cc-rs reads, the compilers they resolve to, the C
 * library they link against, and what `-march=native` in those flags means on this machine).
 * What the script itself declares it depends on (`rerun-if-env-changed`, `rerun-if-changed`) is
 * known only after it ran: recorded in the entry and checked on a hit.
 * @module
 */

import { dirname } from "node:path";
import { sha256Hex } from "../digest.ts";
import { digestFile, type DigestMemo } from "../index/file_digest.ts";
import { resolveProgram } from "./_tool_memo.ts";
import { libcOf } from "./machine_identity.ts";
import { cNativeFlags, cNativeOf } from "./native_cpu.ts";
import { type PathRoots, toTemplate } from "../cache/path_roots.ts";
import { rustcIdentity } from "../rustc_identity.ts";
import type { RustcIdentityMemo } from "../index/index_db.ts";

/** Bumped whenever the recipe changes meaning. */
const RUN_FORMAT = "cargo-warmup-run-1";
/** What cargo tells a build script about the build (DEP_* carries `links` dependencies' values). */
const CARGO_RUN_ENV =
  /^(CARGO_CFG_\w+|CARGO_FEATURE_\w+|CARGO_PKG_\w+|CARGO_MANIFEST_LINKS|CARGO_ENCODED_RUSTFLAGS|DEP_\w+|TARGET|HOST|PROFILE|OPT_LEVEL|DEBUG|RUSTC_LINKER)$/;
/** The C/C++ toolchain settings cc-rs, cmake and pkg-config read, with their `_<target>` forms. */
const C_TOOLCHAIN_ENV =
  /^((TARGET|HOST)_)?(CC|CXX|AR|RANLIB|CFLAGS|CXXFLAGS|CPPFLAGS|LDFLAGS|ARFLAGS|CRATE_CC_NO_DEFAULTS|CC_ENABLE_DEBUG_OUTPUT|PKG_CONFIG\w*|CMAKE\w*)([_-][\w.-]+)?$/;

/** The directories a run's paths are templated against. */
export function runRootsOf(dirs: {
  outDir: string;
  manifestDir: string;
  cargoHome: string;
}): PathRoots {
  // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: DEP_* values name siblings of it.
  const buildDir = dirname(dirname(dirs.outDir));
  const roots: Array<[string, string]> = [
    ["@@WARMUP_OUT_DIR_ENV@@", dirs.outDir],
    ["@@WARMUP_PKG@@", dirs.manifestDir],
    ["@@WARMUP_BUILD_DIR@@", buildDir],
    ["@@WARMUP_CARGO_HOME@@", dirs.cargoHome],
  ];
  return roots
    .map(([placeholder, path]) => [placeholder, path.replace(/\/+$/, "")] as const)
    .sort((a, b) => b[1].length - a[1].length);
}

/** Everything the run key is computed from. */
export interface RunKeyInputs {
  /** The real build-script binary. */
  binary: string;
  env: Record<string, string>;
  roots: PathRoots;
  /** The package's path-free source identity (source_identity.ts). */
  source: string;
  memo: DigestMemo;
  /** Where rustc's identity and the C toolchain's answers are remembered. */
  rustcMemo: RustcIdentityMemo;
}

/**
 * The run key, the recipe it hashes (for the journal), and the release of the rustc the script
 * probes (for the index).
 *
 * @example
 * ```ts ignore
 * const { key } = await runKeyOf(inputs);
 * ```
 */
export async function runKeyOf(
  inputs: RunKeyInputs,
): Promise<{ key: string; rustcRelease: string; recipe: Record<string, unknown> }> {
  const { env, roots } = inputs;
  const keyed = (pattern: RegExp) =>
    Object.entries(env)
      .filter(([name]) => pattern.test(name))
      .map(([name, value]) => `${name}=${toTemplate(value, roots)}`)
      .sort();
  const rustc = env.RUSTC ? await rustcIdentity(env.RUSTC, env, inputs.rustcMemo) : undefined;
  const program = (override: string | undefined, tool: string) =>
    override?.trim().split(/\s+/)[0] || tool;
  const cc = program(env.CC, "cc");
  const cxx = program(env.CXX, "c++");
  // Cargo runs a build script in its package's directory.
  const cwd = env.CARGO_MANIFEST_DIR || Deno.cwd();
  const recipe = {
    format: RUN_FORMAT,
    binary: digestFile(inputs.binary, inputs.memo),
    source: inputs.source,
    rustc: rustc?.identity ?? "no RUSTC",
    env: keyed(CARGO_RUN_ENV),
    cToolchain: keyed(C_TOOLCHAIN_ENV),
    compilers: [cc, cxx, program(env.AR, "ar")].map((tool) =>
      compilerIdentity(tool, env, cwd, inputs.memo)
    ),
    // What the objects a script compiles are linked against later: glibc's headers decide which
    // symbol versions they need.
    libc: await libcOf(cc, env, cwd, inputs.rustcMemo),
    cNative: await nativeCFlags(env, cc, cxx, cwd, inputs.rustcMemo),
  };
  return { key: sha256Hex(JSON.stringify(recipe)), rustcRelease: rustc?.release ?? "", recipe };
}

/**
 * What `-march=native` (`-mcpu`, `-mtune`) in the C flags means on this machine, for the C and the
 * C++ compiler: absent when no flag asks for it.
 */
async function nativeCFlags(
  env: Record<string, string>,
  cc: string,
  cxx: string,
  cwd: string,
  memo: RustcIdentityMemo,
): Promise<string[] | undefined> {
  const flagsOf = (pattern: RegExp) =>
    cNativeFlags(
      Object.entries(env).filter(([name]) => pattern.test(name)).map(([, value]) => value),
    );
  // CPPFLAGS reach both compilers; CFLAGS the C one, CXXFLAGS the C++ one.
  const forC = flagsOf(/^((TARGET|HOST)_)?C(PP)?FLAGS([_-][\w.-]+)?$/);
  const forCxx = flagsOf(/^((TARGET|HOST)_)?(CXX|CPP)FLAGS([_-][\w.-]+)?$/);
  if (forC.length === 0 && forCxx.length === 0) return undefined;
  const resolved: string[] = [];
  for (const [tool, flags] of [[cc, forC], [cxx, forCxx]] as const) {
    if (flags.length === 0) continue;
    const means = await cNativeOf(tool, flags, env, cwd, memo);
    resolved.push(`${tool} ${flags.join(" ")}: ${means}`);
  }
  return resolved;
}

/**
 * What a C tool a script calls resolves to (`tool` is CC, CXX or AR's program, or the default
 * name): the binary found on PATH (or at the given path) and its digest, so a compiler upgrade
 * is a new key. `missing` when there is none.
 */
function compilerIdentity(
  tool: string,
  env: Record<string, string>,
  cwd: string,
  memo: DigestMemo,
): string {
  const found = resolveProgram(tool, env, cwd);
  return found === undefined
    ? `${tool}=missing`
    : `${tool}=${found.real}:${digestFile(found.real, memo)}`;
}
