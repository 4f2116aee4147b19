// Build-script runs served from the cache, with real cargo and a real C compiler: cmath-sys
// (tests/fixtures/crates/) compiles C with the cc crate in its build script and emits rustc-cfg,
// rustc-env and a header naming its OUT_DIR; anyhow's build script compiles a probe that fails. Projects in other directories, on one CARGO_HOME
// backed by the loopback registry, share one cache.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  type DispatchLogEntry,
  readDispatchLog,
  runBinary,
  runCargo,
  stopDaemons,
  tempDir,
  warmupEnv,
} from "./_harness.ts";
import { runtimeDirFor } from "./_daemons.ts";
import { createRegistryCargoHome, startSparseRegistry } from "./_sparse_registry.ts";

/** The run of cmath-sys's build script in a build's dispatch log. */
function cmathRun(entries: DispatchLogEntry[]): DispatchLogEntry | undefined {
  return entries.find((entry) => entry.kind === "build-run" && entry.crate === "cmath-sys");
}

/** The file cargo keeps a build script's stdout in, for the project at `project`. */
async function buildScriptOutput(project: string): Promise<string> {
  const build = join(project, "target/debug/build");
  for await (const entry of Deno.readDir(build)) {
    if (!entry.name.startsWith("cmath-sys-")) continue;
    const output = join(build, entry.name, "output");
    if (await Deno.stat(output).then(() => true, () => false)) {
      return await Deno.readTextFile(output);
    }
  }
  throw new Error(`no build script output under ${build}`);
}

Deno.test("a -sys crate's build-script run is served to another project", async (t) => {
  await using dir = await tempDir("cargo-warmup-runs-");
  await using registry = await startSparseRegistry();
  const cargoHome = await createRegistryCargoHome(join(dir.path, "cargo-home"), registry.indexUrl);
  const cacheDir = join(dir.path, "cache");
  let builds = 0;

  /** A fresh copy of the csys fixture built through the cache. */
  const build = async (env: Record<string, string> = {}) => {
    const project = await copyFixture("csys", join(dir.path, `project-${++builds}`));
    await Deno.remove(join(project, "Cargo.lock")).catch(() => {});
    const log = join(dir.path, `build-${builds}.jsonl`);
    const buildEnv = { ...warmupEnv({ cacheDir, cargoHome, log }), ...env };
    const result = await runCargo(["build", "-vv"], { cwd: project, env: buildEnv });
    assert.equal(result.code, 0, result.stderr);
    const entries = await readDispatchLog(log);
    return {
      entries,
      run: cmathRun(entries),
      project,
      env: buildEnv,
      stderr: result.stderr,
      // Cargo prints a build script's output to its stdout under -vv.
      stdout: result.stdout,
      printed: await runBinary(join(project, "target/debug/csys")),
    };
  };

  try {
    const first = await build();
    await t.step("the first build runs the script and stores the run", () => {
      assert.equal(first.run?.outcome, "miss", JSON.stringify(first.run));
      const probe = first.entries.find((entry) =>
        entry.crate === "anyhow" && entry.kind === "check"
      );
      assert.equal(probe?.reason, "compile failed", JSON.stringify(probe));
      assert.equal(first.run?.reason, undefined);
      assert.match(first.printed, /^csys 42 \d+ weight-20 true\n$/);
    });

    await t.step("another project is served the run, and cargo sees the same", async () => {
      const second = await build();
      assert.equal(second.run?.outcome, "hit", JSON.stringify(second.run));
      assert.equal(second.printed, first.printed);
      // The script's directives as cargo recorded them, with this project's paths.
      const expected = (await buildScriptOutput(first.project)).replaceAll(
        first.project,
        second.project,
      );
      assert.equal(await buildScriptOutput(second.project), expected);
      const runLine = /^\[cmath-sys 0\.1\.0\] cargo:rustc-cfg=cmath_native$/m;
      assert.match(first.stdout, runLine);
      assert.match(second.stdout, runLine);
      // The header the script wrote names this project's OUT_DIR, not the first one's.
      const header = expected.match(/^cargo:include=(.*)$/m)?.[1];
      assert.ok(header?.startsWith(second.project), expected);
      assert.match(await Deno.readTextFile(join(header!, "cmath.h")), new RegExp(second.project));
      // A no-op build stays a no-op.
      const again = await runCargo(["build"], { cwd: second.project, env: second.env });
      assert.equal(again.code, 0, again.stderr);
      assert.doesNotMatch(again.stderr, /Compiling|Running/);
    });

    await t.step("a changed CFLAGS or rerun-if-env-changed variable runs the script", async () => {
      const flags = await build({ CFLAGS: "-DCMATH_EXTRA=1" });
      assert.equal(flags.run?.outcome, "miss");
      // anyhow's run is keyed on CFLAGS too: it runs again, and its failing probe is replayed.
      const probe = flags.entries.find((entry) =>
        entry.crate === "anyhow" && entry.kind === "check"
      );
      assert.equal(probe?.outcome, "hit", JSON.stringify(probe));
      assert.equal(probe?.reason, "failed probe");
      assert.equal(flags.printed, first.printed);
      const weight = await build({ CMATH_SYS_WEIGHT: "25" });
      assert.equal(weight.run?.outcome, "miss");
      assert.match(weight.run?.reason ?? "", /environment changed: CMATH_SYS_WEIGHT/);
      assert.match(weight.printed, /weight-25/);
      const weightAgain = await build({ CMATH_SYS_WEIGHT: "25" });
      assert.equal(weightAgain.run?.outcome, "hit");
      assert.equal(weightAgain.printed, weight.printed);
    });

    await t.step("a corrupt stored run is dropped, never served", async () => {
      const key = first.run?.key;
      assert.ok(typeof key === "string");
      const bundles = join(cacheDir, "bundles");
      let corrupted = 0;
      for await (const entry of Deno.readDir(join(bundles, key.slice(0, 2)))) {
        if (!entry.name.startsWith(key)) continue;
        const path = join(bundles, key.slice(0, 2), entry.name);
        const bytes = await Deno.readFile(path);
        bytes[bytes.length - 10]! ^= 0xff;
        await Deno.writeFile(path, bytes);
        corrupted++;
      }
      assert.equal(corrupted, 1);
      const after = await build();
      assert.equal(after.run?.outcome, "miss");
      assert.equal(after.run?.reason, "corrupt entry");
      assert.match(after.stderr, /dropping a bad cache entry for cmath-sys 0\.1\.0's build script/);
      assert.equal(after.printed, first.printed);
    });

    await t.step("a link-search into the system is cached, keyed on what it names", async () => {
      // cmath-sys then names /usr/lib, where the library it links is not: recorded as missing.
      const system = await build({ CMATH_SYS_SYSTEM_LINK: "1" });
      assert.equal(system.run?.outcome, "miss");
      assert.doesNotMatch(system.run?.reason ?? "", /machine-specific/);
      const again = await build({ CMATH_SYS_SYSTEM_LINK: "1" });
      assert.equal(again.run?.outcome, "hit", JSON.stringify(again.run));
      assert.equal(again.printed, first.printed);
    });
  } finally {
    await stopDaemons([runtimeDirFor(cacheDir)]);
  }
});
