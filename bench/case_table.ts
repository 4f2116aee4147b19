// A benchmark case of its own, beside the per-fixture table: a few rows (a floor, plain cargo,
// sccache, cargo-warmup) of one fixture, each measured once in its own directory, printed as a
// Markdown table of seconds with every row against the floor and cargo-warmup against sccache.

import { join } from "node:path";
import { removeAll, stopDaemonsUnder } from "../tests/_harness.ts";
import type { BenchContext, Measurement } from "./ways.ts";

/** One row of a case: `floor`, `sccache` and `warm` are the ids the ratios use. */
export interface CaseRow {
  id: string;
  label: string;
  measure(context: BenchContext): Promise<Measurement>;
}

/** A measured row. */
export interface CaseResult extends Measurement {
  id: string;
  label: string;
}

/** Measures every row once, each in `scratch/<name>-<id>`, removed (daemons stopped) after. */
export async function measureCase(
  name: string,
  rows: CaseRow[],
  context: { scratch: string; fixture: string; cargoHome: string },
): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const row of rows) {
    const work = join(context.scratch, `${name}-${row.id}`);
    await Deno.mkdir(work, { recursive: true });
    try {
      const measured = await row.measure({
        fixture: context.fixture,
        work,
        cargoHome: context.cargoHome,
      });
      console.error(`${name} ${row.id}: ${measured.seconds.toFixed(2)} s`);
      results.push({ id: row.id, label: row.label, ...measured });
    } finally {
      await stopDaemonsUnder(work);
      await removeAll(work);
    }
  }
  return results;
}

/** The results as a Markdown table headed by `title`. */
export function caseTable(title: string, results: CaseResult[]): string {
  const seconds = (id: string) => results.find((result) => result.id === id)?.seconds;
  const floor = seconds("floor");
  const sccache = seconds("sccache");
  const lines = results.map((result) => {
    const ratios = [
      floor && result.id !== "floor" ? `${(result.seconds / floor).toFixed(2)}× floor` : "",
      sccache && result.id === "warm" ? `${(result.seconds / sccache).toFixed(2)}× sccache` : "",
    ].filter(Boolean);
    return `| ${result.label} | ${result.seconds.toFixed(2)} | ${ratios.join(", ")} |`;
  });
  return [`| ${title} | s | ratio |`, "| --- | --- | --- |", ...lines].join("\n");
}
