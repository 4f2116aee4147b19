// CI's next commit (`[warmup] workspace = true`): the chain fixture's previous commit was built
// in one checkout; the next commit edits one leaf library (report) and is built in a fresh
// checkout elsewhere, as a new CI job builds it. Rows: the floor (only the edited crate and its
// dependents compile: the previous commit's target dir, edited in place), plain cargo, sccache
// and cargo-warmup, each warmed by the previous commit. Every build is non-incremental, as in CI.

import { join } from "node:path";
import { readDispatchLog } from "../tests/_harness.ts";
import { type CaseResult, type CaseRow, caseTable, measureCase } from "./case_table.ts";
import {
  type BenchContext,
  build,
  project,
  sccacheBuild,
  warmupBuild,
  withSccache,
} from "./ways.ts";

const FIXTURE = "chain";
const NON_INCREMENTAL = { CARGO_INCREMENTAL: "0" };
/** The crates the edit recompiles: the edited library and the binary above it. */
const RECOMPILED = ["report", "app"];

/** The next commit's change: one line of the leaf library. */
async function editLeaf(dir: string): Promise<void> {
  const path = join(dir, "crates/report/src/lib.rs");
  const text = await Deno.readTextFile(path);
  await Deno.writeTextFile(path, text.replace("{TITLE}: ", "{TITLE} (next commit): "));
}

/** A fresh checkout of the next commit in `context.work`. */
async function nextCommit(context: BenchContext): Promise<string> {
  const dir = await project(context, "next");
  await editLeaf(dir);
  return dir;
}

const ROWS: CaseRow[] = [
  {
    id: "floor",
    label: "floor: only the edited crate and its dependents compile",
    async measure(context) {
      const dir = await project(context, "previous");
      await build(context, dir, NON_INCREMENTAL);
      await editLeaf(dir);
      const rebuild = await build(context, dir, NON_INCREMENTAL);
      const compiled = [...rebuild.stderr.matchAll(/Compiling (\S+) v/g)].map((match) => match[1]);
      // A rebuild of anything else would make this no floor at all.
      if (compiled.sort().join() !== [...RECOMPILED].sort().join()) {
        throw new Error(
          `Expected to recompile ${RECOMPILED.join(", ")}, got ${compiled.join(", ")}`,
        );
      }
      return { seconds: rebuild.seconds };
    },
  },
  {
    id: "plain",
    label: "plain cargo",
    async measure(context) {
      return {
        seconds: (await build(context, await nextCommit(context), NON_INCREMENTAL)).seconds,
      };
    },
  },
  {
    id: "sccache",
    label: "sccache, warmed by the previous commit",
    measure: (context) =>
      withSccache(context.work, async (env) => {
        await build(context, await project(context, "previous"), { ...env, ...NON_INCREMENTAL });
        return await sccacheBuild(context, await nextCommit(context), {
          ...env,
          ...NON_INCREMENTAL,
        });
      }),
  },
  {
    id: "warm",
    label: "cargo-warmup, workspace = true, warmed by the previous commit",
    async measure(context) {
      const cacheDir = join(context.work, "cache");
      const env = { ...NON_INCREMENTAL, CARGO_WARMUP_WORKSPACE: "1" };
      await warmupBuild(
        context,
        await project(context, "previous"),
        cacheDir,
        "previous.jsonl",
        env,
      );
      const measured = await warmupBuild(
        context,
        await nextCommit(context),
        cacheDir,
        "next.jsonl",
        env,
      );
      const served = (await readDispatchLog(join(context.work, "next.jsonl")))
        .filter((entry) => entry.outcome === "hit").map((entry) => entry.crate);
      return { ...measured, details: { ...measured.details, served } };
    },
  },
];

/** Measures every row once, each in its own directory under `scratch`. */
export function measureNextCommit(scratch: string, cargoHome: string): Promise<CaseResult[]> {
  return measureCase("next-commit", ROWS, { scratch, fixture: FIXTURE, cargoHome });
}

/** The rows as a Markdown table. */
export function nextCommitTable(results: CaseResult[]): string {
  return caseTable(`next commit (${FIXTURE} fixture, leaf edited, fresh checkout)`, results);
}
