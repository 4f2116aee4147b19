// Staging with real cargo and the daemon: a build in a new checkout of a graph the cache has seen
// (same Cargo.lock, another directory: a new worktree, a CI job) takes its entries as the daemon
// made them ready ahead of cargo; a prediction that is partly wrong (another feature set) costs
// nothing but background work, and every build's binary is right.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  copySharedWarmCache,
  createCargoHome,
  type DispatchLogEntry,
  readDispatchLog,
  runBinary,
  runCargo,
  tempDir,
  warmupEnv,
} from "./_harness.ts";

const staged = (entries: DispatchLogEntry[]) =>
  entries.filter((entry) =>
    entry.outcome === "hit" && (entry.phases as Record<string, number> | undefined)?.staged
  );

Deno.test("a new checkout's build takes the entries staged for it", async (t) => {
  await using dir = await tempDir("cargo-warmup-staging-");
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const build = async (fixture: string, name: string) => {
    const project = await copyFixture(fixture, join(dir.path, name));
    const log = join(dir.path, `${name}.jsonl`);
    const result = await runCargo(["build", "--locked"], {
      cwd: project,
      env: warmupEnv({ cacheDir, cargoHome, log }),
    });
    assert.equal(result.code, 0, result.stderr);
    return { project, entries: await readDispatchLog(log) };
  };

  await t.step(
    "a new checkout of a lockfile the cache has built takes staged entries",
    async () => {
      // The shared warm cache's journal holds the build of seed001 that warmed it.
      const second = await build("seed001", "second");
      const hits = second.entries.filter((entry) => entry.outcome === "hit");
      assert.equal(second.entries.filter((entry) => entry.outcome === "miss").length, 0);
      // Entries with a hot copy are not staged; every other hit should have been.
      const count = staged(second.entries).length;
      assert.ok(count >= 10, `${count} of ${hits.length} staged`);
      assert.match(await runBinary(join(second.project, "target", "debug", "server")), /server/);
    },
  );

  await t.step("a project never built before predicts nothing", async () => {
    const tiny = await build("tiny", "tiny");
    assert.equal(staged(tiny.entries).length, 0);
  });

  await t.step("a wrong prediction costs nothing: the build is right", async () => {
    const other = await build("seed001_extra_feature", "other");
    const missed = new Set(
      other.entries.filter((entry) => entry.outcome === "miss").map((entry) => entry.crate),
    );
    assert.ok(missed.has("serde"), "serde with another feature set was served");
    assert.ok(staged(other.entries).length > 0, "what did not change was not staged");
    assert.match(await runBinary(join(other.project, "target", "debug", "server")), /server/);
  });
});
