// `cargo-warmup init` end to end with real cargo and Debian's packaged crates: tiers fill the
// cache so new projects are served, a template's lockfile warms projects made from it, missing
// crates are skipped, and background warm-ups report to status (--rewarm after a real toolchain
// upgrade: upgrade_test.ts). Everything builds the dev profile only, to keep the suite's compile
// time small.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  countOutcomes,
  createCargoHome,
  readDispatchLog,
  registryMisses,
  runCargo,
  runWarmup,
  tempDir,
  waitUntil,
  warmupEnv,
} from "./_harness.ts";
import { warmupStatusLines } from "../src/warm/background.ts";
import { readWarmState } from "../src/warm/progress.ts";

async function runBinary(path: string): Promise<string> {
  const output = await new Deno.Command(path, { stdin: "null" }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

/** A new project on tier-1 crates, the way a service would combine them. */
async function writeServiceProject(dir: string): Promise<string> {
  await Deno.mkdir(join(dir, "src"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, "Cargo.toml"),
    `[package]
name = "service"
version = "0.1.0"
edition = "2021"

[dependencies]
anyhow = "1"
serde = { version = "1", features = ["derive"] }
serde_json = "1"
tokio = { version = "1", features = ["full"] }
`,
  );
  await Deno.writeTextFile(
    join(dir, "src", "main.rs"),
    `#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct Job { id: u32, name: String }

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let job: Job = serde_json::from_str(r#"{"id":7,"name":"warm"}"#)?;
    let handle = tokio::spawn(async move { serde_json::to_string(&job) });
    println!("{}", handle.await??);
    Ok(())
}
`,
  );
  return dir;
}

Deno.test("init --tier=1 fills the cache, serves a new project and is a no-op the second time", async (t) => {
  await using dir = await tempDir("cargo-warmup-init-tier-");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const cacheDir = join(dir.path, "cache");
  const initLog = join(dir.path, "init.jsonl");
  const env = warmupEnv({ cacheDir, cargoHome, log: initLog });

  await t.step("the first init compiles tier 1", async () => {
    const init = await runWarmup(["init", "--tier=1", "--profile", "dev"], { env });
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /warmed \d+ units/);
    const entries = await readDispatchLog(initLog);
    const crates = new Set(registryMisses(entries).map((entry) => entry.crate));
    for (const crate of ["proc-macro2", "quote", "syn", "serde", "serde_json", "tokio", "anyhow"]) {
      assert.ok(crates.has(crate), `${crate} was not compiled into the cache`);
    }
    // Debian ships syn 1 only: tier 1's syn 2 entries are skipped, not fatal.
    assert.match(init.stderr, /warning: skipping syn 2/);
  });

  await t.step("a new project on tier-1 crates has every registry unit served", async () => {
    const project = await writeServiceProject(join(dir.path, "service"));
    const log = join(dir.path, "service.jsonl");
    const build = await runCargo(["build"], {
      cwd: project,
      env: warmupEnv({ cacheDir, cargoHome, log }),
    });
    assert.equal(build.code, 0, build.stderr);
    const entries = await readDispatchLog(log);
    const counts = countOutcomes(entries);
    assert.deepEqual(registryMisses(entries), [], "registry units compiled instead of served");
    assert.ok(counts.hit >= 30, `only ${counts.hit} units served`);
    assert.equal(
      await runBinary(join(project, "target", "debug", "service")),
      '{"id":7,"name":"warm"}\n',
    );
  });

  await t.step("the seed-001 workspace has every registry unit served", async () => {
    const project = await copyFixture("seed001", join(dir.path, "seed001"));
    const log = join(dir.path, "seed001.jsonl");
    const build = await runCargo(["build", "--locked"], {
      cwd: project,
      env: warmupEnv({ cacheDir, cargoHome, log }),
    });
    assert.equal(build.code, 0, build.stderr);
    const entries = await readDispatchLog(log);
    assert.deepEqual(registryMisses(entries).map((entry) => entry.crate), []);
    assert.ok(countOutcomes(entries).hit >= 20);
  });

  await t.step("status says tier 1 is warm for this rustc", async () => {
    const status = await runWarmup(["status"], { env });
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /warm for {5}rustc \S+: tier 1/);
  });

  await t.step("status counts the builds' calls apart from the warm-up's", async () => {
    const status = await runWarmup(["status", "--json"], { env });
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout) as {
      hits: number;
      misses: number;
      warmed: { compiled: number };
    };
    const builds = [
      ...await readDispatchLog(join(dir.path, "service.jsonl")),
      ...await readDispatchLog(join(dir.path, "seed001.jsonl")),
    ];
    assert.equal(report.hits, countOutcomes(builds).hit);
    const missed = builds.filter((entry) => entry.outcome === "miss");
    assert.equal(report.misses, missed.length, "the warm-up's compiles counted as the builds'");
    // The main job's build (init, then seed001) compiles nothing the cache could serve.
    const seed001 = await readDispatchLog(join(dir.path, "seed001.jsonl"));
    assert.equal(countOutcomes(seed001).miss, 0);
    assert.ok(report.warmed.compiled >= 30, `warmed ${report.warmed.compiled}`);
    const text = await runWarmup(["status"], { env });
    const rate = Math.round(report.hits / (report.hits + report.misses) * 100);
    assert.match(text.stdout, new RegExp(`hit rate ${rate}% \\(builds\\)`));
    assert.match(text.stdout, /warmed {7}\d+ units compiled by warm-ups/);
  });

  await t.step("a second init --tier=1 compiles nothing", async () => {
    const before = (await readDispatchLog(initLog)).length;
    const again = await runWarmup(["init", "--tier=1", "--profile", "dev"], { env });
    assert.equal(again.code, 0, again.stderr);
    // No unit looked up or compiled, only rustc asked its version: the warm-up record says every
    // unit is stored, so no build runs (what a bound on its time stood for, without the clock).
    const after = (await readDispatchLog(initLog)).slice(before);
    assert.deepEqual(
      after.filter((entry) => entry.key !== undefined || entry.kind !== "other"),
      [],
    );
    assert.match(
      again.stdout,
      /^already warm: \d+ units cached for rustc .*, nothing to build( \(\d+ skipped\))?$/m,
    );
  });
});

Deno.test("init --lockfile warms the hyper template so a project copied from it is served", async () => {
  await using dir = await tempDir("cargo-warmup-init-lockfile-");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const cacheDir = join(dir.path, "cache");
  const template = await copyFixture("seed003", join(dir.path, "template"));
  const init = await runWarmup(
    ["init", "--lockfile", join(template, "Cargo.lock"), "--profile", "dev"],
    { env: warmupEnv({ cacheDir, cargoHome }) },
  );
  assert.equal(init.code, 0, init.stderr);
  assert.ok(!(await Deno.stat(join(template, "target")).catch(() => undefined)));

  const project = await copyFixture("seed003", join(dir.path, "new-project"));
  const log = join(dir.path, "project.jsonl");
  const build = await runCargo(["build", "--locked"], {
    cwd: project,
    env: warmupEnv({ cacheDir, cargoHome, log }),
  });
  assert.equal(build.code, 0, build.stderr);
  const entries = await readDispatchLog(log);
  assert.deepEqual(registryMisses(entries), []);
  assert.ok(countOutcomes(entries).hit >= 20);
  assert.equal(
    await runBinary(join(project, "target", "debug", "template")),
    "status 200 OK\nbody ETALPMET OLLEH\n",
  );
});

Deno.test("init skips a tier entry the registry cannot resolve, with a warning", async () => {
  await using dir = await tempDir("cargo-warmup-init-skip-");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const cacheDir = join(dir.path, "cache");
  const log = join(dir.path, "init.jsonl");
  const tiers = join(dir.path, "tiers.toml");
  await Deno.writeTextFile(
    tiers,
    '[crates]\nitoa = "1"\nno-such-crate-anywhere = "1"\n"itoa@7" = {}\n' +
      '[stacks]\nboth = ["itoa", "no-such-crate-anywhere"]\n',
  );
  const init = await runWarmup(["init", "--tier-file", tiers, "--profile", "dev"], {
    env: warmupEnv({ cacheDir, cargoHome, log }),
  });
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stderr, /warning: skipping no-such-crate-anywhere 1: .*no matching package/);
  assert.match(init.stderr, /warning: skipping itoa 7:/);
  // The stack is kept without the missing crate.
  assert.doesNotMatch(init.stderr, /skipping stack both/);
  const crates = registryMisses(await readDispatchLog(log)).map((entry) => entry.crate);
  assert.deepEqual(crates, ["itoa"]);
});

Deno.test("init --background returns at once and status reports the warm-up", async () => {
  await using dir = await tempDir("cargo-warmup-init-background-");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const cacheDir = join(dir.path, "cache");
  const tiers = join(dir.path, "tiers.toml");
  await Deno.writeTextFile(tiers, '[crates]\nserde = { version = "1", features = [["derive"]] }\n');
  const env = warmupEnv({ cacheDir, cargoHome });
  const init = await runWarmup(["init", "--tier-file", tiers, "--profile", "dev", "--background"], {
    env,
  });
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stdout, /started in the background \(pid \d+\)/);
  // Returned at once, without the clock: the warm-up it started is still running.
  const running = (await warmupStatusLines(cacheDir, { ...Deno.env.toObject(), ...env })).join(
    "\n",
  );
  assert.match(running, /warm-up +running \(pid \d+, init --tier-file/);
  assert.match(running, /log: .*init-.*\.log/);

  const state = await waitUntil(async () => {
    const state = await readWarmState(cacheDir);
    return (state?.phase === "done" || state?.phase === "failed") && state;
  }, { what: "the background warm-up to end", everyMs: 500, timeoutMs: 600_000 });
  assert.equal(state.phase, "done", state.log && await Deno.readTextFile(state.log));
  const finished = (await warmupStatusLines(cacheDir, { ...Deno.env.toObject(), ...env })).join(
    "\n",
  );
  assert.match(finished, /last warm-up init --tier-file .*finished .*warmed \d+ units/);
  // The child records "done" before init prints its summary to the log: wait for the line.
  const log = await waitUntil(async () => {
    const text = await Deno.readTextFile(state.log!);
    return /warmed \d+ units/.test(text) && text;
  }, { what: "the warm-up's summary in its log", everyMs: 200, timeoutMs: 60_000 });
  assert.match(log, /warmed \d+ units/);
});
