// Benchmark: cold `cargo build` wall-clock times of the fixture projects, built in every way of
// bench/ways.ts and bench/remote_ways.ts side by side, printed as a Markdown table (and written as
// JSON with --json).
//
//   deno run --allow-all bench/bench.ts [--json out.json] [--fixtures seed001,seed003]
//                                       [--only plain,warm] [--repeat 3] [--tier-one]
//                                       [--latency-rounds 7] [--skip-next-commit]
//                                       [--skip-c-build] [--skip-worktree]
//                                       [--worktree-fixture seed001]
//
// --tier-one adds the cost of `init --tier=1` next to plain cargo building the same crates.

import { parseArgs } from "node:util";
import { join } from "node:path";
import { createCargoHome, removeAll, stopDaemonsUnder, tempDir } from "../tests/_harness.ts";
import { type Measurement, type Way, WAYS } from "./ways.ts";
import { REMOTE_WAYS } from "./remote_ways.ts";
import { measureTierOne, type TierOneResult } from "./tier_one.ts";
import { type HitLatency, measureHitLatency, type ReplayPhases } from "./hit_latency.ts";
import { measureNextCommit, nextCommitTable } from "./next_commit.ts";
import { measureEditLoop, measureSecondWorktree, worktreeTables } from "./worktree.ts";
import type { CaseResult } from "./case_table.ts";
import { cBuildTable, measureCBuild } from "./c_build.ts";
import { errorMessage } from "../src/error_message.ts";
import { breakdownTable, type PhaseBreakdown } from "./phase_breakdown.ts";

/** The result of one way on one fixture: the median of the repeats, or why it failed. */
interface Cell {
  seconds: number | null;
  runs: number[];
  details?: Record<string, unknown>;
  error?: string;
}

type Results = Record<string, Record<string, Cell>>;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      json: { type: "string" },
      fixtures: { type: "string", default: "seed001,seed003" },
      only: { type: "string" },
      repeat: { type: "string", default: "1" },
      "tier-one": { type: "boolean", default: false },
      "latency-rounds": { type: "string", default: "7" },
      // Leaves the next-commit table (workspace caching, bench/next_commit.ts) out.
      "skip-next-commit": { type: "boolean", default: false },
      // Leaves the slow C build-script table (build-script runs, bench/c_build.ts) out.
      "skip-c-build": { type: "boolean", default: false },
      // Leaves the second worktree and edit loop tables (bench/worktree.ts) out.
      "skip-worktree": { type: "boolean", default: false },
      // The fixture of those tables.
      "worktree-fixture": { type: "string", default: "seed001" },
    },
  });
  const fixtures = values.fixtures.split(",").filter(Boolean);
  const wanted = values.only?.split(",").filter(Boolean);
  const all = [...WAYS, ...REMOTE_WAYS];
  const ways = wanted === undefined ? all : all.filter((way) => wanted.includes(way.id));
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) {
    throw new RangeError(`Invalid --repeat "${values.repeat}": expected a positive integer`);
  }

  await using scratch = await tempDir("cargo-warmup-bench-");
  const cargoHome = await createCargoHome(join(scratch.path, "cargo-home"));
  const results: Results = {};
  for (const fixture of fixtures) {
    results[fixture] = {};
    for (const way of ways) {
      results[fixture][way.id] = await measureWay(way, fixture, scratch.path, cargoHome, repeat);
    }
  }

  console.log(markdownTable(results, fixtures, ways));
  for (const fixture of fixtures) {
    for (const way of ways) {
      const hitMs = results[fixture]?.[way.id]?.details?.hitMs;
      if (hitMs !== undefined) {
        console.log(`${fixture} ${way.id}: per hit in the daemon (ms) ${JSON.stringify(hitMs)}`);
      }
      const hitPhases = results[fixture]?.[way.id]?.details?.hitPhases as
        | PhaseBreakdown[]
        | undefined;
      if (hitPhases !== undefined && hitPhases.length > 0) {
        console.log(`\n${breakdownTable(`${fixture} ${way.id}: a hit's phases`, hitPhases)}\n`);
      }
    }
  }
  const sizes = sizeTable(results, fixtures);
  if (sizes) console.log(`\n${sizes}`);
  const latencyRounds = Number(values["latency-rounds"]);
  let hitLatency: HitLatency | undefined;
  let replayPhases: Record<string, ReplayPhases> | undefined;
  if (latencyRounds > 0) {
    const replay = await measureHitLatency(scratch.path, cargoHome, "seed003", latencyRounds);
    hitLatency = replay.latency;
    replayPhases = replay.phases;
    console.log(
      "\n| per call, as cargo sees it (seed003's registry units) | p50 ms | p90 ms | calls |",
    );
    console.log("| --- | --- | --- | --- |");
    for (const [label, latency] of Object.entries(hitLatency)) {
      console.log(`| ${label} | ${latency.p50} | ${latency.p90} | ${latency.count} |`);
    }
    for (const [label, { breakdown, outsideDaemon }] of Object.entries(replayPhases)) {
      console.log(`\n${breakdownTable(`replay, ${label}: a hit's phases`, breakdown)}`);
      const outside = breakdown.map(({ kind }) => {
        const spread = outsideDaemon[kind];
        return spread ? `${spread.p50} / ${spread.p90}` : "";
      });
      console.log(
        `| as cargo sees it, beyond \`ms\` (front door, socket, request) | ${
          outside.join(" | ")
        } |`,
      );
    }
  }
  let nextCommit: CaseResult[] | undefined;
  if (!values["skip-next-commit"]) {
    nextCommit = await measureNextCommit(scratch.path, cargoHome);
    console.log(`\n${nextCommitTable(nextCommit)}`);
  }
  let worktree: { secondWorktree: CaseResult[]; editLoop: CaseResult[] } | undefined;
  if (!values["skip-worktree"]) {
    const fixture = values["worktree-fixture"];
    worktree = {
      secondWorktree: await measureSecondWorktree(scratch.path, cargoHome, fixture),
      editLoop: await measureEditLoop(scratch.path, cargoHome, fixture),
    };
    console.log(`\n${worktreeTables(fixture, worktree.secondWorktree, worktree.editLoop)}`);
  }
  let cBuild: CaseResult[] | undefined;
  if (!values["skip-c-build"]) {
    cBuild = await measureCBuild(scratch.path);
    console.log(`\n${cBuildTable(cBuild)}`);
  }
  let tierOne: TierOneResult | undefined;
  if (values["tier-one"]) {
    tierOne = await measureTierOne(scratch.path, cargoHome);
    console.log(
      `\ninit --tier=1 --profile dev: ${tierOne.initSeconds.toFixed(2)} s; plain cargo, same ` +
        `crates: ${tierOne.plainSeconds.toFixed(2)} s; ratio ` +
        `${(tierOne.initSeconds / tierOne.plainSeconds).toFixed(2)}× plain`,
    );
  }
  if (values.json !== undefined) {
    const report = {
      environment: await environment(),
      repeat,
      ways: describe(ways),
      results,
      ...(tierOne ? { tierOne } : {}),
      ...(hitLatency ? { hitLatency, replayPhases } : {}),
      ...(nextCommit ? { nextCommit } : {}),
      ...(worktree ? { worktree } : {}),
      ...(cBuild ? { cBuild } : {}),
    };
    await Deno.writeTextFile(values.json, JSON.stringify(report, null, 2) + "\n");
  }
}

/** Bytes at rest per project: target/debug, cargo-warmup's cache (and its hot copies), sccache's. */
function sizeTable(results: Results, fixtures: string[]): string | undefined {
  const mib = (bytes: number) => (bytes / 1024 ** 2).toFixed(1);
  const rows = fixtures.flatMap((fixture) => {
    const warm = results[fixture]?.warm?.details as
      | { targetBytes: number; cacheBytes: number; hotBytes: number; twoTargetsBytes?: number }
      | undefined;
    if (warm?.targetBytes === undefined) return [];
    const sccache = (results[fixture]?.sccache?.details as Record<string, number> | undefined)
      ?.cacheBytes;
    const ratio = (bytes: number) => `${(bytes / warm.targetBytes).toFixed(2)}×`;
    return [
      `| ${fixture} | ${mib(warm.targetBytes)} | ${mib(warm.cacheBytes)} (${
        ratio(warm.cacheBytes)
      }) | ${mib(warm.hotBytes)} | ` +
      (warm.twoTargetsBytes === undefined
        ? "n/a | "
        : `${mib(warm.twoTargetsBytes)} (${ratio(warm.twoTargetsBytes)}) | `) +
      (sccache === undefined ? "n/a |" : `${mib(sccache)} (${ratio(sccache)}) |`),
    ];
  });
  if (rows.length === 0) return undefined;
  return [
    "| bytes at rest per project | target/debug MiB | cargo-warmup cache MiB | of which hot copies MiB | cache + both copies' target dirs, each file once, MiB | sccache cache MiB |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

async function measureWay(
  way: Way,
  fixture: string,
  scratch: string,
  cargoHome: string,
  repeat: number,
): Promise<Cell> {
  const runs: Measurement[] = [];
  try {
    for (let index = 0; index < repeat; index++) {
      // A fresh directory per run: every timed build starts without a target dir.
      const work = join(scratch, `${fixture}-${way.id}-${index}`);
      await Deno.mkdir(work, { recursive: true });
      try {
        const measurement = await way.measure({ fixture, work, cargoHome });
        // Milliseconds are already below the noise of a build on a busy machine.
        runs.push({ ...measurement, seconds: Math.round(measurement.seconds * 1000) / 1000 });
        console.error(`${fixture} ${way.id}: ${measurement.seconds.toFixed(2)} s`);
      } finally {
        // A way's daemons go with its directory, before the next way is timed.
        await stopDaemonsUnder(work);
        await removeAll(work);
      }
    }
  } catch (error) {
    const message = errorMessage(error);
    console.error(`${fixture} ${way.id}: failed: ${message}`);
    return { seconds: null, runs: runs.map((run) => run.seconds), error: message };
  }
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return {
    seconds: median.seconds,
    runs: runs.map((run) => run.seconds),
    ...(median.details === undefined ? {} : { details: median.details }),
  };
}

function markdownTable(results: Results, fixtures: string[], ways: Way[]): string {
  const header = ["way", ...fixtures.flatMap((fixture) => [`${fixture} (s)`, `${fixture} ratio`])];
  const rows = ways.map((way) => [
    way.label,
    ...fixtures.flatMap((fixture) => {
      const cell = results[fixture]?.[way.id];
      const seconds = cell?.seconds;
      if (seconds === null || seconds === undefined) return ["failed", ""];
      const ratios = (way.baselines ?? []).flatMap((baseline) => {
        const base = results[fixture]?.[baseline]?.seconds;
        return base ? [`${(seconds / base).toFixed(2)}× ${baseline}`] : [];
      });
      return [seconds.toFixed(2), ratios.join(", ")];
    }),
  ]);
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function describe(ways: Way[]): { id: string; label: string; baselines?: string[] }[] {
  return ways.map(({ id, label, baselines }) => ({
    id,
    label,
    ...(baselines ? { baselines } : {}),
  }));
}

async function environment(): Promise<Record<string, string | number>> {
  const version = async (command: string, args: string[]) => {
    const output = await new Deno.Command(command, { args }).output().catch(() => undefined);
    return output?.success ? new TextDecoder().decode(output.stdout).trim() : "unavailable";
  };
  return {
    date: new Date().toISOString(),
    cpus: navigator.hardwareConcurrency,
    rustc: await version("rustc", ["--version"]),
    cargo: await version("cargo", ["--version"]),
    sccache: await version("sccache", ["--version"]),
    deno: Deno.version.deno,
  };
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`error: ${errorMessage(error)}`);
    Deno.exit(error instanceof RangeError || error instanceof TypeError ? 2 : 1);
  }
}
