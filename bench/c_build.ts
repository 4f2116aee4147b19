// A slow C build script (issue: build-script runs served from the cache): the csys fixture on
// cmath-sys, whose build script compiles CMATH_SYS_WEIGHT generated C functions with the cc
// crate, from the tests' loopback registry. Rows: the floor (only csys itself compiles), plain
// cargo, sccache and cargo-warmup, each warmed by a sibling copy; every build is a fresh copy.

import { join } from "node:path";
import { copyFixture, readDispatchLog, runCargo } from "../tests/_harness.ts";
import { type CaseResult, type CaseRow, caseTable, measureCase } from "./case_table.ts";
import { createRegistryCargoHome, startSparseRegistry } from "../tests/_sparse_registry.ts";
import { type BenchContext, build, sccacheBuild, warmupBuild, withSccache } from "./ways.ts";

const FIXTURE = "csys";
/** Generated C functions: a C build of a few seconds on the 2-core machine, like onig_sys's. */
const WEIGHT = { CMATH_SYS_WEIGHT: "600" };

/** The registry's lockfile of the fixture, written by the untimed fetch. */
let lockfile = "";

/** A fresh copy of the fixture with the registry's lockfile, in `context.work`. */
async function copy(context: BenchContext, name: string): Promise<string> {
  const dir = await copyFixture(FIXTURE, join(context.work, name));
  await Deno.writeTextFile(join(dir, "Cargo.lock"), lockfile);
  return dir;
}

const ROWS: CaseRow[] = [
  {
    id: "floor",
    label: "floor: only csys compiles",
    async measure(context) {
      const dir = await copy(context, "project");
      await build(context, dir, WEIGHT);
      const clean = await runCargo(["clean", "-p", "csys"], {
        cwd: dir,
        env: { CARGO_HOME: context.cargoHome },
      });
      if (clean.code !== 0) throw new Error(`Cannot clean csys: ${clean.stderr}`);
      return { seconds: (await build(context, dir, WEIGHT)).seconds };
    },
  },
  {
    id: "plain",
    label: "plain cargo",
    async measure(context) {
      return { seconds: (await build(context, await copy(context, "project"), WEIGHT)).seconds };
    },
  },
  {
    id: "sccache",
    label: "sccache, warmed by a sibling",
    measure: (context) =>
      withSccache(context.work, async (env) => {
        await build(context, await copy(context, "sibling"), { ...env, ...WEIGHT });
        return await sccacheBuild(context, await copy(context, "project"), { ...env, ...WEIGHT });
      }),
  },
  {
    id: "warm",
    label: "cargo-warmup (daemon), warmed by a sibling",
    async measure(context) {
      const cacheDir = join(context.work, "cache");
      await warmupBuild(context, await copy(context, "sibling"), cacheDir, "sibling.jsonl", WEIGHT);
      const measured = await warmupBuild(
        context,
        await copy(context, "project"),
        cacheDir,
        "project.jsonl",
        WEIGHT,
      );
      const runs = (await readDispatchLog(join(context.work, "project.jsonl")))
        .filter((entry) => entry.kind === "build-run")
        .map((entry) => `${entry.crate}: ${entry.outcome}`);
      return { ...measured, details: { ...measured.details, runs } };
    },
  },
];

/** Measures every row once, each in its own directory under `scratch`. */
export async function measureCBuild(scratch: string): Promise<CaseResult[]> {
  await using registry = await startSparseRegistry();
  const cargoHome = await createRegistryCargoHome(join(scratch, "c-build-home"), registry.indexUrl);
  // Fetched once, untimed: every row then has the sources at hand, as the floor does.
  const fetchDir = await copyFixture(FIXTURE, join(scratch, "c-build-fetch"));
  await Deno.remove(join(fetchDir, "Cargo.lock")).catch(() => {});
  const fetched = await runCargo(["fetch"], { cwd: fetchDir, env: { CARGO_HOME: cargoHome } });
  if (fetched.code !== 0) throw new Error(`Cannot fetch csys's crates: ${fetched.stderr}`);
  lockfile = await Deno.readTextFile(join(fetchDir, "Cargo.lock"));
  return await measureCase("c-build", ROWS, { scratch, fixture: FIXTURE, cargoHome });
}

/** The rows as a Markdown table. */
export function cBuildTable(results: CaseResult[]): string {
  return caseTable(
    `slow C build script (${FIXTURE} on cmath-sys, ${WEIGHT.CMATH_SYS_WEIGHT} C functions)`,
    results,
  );
}
