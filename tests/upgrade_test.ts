// A rustc upgrade with two real toolchains: Debian's cargo 0.66 / rustc 1.63 in /usr/bin (the old
// one, installed by scripts/setup.sh) and the rustup toolchain on PATH (the new one). The old
// toolchain builds the seed-001 workspace through the cache, which remembers the project; the
// first build with the new rustc is told once, and with auto-rewarm the re-warm rebuilds the
// project's graph in the background; a fresh copy then has every registry unit served.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  createCargoHome,
  readDispatchLog,
  registryMisses,
  runBinary,
  runCargo,
  runOldCargo,
  stopDaemons,
  tempDir,
  waitUntil,
  warmupEnv,
} from "./_harness.ts";
import { runtimeDirFor } from "./_daemons.ts";
import { recordedProjects } from "../src/warm/project_graphs.ts";
import { readWarmState } from "../src/warm/progress.ts";

/** Waits until the background warm-up has finished; throws after `seconds` (a hang). */
async function backgroundWarmupFinished(cacheDir: string, seconds: number) {
  return await waitUntil(async () => {
    const state = await readWarmState(cacheDir);
    return (state?.phase === "done" || state?.phase === "failed") && state;
  }, { what: "the background re-warm", everyMs: 500, timeoutMs: seconds * 1000 });
}

Deno.test("after a rustc upgrade, the re-warm from the remembered project serves a fresh copy", async (t) => {
  await using dir = await tempDir("cargo-warmup-upgrade-");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const cacheDir = join(dir.path, "cache");
  const env = (log: string) => warmupEnv({ cacheDir, cargoHome, log: join(dir.path, log) });

  try {
    await t.step("the old toolchain's build is remembered as a project", async () => {
      const project = await copyFixture("seed001", join(dir.path, "old"));
      // Cargo 0.66 cannot read the checked-in lockfile (format 4): it resolves its own.
      await Deno.remove(join(project, "Cargo.lock"));
      const build = await runOldCargo(["build"], { cwd: project, env: env("old.jsonl") });
      assert.equal(build.code, 0, build.stderr);
      const entries = await readDispatchLog(join(dir.path, "old.jsonl"));
      assert.ok(
        registryMisses(entries).length > 20,
        "the old toolchain compiled through the cache",
      );
      const [recorded] = recordedProjects(cacheDir);
      assert.equal(recorded?.root, project);
      assert.equal(recorded?.rustc, "1.63.0");
      assert.equal(recorded?.profile, "dev");
    });

    await t.step("a remembered project whose lockfile no longer resolves is skipped", async () => {
      // A project built before everything else, whose locked crate is gone from the registry.
      const gone = join(cacheDir, "warm/projects/0000000000000000");
      await Deno.mkdir(join(gone, "tree/src"), { recursive: true });
      await Deno.writeTextFile(
        join(gone, "tree/Cargo.toml"),
        '[package]\nname = "gone"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nitoa = "99"\n',
      );
      await Deno.writeTextFile(join(gone, "tree/src/main.rs"), "");
      await Deno.writeTextFile(
        join(gone, "tree/Cargo.lock"),
        'version = 3\n\n[[package]]\nname = "gone"\nversion = "0.1.0"\ndependencies = ["itoa"]\n\n' +
          '[[package]]\nname = "itoa"\nversion = "99.0.0"\n' +
          'source = "registry+https://github.com/rust-lang/crates.io-index"\n',
      );
      await Deno.writeTextFile(
        join(gone, "project.json"),
        JSON.stringify({
          root: "/nonexistent/gone",
          args: [],
          profile: "dev",
          buildId: "1",
          lastUsed: "2026-01-01T00:00:00.000Z",
          rustc: "1.63.0",
        }),
      );
    });

    await t.step("the first build with the new rustc starts the re-warm, once", async () => {
      const first = await runCargo(["build", "--locked"], {
        cwd: await copyFixture("tiny", join(dir.path, "tiny-1")),
        env: { ...env("tiny-1.jsonl"), CARGO_WARMUP_AUTO_REWARM: "1" },
      });
      assert.equal(first.code, 0, first.stderr);
      const notices = first.stderr.match(
        /rustc \S+ is new to this cache \(filled with 1\.63\.0\)/g,
      );
      assert.equal(notices?.length, 1, first.stderr);
      assert.match(first.stderr, /re-warming your recent projects for it in the background/);

      const state = await backgroundWarmupFinished(cacheDir, 600);
      assert.equal(state.phase, "done", state.summary);
      const log = await Deno.readTextFile(state.log!);
      assert.match(log, /warning: (could not warm|skipping) \/nonexistent\/gone/);
      assert.match(log, /warmed \d+ units/);

      const second = await runCargo(["build", "--locked"], {
        cwd: await copyFixture("tiny", join(dir.path, "tiny-2")),
        env: { ...env("tiny-2.jsonl"), CARGO_WARMUP_AUTO_REWARM: "1" },
      });
      assert.equal(second.code, 0, second.stderr);
      assert.doesNotMatch(second.stderr, /is new to this cache/);
    });

    await t.step("a fresh copy under the new rustc has every registry unit served", async () => {
      const project = await copyFixture("seed001", join(dir.path, "new"));
      const build = await runCargo(["build", "--locked"], { cwd: project, env: env("new.jsonl") });
      assert.equal(build.code, 0, build.stderr);
      const entries = await readDispatchLog(join(dir.path, "new.jsonl"));
      assert.deepEqual(registryMisses(entries).map((entry) => entry.crate), []);
      assert.ok(entries.filter((entry) => entry.outcome === "hit").length >= 20);
      assert.match(
        await runBinary(join(project, "target/debug/worker")),
        /worker finished \d+ jobs/,
      );
    });
  } finally {
    await stopDaemons([runtimeDirFor(cacheDir)]);
  }
});
