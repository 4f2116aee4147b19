// `cargo-warmup explain` with real cargo: a project that turns on one feature deep in the graph
// (proc-macro2's span-locations, fixture seed001_span_locations) after seed001 was cached gets
// that one root cause named, with the crates it made miss; one crate's story; "never cached".

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  copySharedWarmCache,
  createCargoHome,
  readDispatchLog,
  runCargo,
  runWarmup,
  tempDir,
  warmupEnv,
} from "./_harness.ts";

interface CallName {
  crate: string;
  version: string;
  kind: string;
}

Deno.test("explain names the one feature deep in the graph that made a build miss", async (t) => {
  await using dir = await tempDir("cargo-warmup-explain-");
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const project = await copyFixture("seed001_span_locations", join(dir.path, "project"));
  const log = join(dir.path, "dispatch.jsonl");
  const env = warmupEnv({ cacheDir, cargoHome, log });
  const build = await runCargo(["build", "--locked"], { cwd: project, env });
  assert.equal(build.code, 0, build.stderr);
  const missed = (await readDispatchLog(log)).filter((entry) => entry.outcome === "miss");
  const explain = (args: string[]) => runWarmup(["explain", ...args], { cwd: project, env });

  await t.step("--last: one root cause, with every crate it made miss", async () => {
    const result = await explain(["--last", "--json"]);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      build: { compiled: number; served: number };
      rootCauses: Array<CallName & { reasons: string[]; made: CallName[] }>;
    };
    assert.equal(report.build.compiled, missed.length);
    assert.ok(report.build.served > 10, `only ${report.build.served} served`);
    assert.equal(report.rootCauses.length, 1, JSON.stringify(report.rootCauses, null, 1));
    const [cause] = report.rootCauses;
    assert.equal(cause!.crate, "proc-macro2");
    assert.ok(cause!.reasons.includes("feature `span-locations` added"), cause!.reasons.join());
    const made = new Set(cause!.made.map((call) => call.crate));
    for (const crate of ["proc-macro2", "quote", "syn", "serde_derive", "serde", "serde_json"]) {
      assert.ok(made.has(crate), `${crate} not among the crates it made miss`);
    }
    // Every miss of the build is accounted for by that cause.
    assert.equal(cause!.made.length, missed.length);
  });

  await t.step("the text form says the same in a sentence", async () => {
    const result = await explain(["--last"]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /1 root cause of \d+ misses/);
    assert.match(result.stdout, /proc-macro2 1\.0\.\d+: feature `span-locations` added/);
  });

  await t.step("a crate that missed because of a dependency says which and why", async () => {
    const result = await explain(["syn", "--json"]);
    assert.equal(result.code, 0, result.stderr);
    const { calls } = JSON.parse(result.stdout) as {
      calls: Array<{ outcome: string; kind: string; nearest?: string; roots: CallName[] }>;
    };
    const lib = calls.find((call) => call.kind === "lib");
    assert.equal(lib?.outcome, "miss");
    assert.ok(lib?.nearest, "no cached entry compared");
    assert.deepEqual(lib?.roots.map((root) => root.crate), ["proc-macro2"]);
    const text = await explain(["syn"]);
    assert.match(
      text.stdout,
      /because its dependency proc-macro2 \S+ missed: feature `span-locations`/,
    );
  });

  await t.step("a served crate says it was served; an unknown one was never cached", async () => {
    const served = await explain(["itoa"]);
    assert.equal(served.code, 0, served.stderr);
    assert.match(served.stdout, /itoa \S+: hit\n {2}served/);
    const unknown = await explain(["no-such-crate"]);
    assert.match(unknown.stdout, /no-such-crate: never cached/);
  });

  await t.step("bad use gets a clear error", async () => {
    const bare = await explain([]);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /say --last, --build ID or a crate/);
    const elsewhere = await runWarmup(["explain", "--last"], { cwd: dir.path, env });
    assert.equal(elsewhere.code, 1);
    assert.match(elsewhere.stderr, /no build of this project/);
  });
});
