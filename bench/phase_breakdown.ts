// Where a hit's milliseconds go in the daemon, from the dispatch log (CARGO_WARMUP_LOG): each
// line's `phases` say when each phase ended, so a phase's own time is its end less the end before
// it. Hits are told apart by what was served (a crate compile, a build-script run: its key is
// made otherwise) and where the entry came from (a hot copy, a staged bundle, a bundle read by the
// call), the modes of the latency.

import type { DispatchLogEntry } from "../tests/_dispatch_log.ts";

/** Where a hit's entry came from, by the phases it went through (cache/lookup.ts). */
export type HitSource = "hot" | "staged" | "bundle";

/** p50 and p90 of a set of milliseconds. */
export interface Spread {
  p50: number;
  p90: number;
}

/** One kind of hit: how many, their whole time, and each phase's own time. */
export interface PhaseBreakdown {
  /** `compile` or `run` (a build-script run), and the source: `compile hot`, `run staged`. */
  kind: string;
  source: HitSource;
  hits: number;
  ms: Spread;
  /** In the order the phases end; `logged` is what follows the last phase up to the log line. */
  phases: Record<string, Spread>;
}

/**
 * What the phases of the hits in `entries` served by the daemon cost, one breakdown per source.
 *
 * @example
 * ```ts ignore
 * const [hot] = phaseBreakdown(await readDispatchLog(log));
 * console.log(hot.phases.keyed.p50);
 * ```
 */
export function phaseBreakdown(entries: DispatchLogEntry[]): PhaseBreakdown[] {
  const byKind = new Map<string, DispatchLogEntry[]>();
  for (const entry of entries) {
    if (entry.outcome !== "hit" || entry.via !== "daemon" || !isPhases(entry.phases)) continue;
    const kind = kindOfHit(entry);
    byKind.set(kind, [...(byKind.get(kind) ?? []), entry]);
  }
  const kinds = ["compile", "run"].flatMap((call) =>
    (["hot", "staged", "bundle"] as const).map((source) => ({ call, source }))
  );
  return kinds.flatMap(({ call, source }) => {
    const kind = `${call} ${source}`;
    const hits = byKind.get(kind);
    if (hits === undefined) return [];
    const durations = new Map<string, number[]>();
    for (const hit of hits) {
      for (const [phase, ms] of Object.entries(ownTimes(hit))) {
        durations.set(phase, [...(durations.get(phase) ?? []), ms]);
      }
    }
    return [{
      kind,
      source,
      hits: hits.length,
      ms: spread(hits.map((hit) => Number(hit.ms))),
      phases: Object.fromEntries([...durations].map(([phase, ms]) => [phase, spread(ms)])),
    }];
  });
}

/** What a hit served and from where: `compile hot`, `run staged`. */
export function kindOfHit(entry: DispatchLogEntry): string {
  const call = entry.kind === "build-run" ? "run" : "compile";
  return `${call} ${sourceOfHit(entry.phases as Record<string, number>)}`;
}

/** A hit's entry came from a staged bundle, a bundle it fetched itself, or a hot copy. */
export function sourceOfHit(phases: Record<string, number>): HitSource {
  if ("staged" in phases) return "staged";
  if ("fetched" in phases) return "bundle";
  return "hot";
}

/** Each phase's own milliseconds: its end less the previous phase's (the call's start first). */
function ownTimes(entry: DispatchLogEntry): Record<string, number> {
  const ended = Object.entries(entry.phases as Record<string, number>)
    .sort(([, a], [, b]) => a - b);
  const own: Record<string, number> = {};
  let before = 0;
  for (const [phase, end] of ended) {
    own[phase] = end - before;
    before = end;
  }
  own.logged = Math.max(0, Number(entry.ms) - before);
  return own;
}

function isPhases(value: unknown): value is Record<string, number> {
  return typeof value === "object" && value !== null &&
    Object.values(value).every((ms) => typeof ms === "number");
}

/** p50 and p90 of `ms`, to a tenth of a millisecond (the log's resolution). */
export function spread(ms: number[]): Spread {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round((sorted[Math.floor(q * (sorted.length - 1))] ?? NaN) * 10) / 10;
  return { p50: at(0.5), p90: at(0.9) };
}

/** The breakdowns of one build (or replay) as a Markdown table: one column pair per source. */
export function breakdownTable(title: string, breakdowns: PhaseBreakdown[]): string {
  const phases = [...new Set(breakdowns.flatMap((breakdown) => Object.keys(breakdown.phases)))];
  const cell = (value: Spread | undefined) => value ? `${value.p50} / ${value.p90}` : "";
  const header = [
    title,
    ...breakdowns.map((breakdown) => `${breakdown.kind} (${breakdown.hits}) p50 / p90 ms`),
  ];
  const rows = [
    ["whole hit (`ms`)", ...breakdowns.map((breakdown) => cell(breakdown.ms))],
    ...phases.map((phase) => [
      PHASE_LABELS[phase] ?? phase,
      ...breakdowns.map((breakdown) => cell(breakdown.phases[phase])),
    ]),
  ];
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** What each phase is, as the dispatcher names them (dispatch.ts, lookup.ts, serve_hit.ts). */
const PHASE_LABELS: Record<string, string> = {
  request: "request: the request frame read and parsed (from the accept)",
  configured: "configured: the build's cache and configuration",
  identified: "identified: the crate's source identity",
  rustc: "rustc: the compiler's identity",
  keyed: "keyed: linker, CPU and the key",
  staged: "staged: taken from staging (bundle unpacked ahead)",
  fetched: "fetched: the bundle read from its level",
  unpacked: "unpacked: hot copy read and stat-checked, or bundle verified and decompressed",
  verified: "verified: recorded inputs checked",
  restored: "restored: outputs linked, copied or written, stderr replayed",
  recorded: "recorded: hit counted, hot copy queued",
  logged: "logged: up to the dispatch log line",
};
