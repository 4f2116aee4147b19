// The ways of building a project the benchmark compares, one row each. A way does its own untimed
// preparation (warming a cache from a sibling copy, starting a server) and times one cold build.
// Add a row by appending to WAYS; the rows served by a remote level are in remote_ways.ts.

import { join } from "node:path";
import {
  bytesUnder,
  cleanEnv,
  copyFixture,
  countOutcomes,
  type DispatchLogEntry,
  readDispatchLog,
  runCargo,
  runOldCargo,
  type RunResult,
  runtimeDirFor,
  runWarmup,
  stopDaemons,
  warmupEnv,
} from "../tests/_harness.ts";
import { settleDaemons } from "../src/daemon/settle.ts";
import { freePort } from "../tests/backends/_servers.ts";
import { createRegistryCargoHome, startSparseRegistry } from "../tests/_sparse_registry.ts";
import { assertSameBinaries, compileCopyOnly, readCopyOnlyLog } from "./copy_only/copy_only.ts";
import { phaseBreakdown } from "./phase_breakdown.ts";

/** What a way gets to work with for one fixture. */
export interface BenchContext {
  fixture: string;
  /** Scratch directory of this way and fixture, empty at the start. */
  work: string;
  /** Private offline CARGO_HOME (see tests/_harness.ts). */
  cargoHome: string;
}

/** The timed build of one way, plus anything worth keeping in the JSON results. */
export interface Measurement {
  seconds: number;
  details?: Record<string, unknown>;
}

/** One row of the benchmark table. */
export interface Way {
  id: string;
  label: string;
  /** Ids of the ways this one's time is divided by in the table, if any. */
  baselines?: string[];
  measure(context: BenchContext): Promise<Measurement>;
}

/** Copies the fixture to `work/name`; a new name means a new absolute path, as in a new clone. */
export function project(context: BenchContext, name: string): Promise<string> {
  return copyFixture(context.fixture, join(context.work, name));
}

/** `cargo build --locked` in `dir` with the private CARGO_HOME; throws if it fails. */
export async function build(
  context: BenchContext,
  dir: string,
  env: Record<string, string> = {},
): Promise<RunResult> {
  const result = await runCargo(["build", "--locked"], {
    cwd: dir,
    env: { CARGO_HOME: context.cargoHome, CARGO_TERM_COLOR: "never", ...env },
  });
  if (result.code !== 0) {
    throw new Error(
      `Cannot build "${dir}": ${result.stderr.trim().split("\n").slice(-5).join("\n")}`,
    );
  }
  return result;
}

/** Names of the workspace members (the project's own crates) of the project in `dir`. */
async function workspaceMembers(context: BenchContext, dir: string): Promise<string[]> {
  const metadata = await runCargo(["metadata", "--no-deps", "--format-version", "1"], {
    cwd: dir,
    env: { CARGO_HOME: context.cargoHome },
  });
  if (metadata.code !== 0) throw new Error(`Cannot read cargo metadata: ${metadata.stderr}`);
  const packages = (JSON.parse(metadata.stdout) as { packages: { name: string }[] }).packages;
  return packages.map((pkg) => pkg.name);
}

/** A cargo-warmup build into `cacheDir`, with its dispatch log tallied for the results. */
export async function warmupBuild(
  context: BenchContext,
  dir: string,
  cacheDir: string,
  logName: string,
  extraEnv: Record<string, string> = {},
): Promise<Measurement> {
  const log = join(context.work, logName);
  // As users get it: dependencies placed in a new target dir before cargo looks.
  const env = {
    ...warmupEnv({ cacheDir, cargoHome: context.cargoHome, log, place: true }),
    ...extraEnv,
  };
  const result = await build(context, dir, env);
  const entries = await readDispatchLog(log);
  return {
    seconds: result.seconds,
    details: {
      outcomes: countOutcomes(entries),
      hitMs: percentiles(entries),
      hitPhases: phaseBreakdown(entries),
    },
  };
}

/** The daemon's own time per hit (the dispatch log's `ms`): p50 and p90, in milliseconds. */
function percentiles(entries: DispatchLogEntry[]): { p50: number; p90: number; hits: number } {
  const ms = entries.filter((entry) => entry.outcome === "hit" && entry.via === "daemon")
    .map((entry) => Number(entry.ms)).sort((a, b) => a - b);
  const at = (q: number) => ms[Math.floor(q * (ms.length - 1))] ?? NaN;
  return { p50: at(0.5), p90: at(0.9), hits: ms.length };
}

const plain: Way = {
  id: "plain",
  label: "plain cargo",
  baselines: ["floor"],
  async measure(context) {
    return { seconds: (await build(context, await project(context, "project"))).seconds };
  },
};

// The best any dependency cache can do: every dependency is already in target/, so only the
// project's own crates compile (and link).
const floor: Way = {
  id: "floor",
  label: "floor (own crates only)",
  async measure(context) {
    const dir = await project(context, "project");
    await build(context, dir);
    const members = await workspaceMembers(context, dir);
    const clean = await runCargo(["clean", ...members.flatMap((name) => ["-p", name])], {
      cwd: dir,
      env: { CARGO_HOME: context.cargoHome },
    });
    if (clean.code !== 0) throw new Error(`Cannot clean the workspace members: ${clean.stderr}`);
    const rebuild = await build(context, dir);
    // A clean that silently removed nothing would make the floor a no-op build.
    const compiled = [...rebuild.stderr.matchAll(/Compiling (\S+) v/g)].map((match) => match[1]);
    if (compiled.length !== members.length) {
      throw new Error(`Expected to recompile ${members.join(", ")}, got: ${compiled.join(", ")}`);
    }
    return { seconds: rebuild.seconds, details: { members } };
  },
};

// What the RUSTC_WRAPPER design can reach at all: a wrapper that knows where a plain build of a
// sibling copy left every output answers each registry crate's call by copying them, and replays
// that sibling's build-script runs (bench/copy_only/copy_only.rs). Every call still costs cargo a
// process spawn; there is no lookup, no key and no unpacking.
const limit: Way = {
  id: "limit",
  label: "limit: copy-only wrapper (what the RUSTC_WRAPPER design can reach)",
  baselines: ["floor"],
  async measure(context) {
    const wrapper = await compileCopyOnly(context.work);
    const sibling = await project(context, "sibling");
    await build(context, sibling);
    const dir = await project(context, "project");
    const log = join(context.work, "copy_only.log");
    const result = await build(context, dir, {
      RUSTC_WRAPPER: wrapper,
      COPY_ONLY_FROM: join(sibling, "target"),
      COPY_ONLY_TO: join(dir, "target"),
      COPY_ONLY_LOG: log,
    });
    // A crate compiled for real would make the row a little less than the limit.
    const { copied, real } = await readCopyOnlyLog(log);
    if (copied === 0 || real.length > 0) {
      throw new Error(
        `Expected every registry crate to be copied, ${copied} were: rustc compiled ${
          real.join(", ")
        }`,
      );
    }
    const binaries = await assertSameBinaries(dir, sibling);
    return { seconds: result.seconds, details: { copied, binaries } };
  },
};

const sccache: Way = {
  id: "sccache",
  label: "sccache, warmed by a sibling",
  baselines: ["floor"],
  measure: (context) =>
    withSccache(context.work, async (env) => {
      await build(context, await project(context, "sibling"), env);
      return await sccacheBuild(context, await project(context, "project"), env);
    }),
};

/**
 * Runs `work` with a private sccache server (its own cache directory and port under `dir`, so a
 * developer's running sccache is not involved), passing the environment that routes cargo to it.
 */
export async function withSccache<T>(
  dir: string,
  work: (env: Record<string, string>) => Promise<T>,
): Promise<T> {
  const env = {
    RUSTC_WRAPPER: "sccache",
    SCCACHE_DIR: join(dir, "sccache"),
    SCCACHE_SERVER_PORT: String(freePort()),
    SCCACHE_IDLE_TIMEOUT: "0",
  };
  await sccacheCommand(["--start-server"], env);
  try {
    return await work(env);
  } finally {
    await sccacheCommand(["--stop-server"], env).catch(() => {});
  }
}

/** A timed build through the sccache of `env`, with its hits, misses and cache size. */
export async function sccacheBuild(
  context: BenchContext,
  dir: string,
  env: Record<string, string>,
): Promise<Measurement> {
  await sccacheCommand(["--zero-stats"], env);
  const result = await build(context, dir, env);
  const stats = await sccacheCommand(["--show-stats"], env);
  const hits = Number(/^Cache hits\s+(\d+)/m.exec(stats)?.[1] ?? NaN);
  const misses = Number(/^Cache misses\s+(\d+)/m.exec(stats)?.[1] ?? NaN);
  const cacheBytes = await bytesUnder(env.SCCACHE_DIR!);
  return { seconds: result.seconds, details: { hits, misses, cacheBytes } };
}

/**
 * A cargo-warmup build of the project after a sibling copy filled the same cache, with the bytes
 * the cache takes at rest next to the project's target/debug.
 */
async function warmedBySibling(
  context: BenchContext,
  extraEnv: Record<string, string> = {},
  options: { freshDaemon?: boolean } = {},
) {
  const cacheDir = join(context.work, "cache");
  const sibling = await project(context, "sibling");
  await warmupBuild(context, sibling, cacheDir, "sibling.jsonl", extraEnv);
  // A CI container: the cache is there, no daemon runs yet; the build starts one.
  if (options.freshDaemon) await stopDaemons([runtimeDirFor(cacheDir)]);
  const dir = await project(context, "project");
  const measured = await warmupBuild(context, dir, cacheDir, "project.jsonl", extraEnv);
  // Hot copies are written after the hits that read bundles: count them once they are.
  await settleDaemons(runtimeDirFor(cacheDir));
  const hotBytes = await bytesUnder(join(cacheDir, "unpacked"));
  const sizes = {
    targetBytes: await bytesUnder(join(dir, "target/debug")),
    cacheBytes: await bytesUnder(join(cacheDir, "bundles")) + hotBytes,
    hotBytes,
    // What the disk holds for the cache and both copies' target dirs, a file linked from several
    // of them counted once.
    twoTargetsBytes: await distinctBytesUnder([
      join(cacheDir, "bundles"),
      join(cacheDir, "unpacked"),
      join(sibling, "target/debug"),
      join(dir, "target/debug"),
    ]),
  };
  return { ...measured, details: { ...measured.details, ...sizes } };
}

/** Bytes of the regular files under `dirs`, each inode once (hard links share their bytes). */
async function distinctBytesUnder(dirs: string[]): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (dir: string) => {
    const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => [] as Deno.DirEntry[]);
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile) {
        const info = await Deno.stat(path);
        const inode = `${info.dev}:${info.ino}`;
        if (seen.has(inode)) continue;
        seen.add(inode);
        total += info.size;
      }
    }
  };
  for (const dir of dirs) await walk(dir);
  return total;
}

const warm: Way = {
  id: "warm",
  label: "cargo-warmup (daemon), warmed by a sibling",
  baselines: ["floor", "limit", "sccache"],
  measure: (context) => warmedBySibling(context),
};

// The same build with a hot copy of every entry, as if the hot budget were unbounded: what the
// default budget (and staging, for the entries without one) is read against.
const warmAllHot: Way = {
  id: "warm-all-hot",
  label: "cargo-warmup (daemon), every entry hot (hot-size=10G)",
  baselines: ["warm"],
  measure: (context) => warmedBySibling(context, { CARGO_WARMUP_HOT_SIZE: "10G" }),
};

// The same build with placing off: every dependency goes through a call, as before units were
// placed in target/ before cargo looks (src/place/).
const warmUnplaced: Way = {
  id: "warm-unplaced",
  label: "cargo-warmup (daemon), warmed by a sibling, place = false",
  baselines: ["floor", "warm"],
  measure: (context) => warmedBySibling(context, { CARGO_WARMUP_PLACE: "0" }),
};

// The same build on a daemon the build itself starts (a CI container with the cache restored).
const warmFreshDaemon: Way = {
  // A short id: the scratch dir is named after it, and the daemon's socket path must fit 107 bytes.
  id: "fresh",
  label: "cargo-warmup, daemon started by the build (cache present, no daemon running)",
  baselines: ["warm"],
  measure: (context) => warmedBySibling(context, {}, { freshDaemon: true }),
};

// The same build with every call served by its own process, as before the daemon.
const warmInProcess: Way = {
  id: "warm-in-process",
  label: "cargo-warmup in-process (CARGO_WARMUP_DAEMON=0), warmed by a sibling",
  baselines: ["floor", "warm"],
  measure: (context) => warmedBySibling(context, { CARGO_WARMUP_DAEMON: "0" }),
};

// Two machines sharing one cache: crates come from a crates.io-style registry on loopback, and
// each machine's CARGO_HOME unpacks them at its own path (tests/_sparse_registry.ts). Machine B
// fetches its crates untimed, as the floor has its sources at hand.
const secondMachine: Way = {
  id: "second-machine",
  label: "cargo-warmup (daemon), second machine (other CARGO_HOME, registry layout)",
  baselines: ["floor", "warm"],
  async measure(context) {
    await using registry = await startSparseRegistry();
    const cacheDir = join(context.work, "cache");
    const machine = async (name: string) => {
      const cargoHome = await createRegistryCargoHome(
        join(context.work, name, "cargo-home"),
        registry.indexUrl,
      );
      const dir = await copyFixture(context.fixture, join(context.work, name, "project"));
      // The checked-in lockfile has the directory source's checksums, not the registry's.
      await Deno.remove(join(dir, "Cargo.lock"));
      const fetch = await runCargo(["fetch"], { cwd: dir, env: { CARGO_HOME: cargoHome } });
      if (fetch.code !== 0) throw new Error(`Cannot fetch on ${name}: ${fetch.stderr}`);
      return { machine: { ...context, cargoHome }, dir };
    };
    const a = await machine("machine-a");
    await warmupBuild(a.machine, a.dir, cacheDir, "machine-a.jsonl");
    const b = await machine("machine-b");
    return await warmupBuild(b.machine, b.dir, cacheDir, "machine-b.jsonl");
  },
};

// Several cold builds at once on one warm daemon, as on a CI runner building many jobs.
const parallel: Way = {
  id: "parallel",
  label: "cargo-warmup (daemon), 3 warm builds at once with -j 8 (wall time of all)",
  baselines: ["warm"],
  async measure(context) {
    const cacheDir = join(context.work, "cache");
    await warmupBuild(context, await project(context, "sibling"), cacheDir, "sibling.jsonl");
    const dirs = await Promise.all(["a", "b", "c"].map((name) => project(context, name)));
    const env = { ...warmupEnv({ cacheDir, cargoHome: context.cargoHome }), CARGO_BUILD_JOBS: "8" };
    const started = performance.now();
    await Promise.all(dirs.map((dir) => build(context, dir, env)));
    return { seconds: (performance.now() - started) / 1000 };
  },
};

const miss: Way = {
  id: "miss",
  label: "cargo-warmup, empty cache",
  baselines: ["plain"],
  async measure(context) {
    const cacheDir = join(context.work, "cache");
    return await warmupBuild(context, await project(context, "project"), cacheDir, "project.jsonl");
  },
};

// The seed-003 platform case: warm the template's dependencies, then a project created from the
// template builds for the first time. The warm-up's own time goes into the JSON details.
const initLockfile: Way = {
  id: "init-lockfile",
  label: "cargo-warmup, first build after init --lockfile",
  baselines: ["floor"],
  async measure(context) {
    const cacheDir = join(context.work, "cache");
    const template = await project(context, "template");
    const env = warmupEnv({ cacheDir, cargoHome: context.cargoHome });
    const started = performance.now();
    const init = await runWarmup(
      ["init", "--lockfile", join(template, "Cargo.lock"), "--profile", "dev", "--quiet"],
      { env },
    );
    if (init.code !== 0) throw new Error(`init --lockfile failed: ${init.stderr}`);
    const initSeconds = (performance.now() - started) / 1000;
    const result = await warmupBuild(
      context,
      await project(context, "project"),
      cacheDir,
      "project.jsonl",
    );
    return { seconds: result.seconds, details: { ...result.details, initSeconds } };
  },
};

// Seed 003's upgrade case: the project was last built with the old toolchain (Debian's cargo 0.66
// and rustc 1.63), `init --rewarm` runs with the current one (its time goes into the details),
// then a fresh copy of the project builds for the first time with the current one.
const upgrade: Way = {
  id: "upgrade",
  label: "cargo-warmup, first build after a rustc upgrade and init --rewarm",
  baselines: ["floor", "plain"],
  async measure(context) {
    const cacheDir = join(context.work, "cache");
    const env = warmupEnv({ cacheDir, cargoHome: context.cargoHome });
    const old = await project(context, "old-toolchain");
    await Deno.remove(join(old, "Cargo.lock"));
    const oldBuild = await runOldCargo(["build"], { cwd: old, env });
    // seed003's own code needs a newer rustc than 1.63 (std::future::poll_fn): what matters is
    // that every dependency built, as on the platform before its upgrade.
    const members = await workspaceMembers(context, old);
    const onlyOwnFailed = [...oldBuild.stderr.matchAll(/could not compile `([^`]+)`/g)]
      .every((match) => members.includes(match[1]!));
    if (oldBuild.code !== 0 && !onlyOwnFailed) {
      throw new Error(`The old toolchain's build failed: ${oldBuild.stderr}`);
    }
    const started = performance.now();
    const rewarm = await runWarmup(["init", "--rewarm", "--quiet"], { env });
    if (rewarm.code !== 0) throw new Error(`init --rewarm failed: ${rewarm.stderr}`);
    const rewarmSeconds = (performance.now() - started) / 1000;
    const result = await warmupBuild(
      context,
      await project(context, "project"),
      cacheDir,
      "project.jsonl",
    );
    return { seconds: result.seconds, details: { ...result.details, rewarmSeconds } };
  },
};

/**
 * Every row, in the order they run and print. The floor runs first: its untimed build also reads
 * the crate sources into the page cache, so the first timed row is not penalised for it.
 */
export const WAYS: Way[] = [
  floor,
  limit,
  plain,
  sccache,
  warm,
  warmAllHot,
  warmUnplaced,
  warmFreshDaemon,
  warmInProcess,
  secondMachine,
  parallel,
  initLockfile,
  upgrade,
  miss,
];

async function sccacheCommand(args: string[], env: Record<string, string>): Promise<string> {
  const output = await new Deno.Command("sccache", {
    args,
    clearEnv: true,
    env: { ...cleanEnv(), ...env },
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  if (!output.success) throw new Error(`Cannot run "sccache ${args.join(" ")}": ${text.trim()}`);
  return text;
}
