// `cargo-warmup report` end to end: a real build through the cache (hits, misses and the
// workspace's own crates, not cacheable), the report written by the CLI, and the page rendered by headless
// Chromium: its DOM has a bar for every call of the journal, classed by outcome, and the totals;
// its screenshot shows the bars in their colours. Also: hostile journal strings stay text in the
// browser, --out, --open and the errors.

import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { inflateSync } from "node:zlib";
import {
  copyFixture,
  copySharedWarmCache,
  createCargoHome,
  exists,
  removeAll,
  runCargo,
  runWarmup,
  tempDir,
  waitUntil,
  warmupEnv,
} from "./_harness.ts";
import { openIndex } from "../src/index/index_db.ts";
import type { JournalCall } from "../src/index/journal_tables.ts";
import { renderReport, reportTotals } from "../src/journal/report_html.ts";
import { openInBrowser, REPORT_FILE } from "../src/cli/report.ts";

const CHROMIUM = "/usr/bin/chromium";
const WINDOW = { width: 1400, height: 2000 };
// The page's colours (report_html.ts) and its legend swatches (12 x 12 CSS pixels each).
const COLOURS: Record<JournalCall["outcome"], [number, number, number]> = {
  hit: [0x2f, 0x9e, 0x5b],
  miss: [0xe0, 0x86, 0x1b],
  "not-cacheable": [0x8b, 0x8f, 0x97],
};
const SWATCH_PIXELS = 12 * 12;

Deno.test("report draws every call of a real build, and Chromium renders the bars", async () => {
  await using dir = await tempDir();
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  // serde's "rc" feature: serde and serde_json compile and are stored, tokio and the rest are
  // served. Without incremental compiles the workspace's crates reach the cache, which refuses
  // them (an incremental compile is passed through before the cache is even opened: no record).
  const project = await copyFixture("seed001_extra_feature", join(dir.path, "project"));
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const env = { ...warmupEnv({ cacheDir, cargoHome }), CARGO_INCREMENTAL: "0" };
  const build = await runCargo(["build", "--locked"], { cwd: project, env });
  assert.equal(build.code, 0, build.stderr);

  const report = await runWarmup(["report"], { cwd: project, env });
  assert.equal(report.code, 0, report.stderr);
  const page = join(project, "target", REPORT_FILE);
  assert.equal(report.stdout.trim(), page);

  // From outside the project: --all finds the build, --out puts the same page elsewhere.
  const elsewhere = await runWarmup(["report", "--all", "--out", "reports/last.html"], {
    cwd: dir.path,
    env,
  });
  assert.equal(elsewhere.code, 0, elsewhere.stderr);
  assert.equal(elsewhere.stdout.trim(), join(dir.path, "reports", "last.html"));
  assert.equal(await Deno.readTextFile(elsewhere.stdout.trim()), await Deno.readTextFile(page));

  const calls = journalCallsOfLastBuild(cacheDir);
  const byOutcome = countBy(calls, (call) => call.outcome);
  for (const outcome of ["hit", "miss", "not-cacheable"] as const) {
    assert.ok(byOutcome.get(outcome), `no ${outcome} in the build: ${described(calls)}`);
  }
  assert.ok(reportTotals(calls).savedMs > 0 && reportTotals(calls).bytesRestored > 0);
  await assertRendersCalls(dir.path, page, calls);
});

Deno.test("the browser check fails on a page without its hit bars, or with them uncoloured", async () => {
  await using dir = await tempDir();
  const base = {
    build: "1@2",
    project: "/p",
    lockfile: "",
    warming: false,
    version: "1.0.0",
    kind: "lib",
  };
  const calls: JournalCall[] = [
    { ...base, crate: "a", started: 0, ms: 30, outcome: "hit", savedMs: 300, bytes: 1000 },
    { ...base, crate: "b", started: 5, ms: 8, outcome: "hit", savedMs: 90, bytes: 500 },
    { ...base, crate: "c", started: 10, ms: 900, outcome: "miss" },
    { ...base, crate: "d", started: 950, ms: 200, outcome: "not-cacheable", reason: "path crate" },
  ];
  const build = {
    id: "1@2",
    project: "/p",
    lockfile: "",
    warming: false,
    started: 0,
    ended: 1150,
    calls: 4,
  };
  const html = renderReport(build, calls);
  const page = join(dir.path, "page.html");
  await Deno.writeTextFile(page, html);
  await assertRendersCalls(dir.path, page, calls);

  const withoutHits = html.replace(/<g class="call hit".*?<\/g>/gs, "");
  assert.notEqual(withoutHits, html);
  await Deno.writeTextFile(page, withoutHits);
  await assert.rejects(assertRendersCalls(dir.path, page, calls), /deepStrictEqual|Expected/);

  const uncoloured = html.replace(
    /(\.timeline \.hit rect \{[^}]*)fill: var\(--hit\)/,
    "$1fill: #fff",
  );
  assert.notEqual(uncoloured, html);
  await Deno.writeTextFile(page, uncoloured);
  await assert.rejects(assertRendersCalls(dir.path, page, calls), /hit: \d+ pixels of its colour/);
});

Deno.test("journal strings stay text in the browser: a hostile crate name injects nothing", async () => {
  await using dir = await tempDir();
  const hostile = `x"><img src=x onerror=alert(1)><script>document.title='pwned'</script>&amp;`;
  const build = {
    id: hostile,
    project: hostile,
    lockfile: "",
    warming: false,
    started: 0,
    ended: 1000,
    calls: 2,
  };
  const base = { build: hostile, project: hostile, lockfile: "", warming: false, version: hostile };
  const page = join(dir.path, "hostile.html");
  await Deno.writeTextFile(
    page,
    renderReport(build, [
      { ...base, crate: hostile, kind: hostile, started: 0, ms: 1000, outcome: "hit" },
      { ...base, crate: "ok", kind: "lib", started: 0, ms: 10, outcome: "miss", reason: hostile },
    ]),
  );
  const dom = await chromium(dir.path, page, "dom");
  // Chromium serialises text and attribute values escaped, so these would be real elements.
  assert.doesNotMatch(dom, /<img|<script/i);
  assert.doesNotMatch(dom, /<title>pwned/);
  const bars = barsOf(dom);
  assert.deepEqual(bars.map((bar) => [bar.crate, bar.kind, bar.outcome]), [
    [hostile, hostile, "hit"],
    ["ok", "lib", "miss"],
  ]);
});

Deno.test("without a build report says so; bad flags are usage errors", async () => {
  await using dir = await tempDir();
  const cacheDir = join(dir.path, "cache");
  const env = warmupEnv({ cacheDir, cargoHome: await createCargoHome(join(dir.path, "home")) });
  const none = await runWarmup(["report", "--all"], { cwd: dir.path, env });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /error: no build through the cache is recorded yet/);
  const unknown = await runWarmup(["report", "--build", "1@2"], { cwd: dir.path, env });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no build "1@2" in the journal/);
  for (const args of [["--bogus"], ["--last", "--build", "1@2"], ["crate"]]) {
    const bad = await runWarmup(["report", ...args], { cwd: dir.path, env });
    assert.equal(bad.code, 2, `${args}: ${bad.stderr}`);
    assert.match(bad.stderr, /^error: report: /);
  }
  const help = await runWarmup(["report", "--help"], { env });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--open/);
});

Deno.test("--open starts $BROWSER on the page's file URL, and finding none is no error", async () => {
  await using dir = await tempDir();
  const opened = join(dir.path, "opened");
  const browser = join(dir.path, "fake-browser");
  // Written aside and renamed: the file is there only once all of it is (no sleep to guess by).
  await Deno.writeTextFile(
    browser,
    `#!/bin/sh\nprintf '%s\\n' "$@" > '${opened}.part' && mv '${opened}.part' '${opened}'\n`,
  );
  await Deno.chmod(browser, 0o755);
  const page = join(dir.path, "a page #1.html");
  assert.equal(openInBrowser(page, { BROWSER: `${browser} --new-window %s` }), browser);
  await waitUntil(() => exists(opened), { what: "the browser to run" });
  assert.equal(
    await Deno.readTextFile(opened),
    `--new-window\n${pathToFileURL(page).href}\n`,
  );
  // No $BROWSER and no xdg-open or open on the PATH.
  const emptyPath = join(dir.path, "bin");
  await Deno.mkdir(emptyPath);
  assert.equal(openInBrowser(page, { PATH: emptyPath, BROWSER: "no-such-browser" }), undefined);
});

/**
 * Renders `page` in Chromium and checks what it shows against the journal's `calls`: in the DOM,
 * a bar for each call, classed by its outcome, and the totals; in a screenshot, each outcome's
 * colour covering more than its legend swatch, at least the smallest bar (2 x 18 units at the
 * page's scale, less anti-aliasing) per call.
 */
async function assertRendersCalls(
  workDir: string,
  page: string,
  calls: readonly JournalCall[],
): Promise<void> {
  const dom = await chromium(workDir, page, "dom");
  const bars = barsOf(dom);
  assert.deepEqual(described(bars), described(calls));
  for (const bar of bars) assert.equal(bar.class, `call ${bar.outcome}`);
  for (const [name, value] of Object.entries(reportTotals(calls))) {
    assert.match(dom, new RegExp(`data-total="${name}" data-value="${value}">`), name);
  }

  const png = await chromium(workDir, page, "screenshot");
  assert.ok(png.length > 10_000, `a ${png.length}-byte screenshot`);
  const pixels = colourCounts(decodePng(png));
  const scale = (WINDOW.width - 2 * 24) / 1216; // body margin, SVG viewBox width
  for (const [outcome, count] of countBy(calls, (call) => call.outcome)) {
    const seen = pixels.get(outcome as JournalCall["outcome"]) ?? 0;
    const least = SWATCH_PIXELS + count * Math.floor(2 * 18 * scale * scale * 0.8);
    assert.ok(seen >= least, `${outcome}: ${seen} pixels of its colour, expected ${least}+`);
  }
}

/** Calls or bars as sorted "crate kind outcome" lines, to compare as multisets. */
function described(items: ReadonlyArray<{ crate: string; kind: string; outcome: string }>) {
  return items.map((item) => `${item.crate} ${item.kind} ${item.outcome}`).sort();
}

/** The calls of the newest build in the cache's journal. */
function journalCallsOfLastBuild(cacheDir: string): JournalCall[] {
  const index = openIndex(cacheDir);
  try {
    const build = index.journal.builds()[0];
    assert.ok(build, "no build in the journal");
    return index.journal.callsOf(build.id);
  } finally {
    index.close();
  }
}

function countBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(keyOf(item), (counts.get(keyOf(item)) ?? 0) + 1);
  return counts;
}

interface Bar {
  class: string;
  crate: string;
  kind: string;
  outcome: string;
}

/** The timeline's bars in a page or a DOM Chromium dumped, their attributes unescaped. */
function barsOf(html: string): Bar[] {
  return [...html.matchAll(/<g ([^>]*)>/g)].flatMap(([, attributes]) => {
    const values = Object.fromEntries(
      [...attributes!.matchAll(/([a-z-]+)="([^"]*)"/g)].map(([, name, value]) => [
        name,
        unescape(value!),
      ]),
    );
    if (!values.class?.startsWith("call ")) return [];
    return [{
      class: values.class,
      crate: values["data-crate"] ?? "",
      kind: values["data-kind"] ?? "",
      outcome: values["data-outcome"] ?? "",
    }];
  });
}

function unescape(text: string): string {
  const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', nbsp: "\u00a0" };
  return text.replace(
    /&(#\d+|[a-z]+);/g,
    (entity, name: string) =>
      name.startsWith("#") ? String.fromCharCode(Number(name.slice(1))) : named[name] ?? entity,
  );
}

/**
 * Renders `page` in headless Chromium: the DOM after loading, or a PNG screenshot of the
 * window. Chromium and every process it started are gone when this returns: `timeout` runs it in
 * a process group of its own and signals the whole group when it runs over.
 */
async function chromium(workDir: string, page: string, what: "dom"): Promise<string>;
async function chromium(workDir: string, page: string, what: "screenshot"): Promise<Uint8Array>;
async function chromium(
  workDir: string,
  page: string,
  what: "dom" | "screenshot",
): Promise<string | Uint8Array> {
  const profile = await Deno.makeTempDir({ dir: workDir, prefix: "chromium-" });
  const shot = join(profile, "shot.png");
  try {
    const output = await new Deno.Command("timeout", {
      args: [
        "--kill-after=5",
        "90",
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-crash-reporter",
        "--no-first-run",
        `--user-data-dir=${profile}`,
        "--force-color-profile=srgb",
        "--force-device-scale-factor=1",
        "--hide-scrollbars",
        `--window-size=${WINDOW.width},${WINDOW.height}`,
        what === "dom" ? "--dump-dom" : `--screenshot=${shot}`,
        pathToFileURL(page).href,
      ],
      stdin: "null",
      // Chromium's own dbus and GPU complaints are noise unless it fails.
      env: { HOME: profile, XDG_CONFIG_HOME: profile, XDG_CACHE_HOME: profile },
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, `chromium exited with ${output.code}: ${stderr}`);
    if (what === "dom") {
      const dom = new TextDecoder().decode(output.stdout);
      assert.match(dom, /<\/html>/, `no DOM from chromium: ${stderr}`);
      return dom;
    }
    return await Deno.readFile(shot);
  } finally {
    killLeftovers(profile);
    await removeAll(profile);
  }
}

/** Kills (by pid) any process still running with our profile directory on its command line. */
function killLeftovers(profile: string): void {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let cmdline: string;
    try {
      cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
    } catch {
      continue;
    }
    if (!cmdline.includes(`--user-data-dir=${profile}`)) continue;
    try {
      Deno.kill(Number(entry.name), "SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
}

interface Image {
  width: number;
  height: number;
  /** RGBA, row after row. */
  rgba: Uint8Array;
}

/** Decodes a non-interlaced 8-bit RGB or RGBA PNG (what Chromium's screenshots are). */
function decodePng(png: Uint8Array): Image {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let width = 0, height = 0, channels = 0;
  const data: Uint8Array[] = [];
  for (let at = 8; at < png.length;) {
    const length = view.getUint32(at);
    const type = new TextDecoder().decode(png.subarray(at + 4, at + 8));
    const body = png.subarray(at + 8, at + 8 + length);
    if (type === "IHDR") {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      const [depth, colourType, , , interlace] = body.subarray(8, 13);
      assert.ok(depth === 8 && (colourType === 2 || colourType === 6) && interlace === 0);
      channels = colourType === 6 ? 4 : 3;
    } else if (type === "IDAT") data.push(body);
    at += 12 + length;
  }
  const idat = new Uint8Array(data.reduce((sum, chunk) => sum + chunk.length, 0));
  data.reduce((at, chunk) => (idat.set(chunk, at), at + chunk.length), 0);
  const raw = inflateSync(idat);
  const stride = width * channels;
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const left = x >= channels ? pixels[y * stride + x - channels]! : 0;
      const up = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const upLeft = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels]! : 0;
      const predictor = filter === 0
        ? 0
        : filter === 1
        ? left
        : filter === 2
        ? up
        : filter === 3
        ? (left + up) >> 1
        : paeth(left, up, upLeft);
      pixels[y * stride + x] = (row[x]! + predictor) & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(pixels.subarray(i * channels, i * channels + 3), i * 4);
    rgba[i * 4 + 3] = channels === 4 ? pixels[i * channels + 3]! : 255;
  }
  return { width, height, rgba };
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** How many pixels have exactly each outcome's colour. */
function colourCounts(image: Image): Map<JournalCall["outcome"], number> {
  const counts = new Map<JournalCall["outcome"], number>();
  const entries = Object.entries(COLOURS) as Array<[JournalCall["outcome"], number[]]>;
  for (let i = 0; i < image.rgba.length; i += 4) {
    const [r, g, b] = image.rgba.subarray(i, i + 3);
    for (const [outcome, [cr, cg, cb]] of entries) {
      if (r === cr && g === cg && b === cb) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
    }
  }
  return counts;
}
