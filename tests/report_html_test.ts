// The build report's renderer on synthetic journals: lanes never overlap, totals add up, and
// nothing from the journal (crate names, versions, reasons, the project) can inject markup.

import assert from "node:assert/strict";
import { assignLanes, renderReport, reportTotals } from "../src/journal/report_html.ts";
import type { JournalBuild, JournalCall } from "../src/index/journal_tables.ts";

const BUILD: JournalBuild = {
  id: "4242@1700000000",
  project: "/work/demo",
  lockfile: "",
  warming: false,
  started: 1_000_000,
  ended: 1_002_000,
  calls: 0,
};

function call(fields: Partial<JournalCall> & Pick<JournalCall, "crate" | "started" | "ms">) {
  return {
    build: BUILD.id,
    project: BUILD.project,
    lockfile: "",
    warming: false,
    version: "1.0.0",
    kind: "lib",
    outcome: "hit",
    ...fields,
  } satisfies JournalCall;
}

/** The `<g class="call …">` elements of a page, each as its attributes. */
function barsOf(html: string): Array<Record<string, string>> {
  return [...html.matchAll(/<g class="call ([^"]*)"([^>]*)>/g)].map(([, outcome, rest]) => ({
    class: outcome!,
    ...Object.fromEntries([...rest!.matchAll(/ ([a-z-]+)="([^"]*)"/g)].map(([, k, v]) => [k, v])),
  }));
}

Deno.test("assignLanes puts overlapping spans on different lanes and reuses freed ones", () => {
  const spans = [
    { started: 0, ms: 100 }, // lane 1: the next one starts at the same time and is longer
    { started: 10, ms: 20 }, // lane 2
    { started: 40, ms: 10 }, // lane 2 again: free since 30
    { started: 45, ms: 100 }, // every lane busy: a new one
    { started: 100, ms: 5 }, // lane 1, free at 100 exactly
    { started: 0, ms: 300 }, // starts with the first, longer: lane 0
  ];
  const lanes = assignLanes(spans);
  assert.deepEqual(lanes, [1, 2, 2, 3, 1, 0]);
  // No two spans of a lane overlap, whatever the order.
  for (let a = 0; a < spans.length; a++) {
    for (let b = a + 1; b < spans.length; b++) {
      if (lanes[a] !== lanes[b]) continue;
      const [x, y] = [spans[a]!, spans[b]!];
      assert.ok(x.started + x.ms <= y.started || y.started + y.ms <= x.started, `${a} and ${b}`);
    }
  }
});

Deno.test("assignLanes gives short spans their minimum width, so tiny bars never touch", () => {
  // Three 1 ms calls a millisecond apart: far apart in time, but drawn 5 ms wide each.
  const spans = [{ started: 0, ms: 1 }, { started: 2, ms: 1 }, { started: 4, ms: 1 }];
  assert.deepEqual(assignLanes(spans), [0, 0, 0]);
  assert.deepEqual(assignLanes(spans, 5), [0, 1, 2]);
});

Deno.test("reportTotals sums hits' savings and bytes and takes nearest-rank percentiles", () => {
  const hits = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10].map((ms, i) =>
    call({ crate: `c${i}`, started: i, ms, savedMs: 100, bytes: 1000 })
  );
  const totals = reportTotals([
    ...hits,
    call({ crate: "m", started: 0, ms: 500, outcome: "miss", rustcMs: 490 }),
    call({ crate: "n", started: 0, ms: 50, outcome: "not-cacheable", reason: "path crate" }),
  ]);
  assert.deepEqual(totals, {
    calls: 12,
    served: 10,
    compiled: 1,
    notCacheable: 1,
    savedMs: 1000,
    bytesRestored: 10_000,
    hitP50Ms: 5,
    hitP90Ms: 9,
  });
  assert.equal(reportTotals([]).hitP50Ms, undefined);
});

Deno.test("the page has one bar per call, classed by outcome, with its lane and details", () => {
  const calls = [
    call({ crate: "serde", started: 1_000_000, ms: 400, outcome: "miss", key: "ab".repeat(32) }),
    call({ crate: "itoa", started: 1_000_010, ms: 8, savedMs: 90, bytes: 2048 }),
    call({ crate: "memchr", started: 1_000_020, ms: 12, kind: "build-run", savedMs: 0 }),
    call({ crate: "shared", started: 1_000_500, ms: 300, outcome: "not-cacheable" }),
  ];
  const html = renderReport(BUILD, calls);
  const bars = barsOf(html);
  assert.deepEqual(
    bars.map((bar) => [bar["data-crate"], bar["data-kind"], bar.class, bar["data-lane"]]),
    [
      ["serde", "lib", "miss", "0"],
      ["itoa", "lib", "hit", "1"],
      ["memchr", "build-run", "hit", "1"],
      ["shared", "lib", "not-cacheable", "0"],
    ],
  );
  assert.match(html, /data-total="savedMs" data-value="90">90 ms</);
  assert.match(html, /data-total="bytesRestored" data-value="2048">2\.0 KiB</);
  assert.match(html, /data-total="hitP50Ms" data-value="8">8 ms</);
  assert.match(html, /data-total="hitP90Ms" data-value="12">12 ms</);
  assert.match(html, /<title>serde 1\.0\.0 \(lib\)\ncompiled and stored\n/);
  assert.match(html, /<title>itoa 1\.0\.0 \(lib\)\nserved from the cache\n.*\nsaved 90 ms/);
  // Self-contained: nothing is fetched.
  assert.doesNotMatch(html, /\b(src|href)=|url\(|@import|<script/i);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
});

Deno.test("strings from the journal cannot inject markup", () => {
  const hostile = `x"><img src=x onerror=alert(1)><script>alert('x')</script>&amp;`;
  const html = renderReport({ ...BUILD, project: hostile, id: hostile }, [
    call({ crate: hostile, version: hostile, kind: hostile, started: 1_000_000, ms: 1000 }),
    call({
      crate: "ok",
      started: 1_000_000,
      ms: 10,
      outcome: "not-cacheable",
      reason: hostile,
    }),
  ]);
  assert.doesNotMatch(html, /<img|<script|onerror="/i);
  assert.ok(html.includes("x&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;"));
  assert.ok(html.includes("alert(&#39;x&#39;)&lt;/script&gt;&amp;amp;"));
  const bars = barsOf(html);
  assert.equal(bars.length, 2);
  assert.equal(bars[0]!.class, "hit");
});

Deno.test("a build without calls still renders, saying so", () => {
  const html = renderReport(BUILD, []);
  assert.match(html, /No calls were recorded/);
  assert.equal(barsOf(html).length, 0);
  assert.match(html, /data-total="hitP50Ms">no hits</);
});
