// Running cargo and bin/cargo-warmup as subprocesses in a controlled environment, and the
// environment of a build that goes through cargo-warmup.

import { WARMUP_BIN } from "./_fixtures.ts";
import { settleDaemons } from "../src/daemon/settle.ts";
import {
  buildFrontDoorForTests,
  FRONT_DOOR,
  isStopped,
  liveDaemons,
  runtimeDirFor,
} from "./_daemons.ts";

// Cached builds run the native front door, as installed users do; it is built once per checkout.
await buildFrontDoorForTests();

/** What a finished subprocess left behind. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall-clock duration of the subprocess, for the benchmark and for slow-test messages. */
  seconds: number;
}

/**
 * The parent environment minus everything that would change how cargo builds: an inherited
 * target dir, wrapper, flags, or this tool's own settings. `CARGO_HOME` is kept.
 */
export function cleanEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  for (const name of Object.keys(env)) {
    const buildSetting = /^(CARGO_(?!HOME$)|RUSTC|RUSTFLAGS$|RUSTDOCFLAGS$|SCCACHE_)/.test(name);
    if (buildSetting) delete env[name];
  }
  return env;
}

/** Options for {@linkcode runCargo} and {@linkcode runWarmup}. */
export interface RunOptions {
  cwd?: string;
  /** Added to (and overriding) {@linkcode cleanEnv}; pass `warmupEnv(...)` for cached builds. */
  env?: Record<string, string>;
}

/**
 * Runs `cargo` with `args` in a clean environment and collects its output.
 *
 * @example
 * ```ts ignore
 * const build = await runCargo(["build", "--locked"], { cwd: project, env: { CARGO_HOME } });
 * ```
 */
export function runCargo(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run("cargo", args, options);
}

/**
 * Runs Debian's cargo 0.66 with its rustc 1.63 (`/usr/bin`, installed by scripts/setup.sh): the
 * older of the two real toolchains of the upgrade test and benchmark. It cannot read lockfiles
 * of format 4, so build a copy without its Cargo.lock.
 *
 * @example
 * ```ts ignore
 * const build = await runOldCargo(["build"], { cwd: project, env: warmupEnv({ cacheDir, cargoHome }) });
 * ```
 */
export function runOldCargo(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run("/usr/bin/cargo", args, {
    ...options,
    env: { ...options.env, RUSTC: "/usr/bin/rustc", PATH: `/usr/bin:${Deno.env.get("PATH")}` },
  });
}

/**
 * Runs `bin/cargo-warmup` with `args` in a clean environment and collects its output.
 *
 * @example
 * ```ts ignore
 * const status = await runWarmup(["status"], { env: warmupEnv({ cacheDir, cargoHome }) });
 * ```
 */
export function runWarmup(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run(WARMUP_BIN, args, options);
}

async function run(command: string, args: string[], options: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const output = await new Deno.Command(command, {
    args,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    clearEnv: true,
    env: { ...cleanEnv(), ...options.env },
    stdin: "null",
  }).output();
  const seconds = (performance.now() - started) / 1000;
  // The daemon stores a build's misses after the build: wait for it, so that what a test reads
  // next (the cache, status, another build) sees all of them. The deadline only bounds a hang: a
  // cold build's stores take well over 5 s on a busy machine. A daemon the test has stopped
  // (SIGSTOP) cannot answer until resumed: it is not waited for.
  const runtimeDir = options.env?.CARGO_WARMUP_RUNTIME_DIR;
  if (runtimeDir && !liveDaemons(runtimeDir).some(isStopped)) {
    await settleDaemons(runtimeDir, 120_000);
  }
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
    seconds,
  };
}

/** Inputs of {@linkcode warmupEnv}. */
export interface WarmupEnvOptions {
  cacheDir: string;
  cargoHome: string;
  /** File the dispatcher appends its JSON lines to; see {@linkcode readDispatchLog}. */
  log?: string;
  /**
   * CARGO_WARMUP_WORKSPACE; default "0", so that tests and bench rows about registry crates see
   * only those cached, as before workspace caching was on by default. "default": not set.
   */
  workspace?: "0" | "1" | "incremental" | "default";
  /**
   * Whether dependencies are placed in a new target dir before cargo looks (src/place/); default
   * off, so that tests about calls see every call, as before placing was on by default.
   */
  place?: boolean;
}

/**
 * The complete environment of a build through cargo-warmup: {@linkcode cleanEnv} (so nothing
 * inherited such as CARGO_TARGET_DIR, RUSTC_WRAPPER or RUSTFLAGS) plus the front door as
 * RUSTC_WRAPPER, the given cache and CARGO_HOME, a runtime dir (the daemon's socket) beside the
 * cache, and no colour codes in cargo's output. Pass it
 * to {@linkcode runCargo}, or to `Deno.Command` together with `clearEnv: true`.
 *
 * @example
 * ```ts ignore
 * const env = warmupEnv({ cacheDir, cargoHome, log: `${dir}/dispatch.jsonl` });
 * await runCargo(["build", "--locked"], { cwd: project, env });
 * ```
 */
export function warmupEnv(options: WarmupEnvOptions): Record<string, string> {
  return {
    ...cleanEnv(),
    RUSTC_WRAPPER: FRONT_DOOR,
    CARGO_WARMUP_DIR: options.cacheDir,
    CARGO_WARMUP_RUNTIME_DIR: runtimeDirFor(options.cacheDir),
    CARGO_HOME: options.cargoHome,
    CARGO_TERM_COLOR: "never",
    ...(options.workspace === "default"
      ? {}
      : { CARGO_WARMUP_WORKSPACE: options.workspace ?? "0" }),
    ...(options.log === undefined ? {} : { CARGO_WARMUP_LOG: options.log }),
    ...(options.place ? {} : { CARGO_WARMUP_PLACE: "0" }),
  };
}

/**
 * Runs a built program and returns its stdout; throws with its stderr if it exits non-zero.
 *
 * @example
 * ```ts ignore
 * assert.match(await runBinary(`${project}/target/debug/server`), /server accepted/);
 * ```
 */
export async function runBinary(path: string): Promise<string> {
  const output = await new Deno.Command(path, { stdin: "null" }).output();
  const decoder = new TextDecoder();
  if (output.code !== 0) {
    throw new Error(`"${path}" exited with ${output.code}: ${decoder.decode(output.stderr)}`);
  }
  return decoder.decode(output.stdout);
}
