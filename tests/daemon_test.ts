// Builds through the front door and the daemon, with real cargo: the daemon starts by itself and
// serves; it can be switched off; and whatever happens to it (killed mid-build, again and again,
// stopped so it hangs, an unsafe runtime dir) every build succeeds and the next one is served.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  copySharedWarmCache,
  countOutcomes,
  createCargoHome,
  type DispatchLogEntry,
  liveDaemons,
  readDispatchLog,
  runBinary,
  runCargo,
  runtimeDirFor,
  runWarmup,
  tempDir,
  warmupEnv,
} from "./_harness.ts";

const TINY_OUTPUT = "tiny 4096 unix Some(2)\n";

/** A scratch dir with a CARGO_HOME and a cache, and a way to build a fresh copy of a fixture. */
async function workspace(cache: "empty" | "shared-warm") {
  const dir = await tempDir("cargo-warmup-daemon-build-");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const cacheDir = join(dir.path, "cache");
  if (cache === "shared-warm") await copySharedWarmCache(cacheDir);
  let builds = 0;
  const build = async (fixture: string, extraEnv: Record<string, string> = {}) => {
    const project = await copyFixture(fixture, join(dir.path, `${fixture}-${++builds}`));
    const log = join(dir.path, `dispatch-${builds}.jsonl`);
    const env = { ...warmupEnv({ cacheDir, cargoHome, log }), ...extraEnv };
    const result = await runCargo(["build", "--locked"], { cwd: project, env });
    assert.equal(result.code, 0, `build ${builds} failed:\n${result.stderr}`);
    return { project, log, entries: await readDispatchLog(log), result };
  };
  return { dir, cacheDir, cargoHome, runtimeDir: runtimeDirFor(cacheDir), build };
}

/** Outcomes of the build's rustc units (build-script runs are counted apart). */
const registryUnits = (entries: DispatchLogEntry[]) =>
  countOutcomes(entries, (entry) => entry.key !== undefined && entry.kind !== "build-run");

/** Waits until the daemon of `runtimeDir` runs (a build starts it without waiting for it). */
async function daemonUp(runtimeDir: string): Promise<number> {
  for (let waited = 0; waited < 15_000; waited += 50) {
    const [pid] = liveDaemons(runtimeDir);
    if (pid !== undefined) return pid;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no daemon started in ${runtimeDir}`);
}

Deno.test("daemon: the first build starts it, later builds are served by it", async () => {
  const w = await workspace("empty");
  await using _ = w.dir;
  const first = await w.build("tiny");
  assert.equal(registryUnits(first.entries).miss, 4, "cold: every registry unit compiled");
  await daemonUp(w.runtimeDir);

  const second = await w.build("tiny");
  assert.deepEqual(registryUnits(second.entries), { hit: 4, miss: 0, "not-cacheable": 0 });
  assert.ok(second.entries.every((entry) => entry.via === "daemon"), "served by the daemon");
  assert.equal(await runBinary(join(second.project, "target/debug/tiny")), TINY_OUTPUT);
  // A miss compiled by the front door and stored by the daemon after it left, then served.
  const third = await w.build("seed003");
  const fourth = await w.build("seed003");
  assert.ok(registryUnits(third.entries).miss > 0);
  assert.equal(registryUnits(fourth.entries).miss, 0, "every unit the third build stored serves");
  assert.ok(fourth.entries.filter((entry) => entry.key).every((entry) => entry.via === "daemon"));
});

Deno.test("daemon: CARGO_WARMUP_DAEMON=0 serves every call in-process and starts none", async () => {
  const w = await workspace("shared-warm");
  await using _ = w.dir;
  const build = await w.build("seed003", { CARGO_WARMUP_DAEMON: "0" });
  assert.equal(registryUnits(build.entries).miss, 0);
  assert.ok(
    build.entries.filter((entry) => entry.key).every((entry) => entry.via === "in-process"),
  );
  assert.deepEqual(liveDaemons(w.runtimeDir), []);
});

Deno.test("daemon: an unsafe runtime dir is never used; builds serve themselves", async () => {
  const w = await workspace("shared-warm");
  await using _ = w.dir;
  await Deno.mkdir(w.runtimeDir, { mode: 0o755 });
  await Deno.chmod(w.runtimeDir, 0o755);
  const build = await w.build("seed003");
  assert.equal(registryUnits(build.entries).miss, 0);
  assert.deepEqual(liveDaemons(w.runtimeDir), [], "no daemon in a directory others can enter");
  assert.ok(build.entries.every((entry) => entry.via !== "daemon"));
});

Deno.test("daemon: killed -9 in the middle of a warm build, the build succeeds", async () => {
  const w = await workspace("shared-warm");
  await using _ = w.dir;
  await w.build("tiny"); // starts the daemon
  const pid = await daemonUp(w.runtimeDir);

  // Kill it right after it served its first unit of the seed003 build: the rest of the build
  // must compile or serve without it.
  const project = await copyFixture("seed003", join(w.dir.path, "killed"));
  const log = join(w.dir.path, "killed.jsonl");
  const env = warmupEnv({ cacheDir: w.cacheDir, cargoHome: w.cargoHome, log });
  const building = runCargo(["build", "--locked"], { cwd: project, env });
  let linesAtKill = -1;
  for (let waited = 0; waited < 60_000 && linesAtKill < 0; waited += 5) {
    const entries = await readDispatchLog(log);
    if (entries.some((entry) => entry.via === "daemon" && entry.outcome === "hit")) {
      Deno.kill(pid, "SIGKILL");
      linesAtKill = entries.length;
    } else await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const result = await building;
  assert.equal(result.code, 0, result.stderr);
  assert.ok(linesAtKill > 0, "the daemon served a unit before it was killed");
  const entries = await readDispatchLog(log);
  assert.ok(entries.length > linesAtKill + 5, "the build went on well after the kill");
  assert.equal(await runBinary(join(project, "target/debug/template")).then(() => true), true);

  // A stale socket is left behind; the next build starts a new daemon and is served.
  await w.build("seed003");
  const next = await w.build("seed003");
  assert.equal(registryUnits(next.entries).miss, 0);
  assert.notEqual(await daemonUp(w.runtimeDir), pid);
});

Deno.test("daemon: a hung daemon costs a timeout, never the build", async () => {
  const w = await workspace("shared-warm");
  await using _ = w.dir;
  await w.build("tiny");
  const pid = await daemonUp(w.runtimeDir);
  Deno.kill(pid, "SIGSTOP");
  try {
    const build = await w.build("tiny", { CARGO_WARMUP_DAEMON_TIMEOUT_MS: "300" });
    assert.equal(await runBinary(join(build.project, "target/debug/tiny")), TINY_OUTPUT);
  } finally {
    Deno.kill(pid, "SIGCONT");
  }
});

Deno.test({
  name: "daemon: killed -9 during 100 short builds in a row, every build succeeds",
  async fn() {
    const w = await workspace("empty");
    await using _ = w.dir;
    await w.build("tiny");
    const project = await copyFixture("tiny", join(w.dir.path, "loop"));
    const log = join(w.dir.path, "loop.jsonl");
    const env = warmupEnv({ cacheDir: w.cacheDir, cargoHome: w.cargoHome, log });
    let kills = 0;
    for (let round = 0; round < 100; round++) {
      await Deno.remove(join(project, "target"), { recursive: true }).catch(() => {});
      // A build would start one itself, but at most every few seconds after a failure.
      assert.equal((await runWarmup(["daemon", "start"], { env })).code, 0);
      const building = runCargo(["build", "--locked"], { cwd: project, env });
      // Kill whatever daemon runs at a point that moves through the build from round to round.
      await new Promise((resolve) => setTimeout(resolve, (round * 7) % 120));
      for (const pid of liveDaemons(w.runtimeDir)) {
        Deno.kill(pid, "SIGKILL");
        kills++;
      }
      const result = await building;
      assert.equal(result.code, 0, `round ${round}: ${result.stderr}`);
      assert.equal(await runBinary(join(project, "target/debug/tiny")), TINY_OUTPUT);
    }
    assert.ok(kills >= 90, `the daemon was killed in most rounds (${kills})`);
    // After all that, the cache still serves everything.
    await daemonUp(w.runtimeDir).catch(() => w.build("tiny"));
    const after = await w.build("tiny");
    assert.deepEqual(registryUnits(after.entries), { hit: 4, miss: 0, "not-cacheable": 0 });
  },
});

Deno.test("daemon: one daemon serves several builds at once", async () => {
  const w = await workspace("shared-warm");
  await using _ = w.dir;
  await w.build("tiny");
  await daemonUp(w.runtimeDir);
  const builds = await Promise.all([w.build("seed003"), w.build("seed001"), w.build("seed003")]);
  for (const build of builds) assert.equal(registryUnits(build.entries).miss, 0);
  assert.equal(liveDaemons(w.runtimeDir).length, 1);
});
