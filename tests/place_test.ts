// Units placed in target/ before cargo looks: a second copy of the tiny fixture in another
// directory, after `cargo warmup prepare` or by itself (at cargo's `rustc -vV`), finds every
// registry unit (memchr's build script, its run, the libraries) Fresh and compiles only its own
// crate; a wrong prediction still builds right; `place = false` places nothing. Real cargo, one
// cache, the daemon.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  createCargoHome,
  exists,
  runBinary,
  runCargo,
  runWarmup,
  stopDaemons,
  tempDir,
  warmupEnv,
} from "./_harness.ts";
import { runtimeDirFor } from "./_daemons.ts";

const REGISTRY_CRATES = ["cfg-if", "itoa", "memchr"];

/** The crates `cargo build -v` said were Fresh, and those it compiled (sorted, unique). */
function unitsOf(stderr: string): { fresh: string[]; compiled: string[] } {
  const names = (pattern: RegExp) =>
    [...new Set([...stderr.matchAll(pattern)].map((match) => match[1]!))].sort();
  return { fresh: names(/^\s*Fresh (\S+) v/gm), compiled: names(/^\s*Compiling (\S+) v/gm) };
}

/** The inode of `crate`'s rlib in `project`'s target/debug/deps. */
async function rlibInode(project: string, crate: string): Promise<number | null> {
  const deps = join(project, "target/debug/deps");
  const prefix = `lib${crate.replaceAll("-", "_")}-`;
  for await (const entry of Deno.readDir(deps)) {
    if (entry.name.startsWith(prefix) && entry.name.endsWith(".rlib")) {
      return (await Deno.stat(join(deps, entry.name))).ino;
    }
  }
  throw new Error(`no ${prefix}*.rlib in ${deps}`);
}

Deno.test("a second copy finds its registry units placed and Fresh", async (t) => {
  await using dir = await tempDir("cargo-warmup-place-");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const cacheDir = join(dir.path, "cache");
  const env = warmupEnv({ cacheDir, cargoHome, place: true });
  const plain = await copyFixture("tiny", join(dir.path, "plain"));
  const plainBuild = await runCargo(["build", "--locked"], {
    cwd: plain,
    env: { CARGO_HOME: cargoHome },
  });
  assert.equal(plainBuild.code, 0, plainBuild.stderr);
  const expected = await runBinary(join(plain, "target/debug/tiny"));

  const build = async (
    project: string,
    args: string[] = [],
    extra: Record<string, string> = {},
  ) => {
    const result = await runCargo(["build", "--locked", "-v", ...args], {
      cwd: project,
      env: { ...env, ...extra },
    });
    assert.equal(result.code, 0, result.stderr);
    return result;
  };
  const prepare = async (
    project: string,
    args: string[] = [],
    extra: Record<string, string> = {},
  ) => {
    const result = await runWarmup(["prepare", ...args], {
      cwd: project,
      env: { ...env, ...extra },
    });
    assert.equal(result.code, 0, result.stderr);
    return result.stderr;
  };

  try {
    await t.step("a first copy builds every unit and is captured", async () => {
      const first = await copyFixture("tiny", join(dir.path, "first"));
      // Copied now, so that the next step's build starts the moment this one's cargo exits.
      await copyFixture("tiny", join(dir.path, "next"));
      const result = await build(first);
      assert.deepEqual(unitsOf(result.stderr).compiled, [...REGISTRY_CRATES, "tiny"].sort());
    });

    await t.step(
      "right after it, without prepare, cargo's first rustc -vV has them placed",
      async () => {
        const next = join(dir.path, "next");
        const result = await build(next);
        const units = unitsOf(result.stderr);
        assert.deepEqual(units.fresh, REGISTRY_CRATES, result.stderr);
        assert.deepEqual(units.compiled, ["tiny"], result.stderr);
        assert.equal(await runBinary(join(next, "target/debug/tiny")), expected);
      },
    );

    await t.step("prepare places them; cargo finds them Fresh, compiles only tiny", async () => {
      const second = await copyFixture("tiny", join(dir.path, "second"));
      const said = await prepare(second);
      assert.match(said, /placed [1-9]\d* units/);
      const result = await build(second);
      const units = unitsOf(result.stderr);
      assert.deepEqual(units.fresh, REGISTRY_CRATES, result.stderr);
      assert.deepEqual(units.compiled, ["tiny"], result.stderr);
      // Not one registry unit reached the wrapper (cargo prints each rustc or script it runs).
      const ran = [...result.stderr.matchAll(/^\s*Running `(.*)`$/gm)].map((match) => match[1]!);
      assert.equal(ran.length, 1, result.stderr);
      assert.match(ran[0]!, /--crate-name tiny /);
      assert.equal(await runBinary(join(second, "target/debug/tiny")), expected);
      // Placed by link: each library's rlib is the inode the first copy's build wrote (its hot
      // copy), and cargo found it fresh all the same (the mtimes placed keep cargo's order).
      for (const crate of REGISTRY_CRATES) {
        assert.equal(
          await rlibInode(second, crate),
          await rlibInode(join(dir.path, "first"), crate),
          crate,
        );
      }
      const again = await build(second);
      assert.deepEqual(unitsOf(again.stderr).compiled, []);
      assert.equal(await runBinary(join(second, "target/debug/tiny")), expected);
    });

    await t.step("status counts the placed units", async () => {
      const status = await runWarmup(["status"], { env });
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /^placed\s+[1-9]\d* units .* in 2 new target dirs/m);
    });

    await t.step("a wrong prediction still builds right", async () => {
      // Placed for a dev build; built with another opt-level and then --release: cargo names
      // those units differently, ignores the placed ones and compiles them.
      const third = await copyFixture("tiny", join(dir.path, "third"));
      await prepare(third);
      const other = await build(third, [], { CARGO_PROFILE_DEV_OPT_LEVEL: "1" });
      assert.deepEqual(unitsOf(other.stderr).compiled, [...REGISTRY_CRATES, "tiny"].sort());
      assert.equal(await runBinary(join(third, "target/debug/tiny")), expected);
      const release = await build(third, ["--release"]);
      assert.deepEqual(unitsOf(release.stderr).compiled, [...REGISTRY_CRATES, "tiny"].sort());
      assert.equal(await runBinary(join(third, "target/release/tiny")), expected);
    });

    await t.step("place = false places nothing", async () => {
      // At cargo's probe: the build compiles every unit.
      const fourth = await copyFixture("tiny", join(dir.path, "fourth"));
      const result = await build(fourth, [], { CARGO_WARMUP_PLACE: "0" });
      assert.deepEqual(unitsOf(result.stderr).compiled, [...REGISTRY_CRATES, "tiny"].sort());
      assert.equal(await runBinary(join(fourth, "target/debug/tiny")), expected);
      // By prepare: it says so and writes nothing where cargo looks.
      const sixth = await copyFixture("tiny", join(dir.path, "sixth"));
      const said = await prepare(sixth, [], { CARGO_WARMUP_PLACE: "0" });
      assert.match(said, /placing is off/);
      assert.equal(await exists(join(sixth, "target/debug/.fingerprint")), false);
    });
  } finally {
    await stopDaemons([runtimeDirFor(cacheDir)]);
  }
});
