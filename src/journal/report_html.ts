/**
 * The build report: one self-contained HTML page (inline CSS and SVG, no script, nothing fetched)
 * drawing a build's calls from the journal as a timeline, one bar per rustc call and build-script
 * run, coloured by outcome, with the totals above it. A pure function of the journal's rows;
 * `cargo-warmup report` (src/cli/report.ts) writes it to a file.
 * @module
 */

import { formatBytes, formatDuration, formatUtcTime } from "../units.ts";
import type { JournalBuild, JournalCall } from "../index/journal_tables.ts";

/** What a build's calls add up to. */
export interface ReportTotals {
  calls: number;
  /** Calls served from the cache. */
  served: number;
  /** Calls compiled (or run) by rustc and stored. */
  compiled: number;
  notCacheable: number;
  /** Compile time the hits saved. */
  savedMs: number;
  /** Bytes the hits wrote into the build. */
  bytesRestored: number;
  /** How long a hit took, median and 90th percentile (nearest rank); absent without hits. */
  hitP50Ms?: number;
  hitP90Ms?: number;
}

/**
 * Adds up a build's calls.
 *
 * @example
 * ```ts
 * import { reportTotals } from "./report_html.ts";
 * const call = { build: "1@2", project: "/p", lockfile: "", warming: false, crate: "itoa", version: "1.0.1" };
 * const totals = reportTotals([
 *   { ...call, started: 0, ms: 4, kind: "lib", outcome: "hit", savedMs: 80, bytes: 1000 },
 *   { ...call, started: 0, ms: 90, kind: "lib", outcome: "miss" },
 * ]);
 * if (totals.savedMs !== 80 || totals.hitP50Ms !== 4 || totals.compiled !== 1) throw new Error();
 * ```
 */
export function reportTotals(calls: readonly JournalCall[]): ReportTotals {
  const hits = calls.filter((call) => call.outcome === "hit");
  const hitMs = hits.map((call) => call.ms).sort((a, b) => a - b);
  const totals: ReportTotals = {
    calls: calls.length,
    served: hits.length,
    compiled: calls.filter((call) => call.outcome === "miss").length,
    notCacheable: calls.filter((call) => call.outcome === "not-cacheable").length,
    savedMs: hits.reduce((sum, call) => sum + (call.savedMs ?? 0), 0),
    bytesRestored: hits.reduce((sum, call) => sum + (call.bytes ?? 0), 0),
  };
  if (hitMs.length > 0) {
    totals.hitP50Ms = nearestRank(hitMs, 50);
    totals.hitP90Ms = nearestRank(hitMs, 90);
  }
  return totals;
}

function nearestRank(sorted: readonly number[], percent: number): number {
  const rank = Math.max(1, Math.ceil((percent / 100) * sorted.length));
  return sorted[rank - 1] ?? 0;
}

/**
 * The lane of each span (in the given order), like `cargo build --timings`: the first lane whose
 * last span has ended, so spans sharing a lane never overlap. A span is at least `minMs` long
 * (what a bar's smallest visible width stands for), so short bars do not overlap either.
 *
 * @example
 * ```ts
 * import { assignLanes } from "./report_html.ts";
 * const lanes = assignLanes([{ started: 0, ms: 10 }, { started: 5, ms: 10 }, { started: 12, ms: 1 }]);
 * if (lanes.join() !== "0,1,0") throw new Error(lanes.join());
 * ```
 */
export function assignLanes(
  spans: ReadonlyArray<{ started: number; ms: number }>,
  minMs = 0,
): number[] {
  // Earliest first; of two starting together, the longer one takes the lower lane.
  const order = spans.map((_, i) => i).sort((a, b) =>
    spans[a]!.started - spans[b]!.started || spans[b]!.ms - spans[a]!.ms || a - b
  );
  const laneEnds: number[] = [];
  const lanes = new Array<number>(spans.length).fill(0);
  for (const i of order) {
    const span = spans[i]!;
    let lane = laneEnds.findIndex((end) => end <= span.started);
    if (lane === -1) lane = laneEnds.length;
    laneEnds[lane] = span.started + Math.max(span.ms, minMs);
    lanes[i] = lane;
  }
  return lanes;
}

/** The outcomes as the page names them. */
const OUTCOME_LABEL: Record<JournalCall["outcome"], string> = {
  hit: "served from the cache",
  miss: "compiled and stored",
  "not-cacheable": "not cacheable",
};

// Chart geometry, in SVG user units (the SVG scales to the page's width).
const CHART_WIDTH = 1200;
const MARGIN = 8;
const AXIS_HEIGHT = 22;
const BAR_HEIGHT = 18;
const LANE_PITCH = 22;
const MIN_BAR_WIDTH = 2;
const LABEL_CHAR_WIDTH = 6.4;

/**
 * The report page of `build` with its `calls` (as `JournalTables.callsOf` returns them). Every
 * string from the journal is escaped.
 *
 * @example
 * ```ts
 * import { renderReport } from "./report_html.ts";
 * const build = { id: "1@2", project: "/p", lockfile: "", warming: false, started: 0, ended: 90, calls: 1 };
 * const html = renderReport(build, [{
 *   build: "1@2", project: "/p", lockfile: "", warming: false, started: 0, ms: 90,
 *   crate: "<b>", version: "1.0.0", kind: "lib", outcome: "miss",
 * }]);
 * if (html.includes("<b>") || !html.includes("&lt;b&gt;")) throw new Error("not escaped");
 * ```
 */
export function renderReport(build: JournalBuild, calls: readonly JournalCall[]): string {
  const totals = reportTotals(calls);
  const title = `cargo-warmup report: ${build.project || "build"} (${build.id})`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Build of <code>${escapeHtml(build.project || "(unknown project)")}</code></h1>
<p class="meta">build <code>${escapeHtml(build.id)}</code>${
    build.warming ? " (a warm-up's)" : ""
  }, started ${escapeHtml(formatUtcTime(build.started))}, ${
    escapeHtml(formatDuration(Math.max(0, build.ended - build.started)))
  } from its first call to the end of its last</p>
${renderTotals(totals)}
${renderLegend()}
${calls.length === 0 ? '<p class="empty">No calls were recorded.</p>' : renderTimeline(calls)}
${calls.length === 0 ? "" : renderCallTable(calls, build.started)}
</body>
</html>
`;
}

const STYLE = `
:root { color-scheme: light; --hit: #2f9e5b; --miss: #e0861b; --not-cacheable: #8b8f97; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1d2127; background: #fff; }
h1 { font-size: 18px; margin: 0 0 4px; } code { font: 13px ui-monospace, monospace; }
.meta { color: #555b64; margin: 0 0 12px; }
.totals { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 0 0 12px; }
.totals div { min-width: 110px; } .totals dt { color: #555b64; font-size: 12px; }
.totals dd { margin: 0; font-size: 18px; font-weight: 600; }
.legend span { margin-right: 18px; } .legend i { display: inline-block; width: 12px;
  height: 12px; margin-right: 5px; vertical-align: -1px; }
.legend .hit i, .timeline .hit rect { background: var(--hit); fill: var(--hit); }
.legend .miss i, .timeline .miss rect { background: var(--miss); fill: var(--miss); }
.legend .not-cacheable i, .timeline .not-cacheable rect { background: var(--not-cacheable);
  fill: var(--not-cacheable); }
.timeline { display: block; width: 100%; height: auto; margin: 8px 0 16px; }
.timeline rect { shape-rendering: crispEdges; }
.timeline .call:hover rect { stroke: #1d2127; stroke-width: 1; }
.timeline .call text { fill: #fff; font: 11px system-ui, sans-serif; pointer-events: none; }
.timeline .axis line { stroke: #e3e5e8; } .timeline .axis text { fill: #555b64; font: 10px system-ui, sans-serif; }
table { border-collapse: collapse; font-size: 12px; } th, td { padding: 2px 10px 2px 0;
  text-align: left; } td.n, th.n { text-align: right; } tr.hit td.o { color: var(--hit); }
tr.miss td.o { color: var(--miss); } tr.not-cacheable td.o { color: #5e636b; }
summary { cursor: pointer; margin-bottom: 6px; }
`;

function renderTotals(totals: ReportTotals): string {
  const item = (name: string, label: string, value: number | undefined, text: string) =>
    `<div><dt>${label}</dt><dd data-total="${name}"${
      value === undefined ? "" : ` data-value="${value}"`
    }>${escapeHtml(text)}</dd></div>`;
  const ms = (value: number | undefined) => value === undefined ? "no hits" : formatDuration(value);
  return `<dl class="totals">
${item("savedMs", "time saved", totals.savedMs, formatDuration(totals.savedMs))}
${item("bytesRestored", "restored", totals.bytesRestored, formatBytes(totals.bytesRestored))}
${item("hitP50Ms", "a hit took (p50)", totals.hitP50Ms, ms(totals.hitP50Ms))}
${item("hitP90Ms", "a hit took (p90)", totals.hitP90Ms, ms(totals.hitP90Ms))}
${item("calls", "calls", totals.calls, String(totals.calls))}
${item("served", "served", totals.served, String(totals.served))}
${item("compiled", "compiled and stored", totals.compiled, String(totals.compiled))}
${item("notCacheable", "not cacheable", totals.notCacheable, String(totals.notCacheable))}
</dl>`;
}

function renderLegend(): string {
  const outcomes = Object.entries(OUTCOME_LABEL) as Array<[JournalCall["outcome"], string]>;
  return `<p class="legend">${
    outcomes.map(([outcome, label]) => `<span class="${outcome}"><i></i>${label}</span>`).join("")
  } <small>(hover a bar for details)</small></p>`;
}

function renderTimeline(calls: readonly JournalCall[]): string {
  const first = Math.min(...calls.map((call) => call.started));
  const last = Math.max(...calls.map((call) => call.started + call.ms));
  const spanMs = Math.max(last - first, 1);
  const scale = CHART_WIDTH / spanMs;
  // One unit of gap keeps neighbours in a lane apart.
  const lanes = assignLanes(calls, (MIN_BAR_WIDTH + 1) / scale);
  const laneCount = Math.max(...lanes) + 1;
  const height = AXIS_HEIGHT + laneCount * LANE_PITCH + MARGIN;
  const width = CHART_WIDTH + 2 * MARGIN;
  const bars = calls.map((call, i) => {
    const x = MARGIN + (call.started - first) * scale;
    const y = AXIS_HEIGHT + lanes[i]! * LANE_PITCH;
    const barWidth = Math.max(call.ms * scale, MIN_BAR_WIDTH);
    const label = fitLabel(call, barWidth);
    const text = label === undefined
      ? ""
      : `<text x="${round(x + 3)}" y="${y + 13}">${escapeHtml(label)}</text>`;
    return `<g class="call ${escapeHtml(call.outcome)}" data-crate="${
      escapeHtml(call.crate)
    }" data-version="${escapeHtml(call.version)}" data-kind="${
      escapeHtml(call.kind)
    }" data-outcome="${escapeHtml(call.outcome)}" data-lane="${lanes[i]}"><title>${
      escapeHtml(detailsOf(call, first))
    }</title><rect x="${round(x)}" y="${y}" width="${
      round(barWidth)
    }" height="${BAR_HEIGHT}"></rect>${text}</g>`;
  });
  return `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" role="img" aria-label="timeline of ${calls.length} calls">
${renderAxis(spanMs, scale, height)}
${bars.join("\n")}
</svg>`;
}

function renderAxis(spanMs: number, scale: number, height: number): string {
  // A round step giving at most ten ticks: 1, 2 or 5 times a power of ten milliseconds.
  const magnitude = 10 ** Math.floor(Math.log10(spanMs / 10));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => spanMs / s <= 10) ??
    10 * magnitude;
  const ticks: string[] = [];
  for (let t = 0; t <= spanMs; t += step) {
    const x = round(MARGIN + t * scale);
    ticks.push(
      `<line x1="${x}" y1="${AXIS_HEIGHT - 4}" x2="${x}" y2="${height}"></line>` +
        `<text x="${x + 2}" y="${AXIS_HEIGHT - 8}">${escapeHtml(formatDuration(t))}</text>`,
    );
  }
  return `<g class="axis">${ticks.join("")}</g>`;
}

function renderCallTable(calls: readonly JournalCall[], buildStarted: number): string {
  const rows = calls.map((call) =>
    `<tr class="${escapeHtml(call.outcome)}"><td class="n">${
      escapeHtml(formatDuration(Math.max(0, call.started - buildStarted)))
    }</td><td>${escapeHtml(call.crate)}</td><td>${escapeHtml(call.version)}</td><td>${
      escapeHtml(call.kind)
    }</td><td class="o">${OUTCOME_LABEL[call.outcome]}</td><td class="n">${
      escapeHtml(formatDuration(call.ms))
    }</td><td class="n">${
      call.savedMs === undefined ? "" : escapeHtml(formatDuration(call.savedMs))
    }</td><td class="n">${
      call.bytes === undefined ? "" : escapeHtml(formatBytes(call.bytes))
    }</td><td>${escapeHtml(call.reason ?? "")}</td></tr>`
  );
  return `<details><summary>All ${calls.length} calls</summary>
<table class="calls"><thead><tr><th class="n">start</th><th>crate</th><th>version</th><th>kind</th><th>outcome</th><th class="n">took</th><th class="n">saved</th><th class="n">restored</th><th>reason</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody></table></details>`;
}

/** A bar's text: the crate, and what of it the call was when not its library. */
function labelOf(call: JournalCall): string {
  const what: Record<string, string> = {
    "build-script": "build script",
    "build-run": "build script (run)",
  };
  return call.kind === "lib" ? call.crate : `${call.crate} ${what[call.kind] ?? call.kind}`;
}

/** What of a bar's text fits in `width`: all of it, the crate, or the crate's start. */
function fitLabel(call: JournalCall, width: number): string | undefined {
  const room = Math.floor((width - 6) / LABEL_CHAR_WIDTH);
  const label = labelOf(call);
  if (label.length <= room) return label;
  if (call.crate.length <= room) return call.crate;
  return room >= 4 ? `${call.crate.slice(0, room - 1)}…` : undefined;
}

/** A bar's tooltip. */
function detailsOf(call: JournalCall, first: number): string {
  const lines = [
    `${call.crate} ${call.version} (${call.kind})`,
    `${OUTCOME_LABEL[call.outcome]}${call.reason ? `: ${call.reason}` : ""}`,
    `at ${formatDuration(call.started - first)}, took ${formatDuration(call.ms)}` +
    (call.rustcMs === undefined ? "" : ` (rustc ${formatDuration(call.rustcMs)})`),
  ];
  if (call.savedMs !== undefined) lines.push(`saved ${formatDuration(call.savedMs)}`);
  if (call.bytes !== undefined) lines.push(`restored ${formatBytes(call.bytes)}`);
  if (call.key !== undefined) lines.push(`key ${call.key.slice(0, 16)}…`);
  if (call.slot !== undefined && call.slot !== call.key) {
    lines.push(`served from variant ${call.slot.slice(0, 16)}…`);
  }
  return lines.join("\n");
}

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text safe in an element or a quoted attribute. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ENTITIES[char]!);
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
