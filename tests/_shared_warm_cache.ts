// One cache warmed by building the fixtures through cargo-warmup, shared by every test file and
// every test process, so integration tests start from a warm cache without each rebuilding it.

import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimeDirFor, stopDaemons } from "./_daemons.ts";
import { type DispatchLogEntry, readDispatchLog } from "./_dispatch_log.ts";
import {
  copyFixture,
  createCargoHome,
  exists,
  FIXTURES_DIR,
  removeAll,
  ROOT,
  tempDir,
} from "./_fixtures.ts";
import { cleanEnv, runCargo, warmupEnv } from "./_run.ts";

/** The fixtures the shared warm cache is built from. */
export const WARM_FIXTURES: readonly string[] = ["seed001", "seed003"];

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
  // The shared cache outlives this build's temporary dir: its daemon must not.
  await stopDaemons([runtimeDirFor(cacheDir)]);
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
  // scripts/test.sh gives each run its own TMPDIR; this cache is keyed and outlives runs.
  const parent = Deno.env.get("CARGO_WARMUP_TEST_SHARED_DIR") || tmpdir();
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
