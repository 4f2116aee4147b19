// A daemon that lives across many builds, with real cargo: it follows its cache directory when
// the directory is removed (between builds, and in the middle of one), it keeps only a few caches
// open however many it has served, it lets go of removed directories' files, and a long series of
// warm builds leaves its open files where they were.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  countOutcomes,
  createCargoHome,
  liveDaemons,
  readDispatchLog,
  removeAll,
  runBinary,
  runCargo,
  runWarmup,
  tempDir,
  warmupEnv,
} from "./_harness.ts";
import type { DaemonStatus } from "../src/daemon/server.ts";

const TINY_OUTPUT = "tiny 4096 unix Some(2)\n";

/** A scratch dir with a CARGO_HOME and one runtime dir (one daemon) for every cache. */
async function lab() {
  const dir = await tempDir("cargo-warmup-lifetime-");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const runtimeDir = join(dir.path, "run");
  let builds = 0;
  const envFor = (cacheDir: string, extra: Record<string, string> = {}) => ({
    ...warmupEnv({ cacheDir, cargoHome }),
    CARGO_WARMUP_RUNTIME_DIR: runtimeDir,
    ...extra,
  });
  /** Builds a fresh copy of `fixture` against `cacheDir`; returns the dispatch log's outcomes. */
  const build = async (
    cacheDir: string,
    extra: Record<string, string> = {},
    fixture = "tiny",
  ) => {
    const project = await copyFixture(fixture, join(dir.path, `${fixture}-${++builds}`));
    const log = join(dir.path, `dispatch-${builds}.jsonl`);
    const env = { ...envFor(cacheDir, extra), CARGO_WARMUP_LOG: log };
    const result = await runCargo(["build", "--locked"], { cwd: project, env });
    assert.equal(result.code, 0, `build ${builds} failed:\n${result.stderr}`);
    const entries = await readDispatchLog(log);
    // Crate compiles; build-script runs are counted apart.
    const units = countOutcomes(entries, (e) => e.key !== undefined && e.kind !== "build-run");
    // What status counts: crate compiles and build-script runs alike.
    const calls = countOutcomes(entries, (e) => e.key !== undefined);
    return { project, log, result, units, calls };
  };
  /** `cargo-warmup status --json` for `cacheDir` (after the daemon has settled). */
  const status = async (cacheDir: string) => {
    const run = await runWarmup(["status", "--json"], { env: envFor(cacheDir) });
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as {
      entries: number;
      bytes: number;
      hits: number;
      misses: number;
    };
  };
  /** What the one daemon of this lab holds, as `cargo-warmup daemon status --json` says. */
  const daemon = async (): Promise<DaemonStatus> => {
    const run = await runWarmup(["daemon", "status", "--json"], { env: envFor("unused") });
    assert.equal(run.code, 0, run.stderr);
    const { daemons } = JSON.parse(run.stdout) as {
      daemons: Array<{ running: boolean; holds?: DaemonStatus }>;
    };
    const live = daemons.filter((d) => d.running);
    assert.equal(live.length, 1, `one daemon runs: ${run.stdout}`);
    assert.ok(live[0]!.holds, "the daemon answers a status request");
    return live[0]!.holds;
  };
  return { dir, cargoHome, runtimeDir, envFor, build, status, daemon };
}

/** The daemon's open files that are deleted files under `dir`. */
const deletedUnder = (state: DaemonStatus, dir: string) =>
  state.deletedFiles.filter((path) => path.startsWith(dir));

Deno.test("daemon lifetime: rm -rf of the cache between builds is followed, and a cap set then holds", async () => {
  const l = await lab();
  await using _ = l.dir;
  const cacheDir = join(l.dir.path, "cache");

  const first = await l.build(cacheDir);
  assert.ok(
    first.units.miss >= 3,
    `the first build stores its crates: ${JSON.stringify(first.units)}`,
  );
  await removeAll(cacheDir);

  const second = await l.build(cacheDir);
  assert.equal(second.units.hit, 0, "an emptied cache serves nothing");
  const counted = await l.status(cacheDir);
  assert.equal(counted.misses, second.calls.miss, "the new index counts the build after rm -rf");
  assert.ok(counted.entries >= second.units.miss, "and its entries are on disk");
  assert.deepEqual(
    deletedUnder(await l.daemon(), cacheDir),
    [],
    "the daemon holds no deleted file",
  );

  const third = await l.build(cacheDir);
  assert.equal(third.units.miss, 0, `the next build is served: ${JSON.stringify(third.units)}`);
  assert.equal(await runBinary(join(third.project, "target", "debug", "tiny")), TINY_OUTPUT);

  // A cap far below what is stored, set now, and a build that stores (another opt-level): the
  // daemon's size keeper works on the new directory and holds the cap.
  const cap = 256 * 1024;
  const capped = await l.build(cacheDir, {
    CARGO_WARMUP_MAX_SIZE: "256K",
    CARGO_PROFILE_DEV_OPT_LEVEL: "1",
  });
  assert.ok(capped.units.miss >= 3, `another opt-level is stored: ${JSON.stringify(capped.units)}`);
  const after = await l.status(cacheDir);
  assert.ok(after.bytes <= cap, `the cap holds: ${after.bytes} bytes in ${after.entries} entries`);
});

Deno.test("daemon lifetime: the cache removed in the middle of a build costs nothing, and the daemon lets go of it", async () => {
  const l = await lab();
  await using _ = l.dir;
  const cacheDir = join(l.dir.path, "cache");
  // The fixture's build script removes the cache directory while the build runs.
  const first = await l.build(cacheDir, { WIPE_DIR: cacheDir }, "wipe_cache");
  assert.match(await runBinary(join(first.project, "target", "debug", "wipe-cache")), /wiped/);
  const next = await l.build(cacheDir, { WIPE_DIR: join(l.dir.path, "elsewhere") }, "wipe_cache");
  assert.equal(await runBinary(join(next.project, "target", "debug", "wipe-cache")), "wiped\n");
  assert.deepEqual(
    deletedUnder(await l.daemon(), cacheDir),
    [],
    "the daemon holds no deleted file",
  );
  const counted = await l.status(cacheDir);
  assert.ok(
    counted.misses + counted.hits >= next.units.miss + next.units.hit,
    `the index counts the build after the wipe: ${JSON.stringify(counted)}`,
  );
});

Deno.test("daemon lifetime: many cache directories on one daemon, few open; removed ones let go", async () => {
  const l = await lab();
  await using _ = l.dir;
  const seed = join(l.dir.path, "cache-0");
  await l.build(seed);
  const caches = [seed];
  for (let i = 1; i < 20; i++) {
    const copy = join(l.dir.path, `cache-${i}`);
    await new Deno.Command("cp", { args: ["-a", seed, copy] }).output();
    caches.push(copy);
  }
  for (const cacheDir of caches.slice(1)) {
    const { units } = await l.build(cacheDir);
    assert.equal(units.miss, 0, `a copy of a warm cache serves: ${JSON.stringify(units)}`);
  }
  const state = await l.daemon();
  const open = state.caches.filter((cache) => !cache.retired);
  assert.ok(open.length <= 4, `at most 4 caches stay open, not ${open.length}`);
  const indexFiles = (await openIndexFiles(state.pid)).length;
  assert.ok(indexFiles <= 4 * 3, `index handles are bounded too (${indexFiles} open)`);

  for (const cacheDir of caches) await removeAll(cacheDir);
  const after = await l.daemon();
  assert.deepEqual(deletedUnder(after, l.dir.path), [], "removed directories' files are let go");
});

Deno.test("daemon lifetime: a series of warm builds leaves its open files where they were", async () => {
  const l = await lab();
  await using _ = l.dir;
  const cacheDir = join(l.dir.path, "cache");
  await l.build(cacheDir);
  const samples: Array<{ openFiles: number | undefined; rssMiB: number; heapMiB: number }> = [];
  for (let round = 0; round < 12; round++) {
    const { units } = await l.build(cacheDir);
    assert.equal(units.miss, 0);
    const state = await l.daemon();
    samples.push({
      openFiles: state.openFiles,
      rssMiB: Math.round(state.rssBytes / 2 ** 20),
      heapMiB: Math.round(state.heapUsedBytes / 2 ** 20),
    });
  }
  console.log(`open files and RSS (MiB) per warm build: ${JSON.stringify(samples)}`);
  const heap = samples.map((sample) => sample.heapMiB);
  const early = Math.max(...heap.slice(0, 3));
  assert.ok(
    Math.max(...heap.slice(3)) <= 2 * early + 8,
    `the JavaScript heap does not grow with builds: ${heap.join(", ")} MiB`,
  );
  const settled = samples.slice(3).map((sample) => sample.openFiles ?? 0);
  assert.ok(
    Math.max(...settled) - Math.min(...settled) <= 2,
    `open files stay level after the first rounds: ${settled.join(", ")}`,
  );
});

/** The index files (`index.db`, `-wal`, `-shm`) the process `pid` has open. */
async function openIndexFiles(pid: number): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(`/proc/${pid}/fd`)) {
    try {
      const target = await Deno.readLink(`/proc/${pid}/fd/${entry.name}`);
      if (/index\.db(-wal|-shm)?( \(deleted\))?$/.test(target)) found.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return found;
}

Deno.test("daemon lifetime: an index overwritten or truncated under the daemon is set aside, never a hang", async () => {
  const l = await lab();
  await using _ = l.dir;
  const cacheDir = join(l.dir.path, "cache");
  const index = join(cacheDir, "index.db");
  await l.build(cacheDir);

  // Garbage copied over the index (a new file, as `cp` of a bad backup leaves it), journals gone.
  await Deno.writeTextFile(`${index}.tmp`, "this is no database, only garbage\n".repeat(200));
  await Deno.rename(`${index}.tmp`, index);
  for (const journal of [`${index}-wal`, `${index}-shm`]) {
    await Deno.remove(journal).catch(() => {});
  }
  const status = await runWarmup(["status", "--json"], { env: l.envFor(cacheDir) });
  assert.equal(status.code, 0, `status survives a garbage index:\n${status.stderr}`);
  assert.match(status.stderr, /cache index .*index\.db is unreadable .*set aside as .*broken-/);
  const setAside = [...Deno.readDirSync(cacheDir)].filter((e) => e.name.includes(".broken-"));
  assert.ok(setAside.length >= 1, "the garbage is kept aside for a look");

  const served = await l.build(cacheDir);
  assert.equal(served.units.miss, 0, "the bundles still serve with a new index");
  assert.equal(await runBinary(join(served.project, "target", "debug", "tiny")), TINY_OUTPUT);
  const counted = await l.status(cacheDir);
  assert.ok(counted.hits >= served.units.hit, `the new index counts: ${JSON.stringify(counted)}`);

  await Deno.truncate(index, 0);
  const started = Date.now();
  const again = await runWarmup(["status", "--json"], { env: l.envFor(cacheDir) });
  assert.equal(again.code, 0, `status survives a truncated index:\n${again.stderr}`);
  const rebuilt = await l.build(cacheDir);
  assert.equal(rebuilt.units.miss, 0);
  assert.ok(Date.now() - started < 120_000, "no build or status waits minutes on the index");
  assert.deepEqual(deletedUnder(await l.daemon(), cacheDir), []);
});

Deno.test("daemon lifetime: a daemon paused past its clients' timeout writes nothing for them once resumed", async () => {
  const l = await lab();
  await using _ = l.dir;
  const cacheDir = join(l.dir.path, "cache");
  await l.build(cacheDir);
  const { pid } = await l.daemon();
  Deno.kill(pid, "SIGSTOP");
  let paused;
  try {
    // Every call waits half a second for the stopped daemon, then compiles by itself.
    paused = await l.build(cacheDir, { CARGO_WARMUP_DAEMON_TIMEOUT_MS: "500" });
  } finally {
    Deno.kill(pid, "SIGCONT");
  }
  assert.equal(await runBinary(join(paused.project, "target", "debug", "tiny")), TINY_OUTPUT);
  // Resumed, the daemon reads the requests its clients gave up on; `status` waits for it.
  await l.status(cacheDir);
  const late = (await readDispatchLog(paused.log)).filter((entry) => entry.outcome === "hit");
  assert.deepEqual(late.map((entry) => entry.crate), [], "no abandoned request was served");
  const after = await l.build(cacheDir);
  assert.equal(after.units.miss, 0, "and the daemon serves the next build");
});

Deno.test("daemon lifetime: a runtime directory open to others is said once per build and in status", async () => {
  const l = await lab();
  await using _ = l.dir;
  const cacheDir = join(l.dir.path, "cache");
  await Deno.mkdir(l.runtimeDir, { mode: 0o700 });
  await Deno.chmod(l.runtimeDir, 0o777);
  const { result, units } = await l.build(cacheDir);
  const said = result.stderr.match(/runtime directory .* is open to others/g) ?? [];
  assert.equal(said.length, 1, `said once per build:\n${result.stderr}`);
  assert.ok(units.miss >= 3, "the build still goes through the cache, in process");
  assert.deepEqual(liveDaemons(l.runtimeDir), [], "no daemon listens in a directory others enter");
  const status = await runWarmup(["status"], { env: l.envFor(cacheDir) });
  assert.match(status.stdout, /daemon +cannot run: runtime directory .* is open to others/);
});
