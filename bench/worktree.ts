// A new worktree and the edit loop, with cargo's default incremental dev builds and cargo-warmup's
// default settings (workspace libraries cached on local disk). Second worktree: worktree 1 built
// the project, worktree 2 (same commit, another directory) builds for the first time; the floor
// compiles only its binaries (worktree 1's target dir with the binary packages cleaned), against
// plain cargo, sccache and cargo-warmup, each warmed by worktree 1. Edit loop: 20 edit-build
// cycles of one library after a first build, plain cargo against cargo-warmup, with the entries
// the loop added to the cache (counted after the daemon stopped, so what it held back counts).

import { join } from "node:path";
import { runCargo, runtimeDirFor, stopDaemons } from "../tests/_harness.ts";
import { type CaseResult, type CaseRow, caseTable, measureCase } from "./case_table.ts";
import {
  type BenchContext,
  build,
  type Measurement,
  project,
  sccacheBuild,
  warmupBuild,
  withSccache,
} from "./ways.ts";

/** Cargo's dev default, set so that an inherited CARGO_INCREMENTAL=0 changes nothing here. */
const INCREMENTAL = { CARGO_INCREMENTAL: "1" };
const EDIT_CYCLES = 20;

/** What each fixture's edit loop edits: a library the binaries use, one visible line per cycle. */
const EDITED: Record<string, { file: string; edit: (text: string, cycle: number) => string }> = {
  seed001: {
    file: "shared/src/lib.rs",
    edit: (text, cycle) =>
      text.replace(/format!\("job-\{id\}[^"]*"\)/, `format!("job-{id}-e${cycle}")`),
  },
  chain: {
    file: "crates/report/src/lib.rs",
    edit: (text, cycle) => text.replace(/"\{TITLE\}[^:]*: /, `"{TITLE} (edit ${cycle}): `),
  },
};

/** Packages of the project in `dir` with a binary target: what a warm second worktree compiles. */
async function binaryPackages(context: BenchContext, dir: string): Promise<string[]> {
  const metadata = await runCargo(["metadata", "--no-deps", "--format-version", "1"], {
    cwd: dir,
    env: { CARGO_HOME: context.cargoHome },
  });
  if (metadata.code !== 0) throw new Error(`Cannot read cargo metadata: ${metadata.stderr}`);
  const { packages } = JSON.parse(metadata.stdout) as {
    packages: { name: string; targets: { kind: string[] }[] }[];
  };
  return packages.filter((pkg) => pkg.targets.some((target) => target.kind.includes("bin")))
    .map((pkg) => pkg.name);
}

/**
 * A cargo-warmup build with the default settings: the harness turns workspace caching off unless
 * told, so it is set here to its default value.
 */
function warmupDefaultBuild(context: BenchContext, dir: string, cacheDir: string, log: string) {
  return warmupBuild(context, dir, cacheDir, log, {
    ...INCREMENTAL,
    CARGO_WARMUP_WORKSPACE: "incremental",
  });
}

const SECOND_WORKTREE: CaseRow[] = [
  {
    id: "floor",
    label: "floor: only its binaries compile",
    async measure(context) {
      const dir = await project(context, "worktree-1");
      await build(context, dir, INCREMENTAL);
      const binaries = await binaryPackages(context, dir);
      const clean = await runCargo(["clean", ...binaries.flatMap((name) => ["-p", name])], {
        cwd: dir,
        env: { CARGO_HOME: context.cargoHome },
      });
      if (clean.code !== 0) throw new Error(`Cannot clean the binaries: ${clean.stderr}`);
      const rebuild = await build(context, dir, INCREMENTAL);
      const compiled = [...rebuild.stderr.matchAll(/Compiling (\S+) v/g)].map((match) => match[1]);
      // A rebuild of anything else would make this no floor at all.
      if (compiled.sort().join() !== [...binaries].sort().join()) {
        throw new Error(`Expected to recompile ${binaries.join(", ")}, got ${compiled.join(", ")}`);
      }
      return { seconds: rebuild.seconds, details: { binaries } };
    },
  },
  {
    id: "plain",
    label: "plain cargo",
    async measure(context) {
      await build(context, await project(context, "worktree-1"), INCREMENTAL);
      return {
        seconds: (await build(context, await project(context, "worktree-2"), INCREMENTAL)).seconds,
      };
    },
  },
  {
    id: "sccache",
    label: "sccache, warmed by worktree 1",
    measure: (context) =>
      withSccache(context.work, async (env) => {
        await build(context, await project(context, "worktree-1"), { ...env, ...INCREMENTAL });
        return await sccacheBuild(context, await project(context, "worktree-2"), {
          ...env,
          ...INCREMENTAL,
        });
      }),
  },
  {
    id: "warm",
    label: "cargo-warmup (default settings), warmed by worktree 1",
    async measure(context) {
      const cacheDir = join(context.work, "cache");
      await warmupDefaultBuild(context, await project(context, "worktree-1"), cacheDir, "1.jsonl");
      return await warmupDefaultBuild(
        context,
        await project(context, "worktree-2"),
        cacheDir,
        "2.jsonl",
      );
    },
  },
];

/** 20 timed edit-build cycles in `dir`, built once before; `buildOnce` runs one build. */
async function editLoop(
  context: BenchContext,
  dir: string,
  buildOnce: () => Promise<{ seconds: number }>,
): Promise<Measurement> {
  const edited = EDITED[context.fixture];
  if (!edited) throw new RangeError(`No edit loop for fixture "${context.fixture}"`);
  const path = join(dir, edited.file);
  await buildOnce();
  let seconds = 0;
  for (let cycle = 1; cycle <= EDIT_CYCLES; cycle++) {
    const text = await Deno.readTextFile(path);
    const changed = edited.edit(text, cycle);
    if (changed === text) throw new Error(`The edit of "${edited.file}" changed nothing`);
    await Deno.writeTextFile(path, changed);
    seconds += (await buildOnce()).seconds;
  }
  return { seconds, details: { cycles: EDIT_CYCLES } };
}

/** Bundles in a cache directory: one per stored entry or variant. */
async function bundlesIn(cacheDir: string): Promise<number> {
  let count = 0;
  const visit = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory) await visit(join(dir, entry.name));
      else if (entry.name.endsWith(".tzst")) count++;
    }
  };
  await visit(join(cacheDir, "bundles")).catch(() => {});
  return count;
}

const EDIT_LOOP: CaseRow[] = [
  {
    id: "floor",
    label: `plain cargo, ${EDIT_CYCLES} cycles`,
    async measure(context) {
      const dir = await project(context, "project");
      return await editLoop(context, dir, () => build(context, dir, INCREMENTAL));
    },
  },
  {
    id: "warm",
    label: `cargo-warmup (default settings), ${EDIT_CYCLES} cycles`,
    async measure(context) {
      const dir = await project(context, "project");
      const cacheDir = join(context.work, "cache");
      let builds = 0;
      const buildOnce = () => warmupDefaultBuild(context, dir, cacheDir, `${++builds}.jsonl`);
      // The first build fills the cache; the loop's entries are counted from there.
      await buildOnce();
      await stopDaemons([runtimeDirFor(cacheDir)]);
      const before = await bundlesIn(cacheDir);
      const measured = await editLoop(context, dir, buildOnce);
      const duringLoop = await bundlesIn(cacheDir) - before;
      await stopDaemons([runtimeDirFor(cacheDir)]);
      const added = await bundlesIn(cacheDir) - before;
      return { ...measured, details: { ...measured.details, duringLoop, added } };
    },
  },
];

/** Measures the second worktree's rows once for `fixture`. */
export function measureSecondWorktree(
  scratch: string,
  cargoHome: string,
  fixture: string,
): Promise<CaseResult[]> {
  return measureCase("second-worktree", SECOND_WORKTREE, { scratch, fixture, cargoHome });
}

/** Measures the edit loop's rows once for `fixture`. */
export function measureEditLoop(
  scratch: string,
  cargoHome: string,
  fixture: string,
): Promise<CaseResult[]> {
  return measureCase("edit-loop", EDIT_LOOP, { scratch, fixture, cargoHome });
}

/** Both cases as Markdown tables. */
export function worktreeTables(
  fixture: string,
  secondWorktree: CaseResult[],
  editLoopResults: CaseResult[],
): string {
  const added = editLoopResults.find((result) => result.id === "warm")?.details;
  return [
    caseTable(`second worktree (${fixture}, incremental, first build)`, secondWorktree),
    "",
    caseTable(
      `edit loop (${fixture}: ${EDIT_CYCLES} edits of one library; ratio: × plain cargo)`,
      editLoopResults,
    ),
    "",
    `entries the edit loop added: ${added?.duringLoop} during the loop, ${added?.added} once the daemon stopped`,
  ].join("\n");
}
