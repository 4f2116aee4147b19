// Helpers every integration test (and the benchmark) uses: fixture projects, a private offline
// CARGO_HOME, running cargo and bin/cargo-warmup as subprocesses, the dispatch log, and one warmed
// cache shared by all test files so each does not rebuild the fixtures through the wrapper.

import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the repository root. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
/** Absolute path of the checked-in fixture projects. */
export const FIXTURES_DIR: string = join(ROOT, "tests", "fixtures");
/** Absolute path of the launcher, the value RUSTC_WRAPPER gets in cached builds. */
export const WARMUP_BIN: string = join(ROOT, "bin", "cargo-warmup");
/** Where Debian's librust-*-dev packages put crate sources; a valid cargo directory source. */
export const DEBIAN_REGISTRY = "/usr/share/cargo/registry";
/** The fixtures the shared warm cache is built from. */
export const WARM_FIXTURES: readonly string[] = ["seed001", "seed003"];

/** What a finished subprocess left behind. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall-clock duration of the subprocess, for the benchmark and for slow-test messages. */
  seconds: number;
}

/** A temporary directory that removes itself at the end of an `await using` block. */
export interface TempDir extends AsyncDisposable {
  path: string;
  cleanup(): Promise<void>;
}

/**
 * Creates a temporary directory; dispose of it (or call `cleanup`) to remove it with everything
 * inside.
 *
 * @example
 * ```ts ignore
 * await using dir = await tempDir("fixture-");
 * await copyFixture("seed001", `${dir.path}/project`);
 * ```
 */
export async function tempDir(prefix = "cargo-warmup-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  const cleanup = () => removeAll(path);
  return { path, cleanup, [Symbol.asyncDispose]: cleanup };
}

/**
 * Runs `fn` with a fresh temporary directory and removes the directory afterwards, even when
 * `fn` throws.
 *
 * @example
 * ```ts ignore
 * await withTempDir(async (dir) => {
 *   await createCargoHome(`${dir}/cargo-home`);
 * });
 * ```
 */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  await using dir = await tempDir();
  return await fn(dir.path);
}

/** Removes a path recursively; a path that is already gone is fine. */
export async function removeAll(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}

/**
 * Writes a private CARGO_HOME at `dir` whose crates.io is replaced by the Debian directory
 * source, with the network off, so builds are offline and never touch ~/.cargo. Returns `dir`.
 *
 * @example
 * ```ts ignore
 * const cargoHome = await createCargoHome(`${dir}/cargo-home`);
 * ```
 */
export async function createCargoHome(dir: string): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const config = [
    "# Written by tests/_harness.ts: crates come from Debian's librust-*-dev packages.",
    "[source.crates-io]",
    'replace-with = "debian"',
    "",
    "[source.debian]",
    `directory = "${DEBIAN_REGISTRY}"`,
    "",
    "[net]",
    "offline = true",
    "",
  ].join("\n");
  await Deno.writeTextFile(join(dir, "config.toml"), config);
  return dir;
}

/**
 * Copies the fixture project `name` from tests/fixtures to `dest` (created if needed), leaving
 * out any target/ directory. A fixture holding an `OVERLAY_OF` file is the named base fixture
 * with the overlay's own files copied on top. Returns `dest`.
 *
 * @example
 * ```ts ignore
 * const project = await copyFixture("seed001_extra_feature", `${dir}/project`);
 * ```
 */
export async function copyFixture(name: string, dest: string): Promise<string> {
  const source = join(FIXTURES_DIR, name);
  const base = await Deno.readTextFile(join(source, "OVERLAY_OF")).then(
    (text) => text.trim(),
    () => undefined,
  );
  if (base !== undefined) await copyFixture(base, dest);
  await copyTree(source, dest, new Set(["target", "OVERLAY_OF"]));
  return dest;
}

async function copyTree(from: string, to: string, skip: Set<string>): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (skip.has(entry.name)) continue;
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory) await copyTree(source, target, new Set(["target"]));
    else if (entry.isFile) await Deno.copyFile(source, target);
  }
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
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
    seconds: (performance.now() - started) / 1000,
  };
}

/** Inputs of {@linkcode warmupEnv}. */
export interface WarmupEnvOptions {
  cacheDir: string;
  cargoHome: string;
  /** File the dispatcher appends its JSON lines to; see {@linkcode readDispatchLog}. */
  log?: string;
}

/**
 * The environment of a build through cargo-warmup: the launcher as RUSTC_WRAPPER, the given
 * cache and CARGO_HOME, and no colour codes in cargo's output.
 *
 * @example
 * ```ts ignore
 * const env = warmupEnv({ cacheDir, cargoHome, log: `${dir}/dispatch.jsonl` });
 * await runCargo(["build", "--locked"], { cwd: project, env });
 * ```
 */
export function warmupEnv(options: WarmupEnvOptions): Record<string, string> {
  return {
    RUSTC_WRAPPER: WARMUP_BIN,
    CARGO_WARMUP_DIR: options.cacheDir,
    CARGO_HOME: options.cargoHome,
    CARGO_TERM_COLOR: "never",
    ...(options.log === undefined ? {} : { CARGO_WARMUP_LOG: options.log }),
  };
}

/** The outcome of one rustc invocation, as the dispatcher reports it. */
export type DispatchOutcome = "hit" | "miss" | "not-cacheable";

/** One line of the dispatch log (CARGO_WARMUP_LOG). */
export interface DispatchLogEntry {
  crate: string;
  version?: string;
  outcome: DispatchOutcome;
  reason?: string;
  key?: string;
  kind?: string;
  [field: string]: unknown;
}

/**
 * Reads the dispatch log: one JSON object per line. A log that was never written (no rustc
 * invocation went through the wrapper) reads as empty.
 *
 * @example
 * ```ts ignore
 * const entries = await readDispatchLog(log);
 * assert.equal(countOutcomes(entries).miss, 0);
 * ```
 */
export async function readDispatchLog(path: string): Promise<DispatchLogEntry[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return text.split("\n").filter((line) => line.trim() !== "").map((line, index) => {
    try {
      return JSON.parse(line) as DispatchLogEntry;
    } catch (error) {
      throw new SyntaxError(`Cannot parse dispatch log "${path}" line ${index + 1}: ${error}`);
    }
  });
}

/**
 * Counts the entries per outcome, optionally only those matching `filter`.
 *
 * @example
 * ```ts ignore
 * const deps = countOutcomes(entries, (entry) => entry.crate !== "server");
 * assert.deepEqual(deps, { hit: 17, miss: 0, "not-cacheable": 0 });
 * ```
 */
export function countOutcomes(
  entries: DispatchLogEntry[],
  filter: (entry: DispatchLogEntry) => boolean = () => true,
): Record<DispatchOutcome, number> {
  const counts: Record<DispatchOutcome, number> = { hit: 0, miss: 0, "not-cacheable": 0 };
  for (const entry of entries) {
    if (filter(entry) && entry.outcome in counts) counts[entry.outcome]++;
  }
  return counts;
}

/**
 * Builds `fixture` through cargo-warmup into `cacheDir`, in a throwaway copy with its own
 * CARGO_HOME and target dir; throws with cargo's output when the build fails. Returns the
 * dispatch log entries of that build.
 *
 * @example
 * ```ts ignore
 * const entries = await warmFixture("seed003", cacheDir);
 * ```
 */
export async function warmFixture(fixture: string, cacheDir: string): Promise<DispatchLogEntry[]> {
  await using work = await tempDir(`cargo-warmup-warm-${fixture}-`);
  const project = await copyFixture(fixture, join(work.path, fixture));
  const cargoHome = await createCargoHome(join(work.path, "cargo-home"));
  const log = join(work.path, "dispatch.jsonl");
  const env = warmupEnv({ cacheDir, cargoHome, log });
  const build = await runCargo(["build", "--locked"], { cwd: project, env });
  if (build.code !== 0) {
    throw new Error(`Cannot warm the cache with fixture "${fixture}": ${build.stderr}`);
  }
  return await readDispatchLog(log);
}

// Shared across test files in one process; across processes the lock file below takes over.
let sharedWarmCachePromise: Promise<string> | undefined;

/**
 * The path of ONE cache warmed by building the seed001 and seed003 fixtures through the wrapper,
 * shared by every test file and test process. The first caller builds it (under a lock, so two
 * `deno test` processes never both do); later callers get the path. Its location is keyed by the
 * fixtures, the program's source and the rustc version, so a stale cache is never reused.
 * Treat it as read-only: copy it first with {@linkcode copySharedWarmCache}.
 *
 * @example
 * ```ts ignore
 * const cacheDir = await copySharedWarmCache(`${dir}/cache`);
 * ```
 */
export function sharedWarmCache(): Promise<string> {
  sharedWarmCachePromise ??= buildSharedWarmCache();
  return sharedWarmCachePromise;
}

/**
 * Copies the shared warm cache (see {@linkcode sharedWarmCache}) to `dest` with `cp -a`, so a
 * test can hit, evict or corrupt entries without affecting any other test. Returns `dest`.
 *
 * @example
 * ```ts ignore
 * await using dir = await tempDir();
 * const cacheDir = await copySharedWarmCache(`${dir.path}/cache`);
 * ```
 */
export async function copySharedWarmCache(dest: string): Promise<string> {
  const source = await sharedWarmCache();
  await removeAll(dest);
  const copy = await new Deno.Command("cp", { args: ["-a", source, dest] }).output();
  if (!copy.success) {
    throw new Error(
      `Cannot copy the shared warm cache to "${dest}": ${new TextDecoder().decode(copy.stderr)}`,
    );
  }
  return dest;
}

const SHARED_CACHE_PREFIX = "cargo-warmup-test-cache-";
// Caches of other source trees are left alone for this long: another checkout may be using one.
const SHARED_CACHE_MAX_IDLE_MS = 2 * 60 * 60 * 1000;

async function buildSharedWarmCache(): Promise<string> {
  const parent = tmpdir();
  const path = join(parent, SHARED_CACHE_PREFIX + await sharedCacheKey());
  const complete = join(path, ".harness-complete");
  const lockFile = await Deno.open(`${path}.lock`, { create: true, write: true });
  try {
    // A kernel lock dies with its process, so a crashed test run cannot wedge later ones.
    await lockFile.lock(true);
    if (!(await exists(complete))) {
      const staging = `${path}.staging-${Deno.pid}`;
      await removeAll(staging);
      await removeAll(path);
      await Deno.mkdir(staging, { recursive: true });
      for (const fixture of WARM_FIXTURES) await warmFixture(fixture, staging);
      await Deno.rename(staging, path);
      await Deno.writeTextFile(complete, new Date().toISOString() + "\n");
    }
    // The marker's mtime records the last use, which is what pruning looks at.
    const now = new Date();
    await Deno.utime(complete, now, now);
    await pruneIdleSharedCaches(parent, path);
  } finally {
    lockFile.close();
  }
  return path;
}

async function pruneIdleSharedCaches(parent: string, keep: string): Promise<void> {
  for await (const entry of Deno.readDir(parent)) {
    const path = join(parent, entry.name);
    if (!entry.name.startsWith(SHARED_CACHE_PREFIX) || !entry.isDirectory || path === keep) {
      continue;
    }
    const marker = await Deno.stat(join(path, ".harness-complete")).catch(() => undefined);
    const lastUse = marker?.mtime?.getTime() ?? 0;
    if (Date.now() - lastUse < SHARED_CACHE_MAX_IDLE_MS) continue;
    await removeAll(path);
    await removeAll(`${path}.lock`);
  }
}

/**
 * A hash of everything the shared warm cache depends on: the fixtures, the program's sources
 * (its cache layout may change with them) and `rustc -vV`.
 */
async function sharedCacheKey(): Promise<string> {
  const hash = createHash("sha256");
  const rustc = await new Deno.Command("rustc", { args: ["-vV"], clearEnv: true, env: cleanEnv() })
    .output();
  hash.update(rustc.stdout);
  const inputs = [FIXTURES_DIR, join(ROOT, "src"), join(ROOT, "backends"), join(ROOT, "tiers")];
  const files = [join(ROOT, "mod.ts"), join(ROOT, "deno.json"), join(ROOT, "bin", "cargo-warmup")];
  for (const dir of inputs) files.push(...await listFiles(dir));
  for (const file of files.sort()) {
    hash.update(`${file.slice(ROOT.length)}\0`);
    hash.update(await Deno.readFile(file).catch(() => new Uint8Array()));
    hash.update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

async function listFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name === "target") continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory) files.push(...await listFiles(path));
      else if (entry.isFile) files.push(path);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return files;
}

/** Whether `path` exists (any kind of file). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
