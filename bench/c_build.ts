// A slow C build script (issue: build-script runs served from the cache): the csys fixture on
// cmath-sys, whose build script compiles CMATH_SYS_WEIGHT generated C functions with the cc
// crate, from the tests' loopback registry. Rows: the floor (only csys itself compiles), plain
// cargo, sccache and cargo-warmup, each warmed by a sibling copy; every build is a fresh copy.

import { join } from "node:path";
import {
  copyFixture,
  readDispatchLog,
  removeAll,
  runCargo,
  stopDaemonsUnder,
} from "../tests/_harness.ts";
import { createRegistryCargoHome, startSparseRegistry } from "../tests/_sparse_registry.ts";
import {
  type BenchContext,
  build,
  type Measurement,
  sccacheBuild,
  warmupBuild,
  withSccache,
} from "./ways.ts";

const FIXTURE = "csys";
/** Generated C functions: a C build of a few seconds on the 2-core machine, like onig_sys's. */
const WEIGHT = { CMATH_SYS_WEIGHT: "600" };

/** One row of the table. */
export interface CBuildRow {
  id: string;
  label: string;
  seconds: number;
  details?: Record<string, unknown>;
}

/** The registry's lockfile of the fixture, written by the untimed fetch. */
let lockfile = "";

/** A fresh copy of the fixture with the registry's lockfile, in `context.work`. */
async function copy(context: BenchContext, name: string): Promise<string> {
  const dir = await copyFixture(FIXTURE, join(context.work, name));
  await Deno.writeTextFile(join(dir, "Cargo.lock"), lockfile);
  return dir;
}

type Measure = (context: BenchContext) => Promise<Measurement>;

const ROWS: Array<{ id: string; label: string; measure: Measure }> = [
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
export async function measureCBuild(scratch: string): Promise<CBuildRow[]> {
  await using registry = await startSparseRegistry();
  const cargoHome = await createRegistryCargoHome(join(scratch, "c-build-home"), registry.indexUrl);
  // Fetched once, untimed: every row then has the sources at hand, as the floor does.
  const fetchDir = await copyFixture(FIXTURE, join(scratch, "c-build-fetch"));
  await Deno.remove(join(fetchDir, "Cargo.lock")).catch(() => {});
  const fetched = await runCargo(["fetch"], { cwd: fetchDir, env: { CARGO_HOME: cargoHome } });
  if (fetched.code !== 0) throw new Error(`Cannot fetch csys's crates: ${fetched.stderr}`);
  lockfile = await Deno.readTextFile(join(fetchDir, "Cargo.lock"));
  const rows: CBuildRow[] = [];
  for (const row of ROWS) {
    const work = join(scratch, `c-build-${row.id}`);
    await Deno.mkdir(work, { recursive: true });
    try {
      const measured = await row.measure({ fixture: FIXTURE, work, cargoHome });
      console.error(`c build ${row.id}: ${measured.seconds.toFixed(2)} s`);
      rows.push({ id: row.id, label: row.label, ...measured });
    } finally {
      await stopDaemonsUnder(work);
      await removeAll(work);
    }
  }
  return rows;
}

/** The rows as a Markdown table, against the floor (and cargo-warmup against sccache). */
export function cBuildTable(rows: CBuildRow[]): string {
  const seconds = (id: string) => rows.find((row) => row.id === id)?.seconds;
  const floor = seconds("floor");
  const sccache = seconds("sccache");
  const lines = rows.map((row) => {
    const ratios = [
      floor && row.id !== "floor" ? `${(row.seconds / floor).toFixed(2)}× floor` : "",
      sccache && row.id === "warm" ? `${(row.seconds / sccache).toFixed(2)}× sccache` : "",
    ].filter(Boolean);
    return `| ${row.label} | ${row.seconds.toFixed(2)} | ${ratios.join(", ")} |`;
  });
  return [
    `| slow C build script (${FIXTURE} on cmath-sys, ${WEIGHT.CMATH_SYS_WEIGHT} C functions) | s | ratio |`,
    "| --- | --- | --- |",
    ...lines,
  ].join("\n");
}
