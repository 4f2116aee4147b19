// A new worktree starts warm: with the default settings and cargo's incremental dev builds, a
// second worktree of the chain fixture (base <- model <- logic <- report, and the app binary) at
// the same commit, in another directory, is served every workspace library another worktree
// built, and edits in it then rebuild incrementally and correctly. Real cargo, one cache.

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

type Edit = (project: string) => Promise<void>;

const replaceIn = (file: string, from: string, to: string): Edit => async (project) => {
  const path = join(project, file);
  const text = await Deno.readTextFile(path);
  assert.ok(text.includes(from), `${file} has no "${from}"`);
  await Deno.writeTextFile(path, text.replace(from, to));
};
/** Marks report's output, whatever mark it had: an edit of its body only. */
const markReport = (mark: string): Edit => async (project) => {
  const path = join(project, "crates/report/src/lib.rs");
  const text = await Deno.readTextFile(path);
  const marked = text.replace(/"\{TITLE\}[^:]*: /, `"{TITLE} ${mark}: `);
  assert.notEqual(marked, text, `report has no mark to replace with "${mark}"`);
  await Deno.writeTextFile(path, marked);
};
const REPORT_EDITS = ["(first edit)", "(second edit)", "(third edit)"].map(markReport);
/** base's public API changes (format_id becomes generic): every dependent must compile again. */
const API_EDIT = replaceIn(
  "crates/base/src/lib.rs",
  "pub fn format_id(id: u64) -> String {\n    itoa::Buffer::new().format(id).to_string()",
  'pub fn format_id(id: impl Into<u64>) -> String {\n    format!("n{}", itoa::Buffer::new().format(id.into()))',
);

/** Incremental directories of `crate` in a target dir (cargo names them `<crate>-<hash>`). */
async function incrementalDirsOf(project: string, crate: string): Promise<string[]> {
  const dir = join(project, "target/debug/incremental");
  const names = await Array.fromAsync(Deno.readDir(dir)).catch(() => [] as Deno.DirEntry[]);
  return names.map((entry) => entry.name).filter((name) => name.startsWith(`${crate}-`));
}

/** Bundles in the cache (every stored entry and variant is one). */
async function bundlesIn(cacheDir: string): Promise<number> {
  let count = 0;
  const visit = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory) await visit(join(dir, entry.name));
      else if (entry.name.endsWith(".tzst")) count++;
    }
  };
  await visit(join(cacheDir, "bundles")).catch(() => {});
  return count;
}

Deno.test("a second worktree is served every workspace library; edits in it rebuild", async (t) => {
  await using dir = await tempDir("cargo-warmup-worktree-");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const cacheDir = join(dir.path, "cache");
  const runtimeDir = runtimeDirFor(cacheDir);
  let builds = 0;

  /** Builds `project` through the cache with the default settings, incremental as cargo's dev. */
  const build = async (project: string) => {
    const log = join(dir.path, `build-${++builds}.jsonl`);
    const env = {
      ...warmupEnv({ cacheDir, cargoHome, log, workspace: "default" }),
      CARGO_INCREMENTAL: "1",
    };
    const result = await runCargo(["build", "--locked"], { cwd: project, env });
    assert.equal(result.code, 0, result.stderr);
    const compiled = [...result.stderr.matchAll(/Compiling (\S+) v/g)].map((match) => match[1]);
    return {
      entries: await readDispatchLog(log),
      compiled,
      printed: await runBinary(join(project, "target/debug/app")),
    };
  };
  /** What plain cargo's incremental build of the fixture, after `edits`, prints. */
  const uncachedOutput = async (...edits: Edit[]) => {
    const project = await copyFixture("chain", join(dir.path, `plain-${++builds}`));
    for (const edit of edits) await edit(project);
    const env = { CARGO_HOME: cargoHome, CARGO_INCREMENTAL: "1" };
    const result = await runCargo(["build", "--locked"], { cwd: project, env });
    assert.equal(result.code, 0, result.stderr);
    return await runBinary(join(project, "target/debug/app"));
  };

  // Worked out first, so that the cached builds below run back to back, as in an edit loop.
  const expected = {
    unedited: await uncachedOutput(),
    reportEdits: [
      await uncachedOutput(REPORT_EDITS[0]!),
      await uncachedOutput(REPORT_EDITS[1]!),
      await uncachedOutput(REPORT_EDITS[2]!),
    ],
    apiEdit: await uncachedOutput(REPORT_EDITS[2]!, API_EDIT),
  };
  const first = await copyFixture("chain", join(dir.path, "worktree-1"));
  const second = await copyFixture("chain", join(dir.path, "worktree-2"));

  try {
    await t.step("worktree 1 compiles every library, incrementally", async () => {
      const { entries, printed } = await build(first);
      assert.equal(libraryOutcomes(entries), "base:miss model:miss logic:miss report:miss");
      assert.equal(printed, expected.unedited);
    });

    await t.step("worktree 2 is served every library and compiles only its binaries", async () => {
      const { entries, compiled, printed } = await build(second);
      assert.equal(libraryOutcomes(entries), "base:hit model:hit logic:hit report:hit");
      // cargo still says "Compiling" for a served crate: what rustc really compiled is the
      // binary and the build script, the only units not served.
      const compiledByRustc = entries.filter((entry) => entry.crate && entry.outcome !== "hit");
      assert.deepEqual(
        compiledByRustc.map((entry) => `${entry.crate} ${entry.kind}`).sort(),
        ["app bin", "model build-script"],
      );
      assert.ok(compiled.includes("report"));
      for (const library of LIBRARIES) {
        assert.deepEqual(await incrementalDirsOf(second, library), [], library);
      }
      assert.equal(printed, expected.unedited);
    });

    const bundlesBefore = await bundlesIn(cacheDir);

    await t.step("edits of a served library rebuild it incrementally, three in a row", async () => {
      for (const [round, edit] of REPORT_EDITS.entries()) {
        await edit(second);
        const { entries, printed } = await build(second);
        assert.equal(
          libraryOutcomes(entries),
          "base:not called model:not called logic:not called report:miss",
          `edit ${round + 1}`,
        );
        assert.equal(printed, expected.reportEdits[round], `edit ${round + 1}`);
        // Its first edit compiles it whole and starts its incremental session; later ones use it.
        assert.equal((await incrementalDirsOf(second, "report")).length, 1, `edit ${round + 1}`);
      }
    });

    await t.step("a change of a library's public API recompiles its dependents", async () => {
      await API_EDIT(second);
      const { entries, printed } = await build(second);
      assert.equal(libraryOutcomes(entries), "base:miss model:miss logic:miss report:miss");
      assert.match(printed, /#n7 = 1\.5/);
      assert.equal(printed, expected.apiEdit);
    });

    await t.step(
      "the edit loop stored only where it stopped, once the builds were over",
      async () => {
        // Stopping the daemon writes what it held back; before that nothing of the loop is stored.
        assert.equal(await bundlesIn(cacheDir), bundlesBefore);
        await stopDaemons([runtimeDir]);
        // One entry per library at its last state, never one per edit: base's key did not change
        // (its sources are not in it), so its new entry takes the key's slot and the old one moves
        // to a variant slot; its dependents' keys did (base's rmeta is), each a new entry.
        assert.equal(await bundlesIn(cacheDir), bundlesBefore + LIBRARIES.length);
      },
    );

    await t.step("a source saved after its compile is never stored as its input", async () => {
      // A third worktree: report compiled and its store held back; report saved again, and the
      // daemon stops (it then writes what it held, as after a pause): the next build must compile
      // report, not be served the first edit's artefact recorded under the second edit's source.
      const third = await copyFixture("chain", join(dir.path, "worktree-3"));
      await build(third);
      await REPORT_EDITS[0]!(third);
      assert.equal((await build(third)).printed, expected.reportEdits[0]);
      await REPORT_EDITS[1]!(third);
      await stopDaemons([runtimeDir]);
      const again = await build(third);
      assert.equal(libraryOutcomes(again.entries).split(" ").at(-1), "report:miss");
      assert.equal(again.printed, expected.reportEdits[1]);
    });
  } finally {
    await stopDaemons([runtimeDir]);
  }
});
