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
  waitUntil,
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

/**
 * Resolves once daemon `pid` of `runtimeDir` is gone (a SIGKILL is delivered, not awaited): it
 * runs no code any more, so it writes no more log lines.
 */
async function gone(runtimeDir: string, pid: number): Promise<void> {
  await waitUntil(() => !liveDaemons(runtimeDir).includes(pid), {
    what: `daemon ${pid} to die of its SIGKILL`,
    everyMs: 5,
  });
}

/** The dispatch log once `ready` holds for it; the deadline only bounds a hang. */
async function waitForLog(
  log: string,
  ready: (entries: DispatchLogEntry[]) => boolean,
): Promise<DispatchLogEntry[]> {
  return await waitUntil(async () => {
    const entries = await readDispatchLog(log);
    return ready(entries) && entries;
  }, { what: `the dispatch log ${log}` });
}

/** Waits until the daemon of `runtimeDir` runs (a build starts it without waiting for it). */
async function daemonUp(runtimeDir: string): Promise<number> {
  return await waitUntil(() => liveDaemons(runtimeDir)[0], { what: `a daemon in ${runtimeDir}` });
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
  const beforeKill = await waitUntil(async () => {
    const entries = await readDispatchLog(log);
    return entries.some((entry) => entry.via === "daemon" && entry.outcome === "hit") && entries;
  }, { what: "a unit the daemon served", everyMs: 5 });
  Deno.kill(pid, "SIGKILL");
  const linesAtKill = beforeKill.length;
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
  await w.build("tiny"); // starts the daemon and stores what tiny needs
  const pid = await daemonUp(w.runtimeDir);
  Deno.kill(pid, "SIGSTOP");
  let build;
  try {
    build = await w.build("tiny", { CARGO_WARMUP_DAEMON_TIMEOUT_MS: "300" });
    // Nothing served a call while the daemon hung, neither it nor the program in-process: each
    // front door gave up waiting and ran rustc itself.
    assert.deepEqual(build.entries, []);
  } finally {
    Deno.kill(pid, "SIGCONT");
  }
  assert.equal(await runBinary(join(build.project, "target/debug/tiny")), TINY_OUTPUT);
  // Resumed, the daemon reads the calls that waited for it and finds every client gone: it serves
  // none of them (their units were compiled by the front doors) and logs why.
  const units = (entries: DispatchLogEntry[]) =>
    entries.filter((entry) => entry.key !== undefined && entry.kind !== "build-run");
  const answered = await waitForLog(build.log, (entries) => units(entries).length >= 4);
  assert.deepEqual(registryUnits(answered), { hit: 0, miss: 0, "not-cacheable": 4 });
  for (const entry of units(answered)) {
    assert.equal(entry.via, "daemon", entry.crate);
    assert.equal(entry.reason, "client gone", entry.crate);
  }
});

Deno.test({
  name: "daemon: killed -9 at ten points through a build, every build succeeds",
  async fn() {
    const w = await workspace("shared-warm");
    await using _ = w.dir;
    // A served build of seed003: how many calls it makes, and the daemon started.
    const served = await w.build("seed003");
    const calls = served.entries.length;
    assert.ok(calls >= 30, `a served seed003 build made ${calls} calls`);
    const project = await copyFixture("seed003", join(w.dir.path, "loop"));
    for (let round = 0; round < 10; round++) {
      // Kill points spread over the build, each with at least ten calls still to come.
      const killAfter = 1 + Math.floor((round * (calls - 11)) / 9);
      await Deno.remove(join(project, "target"), { recursive: true }).catch(() => {});
      const log = join(w.dir.path, `loop-${round}.jsonl`);
      const env = warmupEnv({ cacheDir: w.cacheDir, cargoHome: w.cargoHome, log });
      // A build would start one itself, but at most every few seconds after a failure.
      assert.equal((await runWarmup(["daemon", "start"], { env })).code, 0);
      const daemons = liveDaemons(w.runtimeDir);
      assert.equal(daemons.length, 1, `round ${round}: daemons ${daemons}`);
      const pid = daemons[0]!;

      let finished = false;
      const building = runCargo(["build", "--locked"], { cwd: project, env }).finally(() => {
        finished = true;
      });
      const beforeKill = await waitUntil(async () => {
        const entries = await readDispatchLog(log);
        if (entries.length >= killAfter) return entries;
        assert.ok(!finished, `round ${round}: the build ended before call ${killAfter}`);
      }, { what: `call ${killAfter} of round ${round}`, everyMs: 2 });
      Deno.kill(pid, "SIGKILL");
      await gone(w.runtimeDir, pid);
      // Every line after this one was written once the daemon was dead.
      const linesAtKill = (await readDispatchLog(log)).length;
      const result = await building;
      assert.equal(result.code, 0, `round ${round}: ${result.stderr}`);
      assert.match(await runBinary(join(project, "target/debug/template")), /status 200 OK/);

      const entries = await readDispatchLog(log);
      assert.ok(
        beforeKill.slice(0, killAfter).every((entry) => entry.via === "daemon"),
        `round ${round}: the calls before the kill were the daemon's`,
      );
      assert.ok(
        entries.length > linesAtKill,
        `round ${round}: the build made calls after the kill (after call ${linesAtKill})`,
      );
    }
    // After all that, the cache still serves everything.
    await w.build("seed003");
    const after = await w.build("seed003");
    assert.deepEqual(registryUnits(after.entries), registryUnits(served.entries));
    assert.equal(registryUnits(after.entries).miss, 0);
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
