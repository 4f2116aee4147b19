// Workspace caching (`[warmup] workspace = true`, CI's next commit) with real cargo on the chain
// fixture (base <- model <- logic <- report, and the app binary): each step is a fresh checkout
// in a new directory, as a CI job gets, sharing one cache with the checkouts before it.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  createCargoHome,
  readDispatchLog,
  runBinary,
  runCargo,
  stopDaemons,
  tempDir,
  warmupEnv,
} from "./_harness.ts";
import { LIBRARIES, libraryOutcomes } from "./_chain.ts";
import { runtimeDirFor } from "./_daemons.ts";

Deno.test("workspace crates are served to the next commit in another directory", async (t) => {
  await using dir = await tempDir("cargo-warmup-workspace-");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const cacheDir = join(dir.path, "cache");
  let checkouts = 0;

  /** A fresh checkout of the fixture, changed by `edit`, built through the cache. */
  const buildCheckout = async (
    edit: (project: string) => Promise<void>,
    env: Record<string, string> = {},
  ) => {
    const project = await copyFixture("chain", join(dir.path, `checkout-${++checkouts}`));
    await edit(project);
    const log = join(dir.path, `checkout-${checkouts}.jsonl`);
    const build = await runCargo(["build", "--locked"], {
      cwd: project,
      env: {
        ...warmupEnv({ cacheDir, cargoHome, log }),
        CARGO_INCREMENTAL: "0",
        CARGO_WARMUP_WORKSPACE: "1",
        ...env,
      },
    });
    assert.equal(build.code, 0, build.stderr);
    const entries = await readDispatchLog(log);
    return { project, entries, printed: await runBinary(join(project, "target/debug/app")) };
  };
  /** What the same tree prints when built by plain cargo, without the cache. */
  const uncachedOutput = async (edit: (project: string) => Promise<void>) => {
    const project = await copyFixture("chain", join(dir.path, `plain-${++checkouts}`));
    await edit(project);
    const build = await runCargo(["build", "--locked"], {
      cwd: project,
      env: { CARGO_HOME: cargoHome, CARGO_INCREMENTAL: "0" },
    });
    assert.equal(build.code, 0, build.stderr);
    return await runBinary(join(project, "target/debug/app"));
  };
  const unchanged = () => Promise.resolve();
  const replaceIn = (file: string, from: string, to: string) => async (project: string) => {
    const path = join(project, file);
    const text = await Deno.readTextFile(path);
    assert.ok(text.includes(from), `${file} has no "${from}"`);
    await Deno.writeTextFile(path, text.replace(from, to));
  };

  try {
    await t.step("without the option, nothing of the workspace is cached", async () => {
      const { entries } = await buildCheckout(unchanged, { CARGO_WARMUP_WORKSPACE: "0" });
      for (const library of LIBRARIES) {
        // The library's own compile, not its build script's.
        const entry = entries.find((found) =>
          found.crate === library && found.kind !== "build-script"
        );
        assert.equal(entry?.outcome, "not-cacheable", library);
        assert.equal(entry?.reason, "workspace member");
      }
      assert.equal(entries.find((entry) => entry.crate === "itoa")?.outcome, "miss");
    });

    await t.step("the first commit stores every workspace library", async () => {
      const { entries, printed } = await buildCheckout(unchanged);
      assert.equal(libraryOutcomes(entries), "base:miss model:miss logic:miss report:miss");
      assert.equal(entries.find((entry) => entry.crate === "itoa")?.outcome, "hit");
      // Binaries and build scripts are the project's end products: never cached.
      const ends = [
        entries.find((found) => found.crate === "app"),
        entries.find((found) => found.kind === "build-script" && found.crate === "model"),
      ];
      for (const entry of ends) {
        assert.equal(entry?.outcome, "not-cacheable", JSON.stringify(entry));
        assert.equal(entry?.reason, "workspace binary");
      }
      assert.equal(printed, await uncachedOutput(unchanged));
    });

    await t.step("an edited leaf is compiled, every crate below it served", async () => {
      const edit = replaceIn("crates/report/src/lib.rs", "{TITLE}: ", "{TITLE} (edited): ");
      const { entries, printed } = await buildCheckout(edit);
      assert.equal(libraryOutcomes(entries), "base:hit model:hit logic:hit report:miss");
      const report = entries.find((entry) => entry.crate === "report");
      assert.match(report?.reason ?? "", /source changed: .*crates\/report\/src\/lib\.rs/);
      assert.match(printed, /\(edited\): /);
      assert.equal(printed, await uncachedOutput(edit));
    });

    // TITLE.txt is the only change: report's miss can only come from the record of what it read.
    await t.step("a file read from outside the package is part of the record", async () => {
      const edit = (project: string) => Deno.writeTextFile(join(project, "TITLE.txt"), "tally");
      const { entries, printed } = await buildCheckout(edit);
      assert.equal(libraryOutcomes(entries), "base:hit model:hit logic:hit report:miss");
      assert.match(printed, /^tally: /);
    });

    await t.step("a build script's changed input recompiles its crate and dependents", async () => {
      const edit = replaceIn("crates/model/data/units.txt", "metre", "kelvin");
      const { entries, printed } = await buildCheckout(edit);
      assert.equal(libraryOutcomes(entries), "base:hit model:miss logic:miss report:miss");
      assert.equal(printed, await uncachedOutput(edit));
      assert.match(printed, /kelvin/);
    });

    await t.step("the unedited tree is still served whole (older variants kept)", async () => {
      const { entries, printed } = await buildCheckout(unchanged);
      assert.equal(libraryOutcomes(entries), "base:hit model:hit logic:hit report:hit");
      assert.match(printed, /^chain report: #7 = 1\.5 metre/);
    });

    // An incremental compile's crate hash differs from a non-incremental one's (rustc hashes the
    // definitions' spans into it), so the two are keyed apart; worktree_test.ts has the rest.
    await t.step("incremental builds are cached, apart from non-incremental ones", async () => {
      const incremental = { CARGO_INCREMENTAL: "1" };
      const first = await buildCheckout(unchanged, incremental);
      assert.equal(libraryOutcomes(first.entries), "base:miss model:miss logic:miss report:miss");
      const second = await buildCheckout(unchanged, incremental);
      assert.equal(libraryOutcomes(second.entries), "base:hit model:hit logic:hit report:hit");
      assert.match(second.printed, /^chain report: #7 = 1\.5 metre/);
    });
  } finally {
    await stopDaemons([runtimeDirFor(cacheDir)]);
  }
});
