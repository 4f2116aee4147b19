// How diagnostics are rendered is out of the key (src/dispatch/diagnostic_rendering.ts): builds
// that differ only in it share entries, and stored diagnostics are never replayed in another form.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  hasDiagnostics,
  renderingOf,
  whyRenderedDifferently,
} from "../src/dispatch/diagnostic_rendering.ts";
import { parseRustcArgs, type RustcArgs } from "../src/dispatch/rustc_args.ts";
import {
  copyFixture,
  createCargoHome,
  type DispatchLogEntry,
  readDispatchLog,
  registryMisses,
  runCargo,
  tempDir,
  warmupEnv,
} from "./_harness.ts";

const CARGO_JSON = "--json=diagnostic-rendered-ansi,artifacts,future-incompat";
const ARTIFACT = '{"$message_type":"artifact","artifact":"/t/libx.rmeta","emit":"metadata"}';
const WARNING = '{"$message_type":"diagnostic","message":"unused variable: `x`",' +
  '"rendered":"warning: unused variable: `x`\\n --> src/lib.rs:1:5\\n"}';

function argsOf(rendering: string[]): RustcArgs {
  const parsed = parseRustcArgs([
    "--crate-name",
    "x",
    "src/lib.rs",
    "--out-dir",
    "/o",
    ...rendering,
  ]);
  if (!parsed.cacheable) throw new Error(parsed.reason);
  return parsed.args;
}

Deno.test("an entry is replayed in another rendering only when it stored no diagnostics", () => {
  const long = argsOf(["--error-format=json", CARGO_JSON]);
  const short = argsOf(["--error-format=json", `${CARGO_JSON},diagnostic-short`]);
  assert.equal(renderingOf(long), "--error-format=json --json=diagnostic-rendered-ansi");
  // null: an entry written before the rendering was recorded.
  const stored = (stderr: string, rendering: string | null = renderingOf(long)) => ({
    meta: rendering === null ? {} : { rendering },
    stderr,
  });
  // The same rendering: whatever it stored.
  assert.equal(whyRenderedDifferently(stored(`${ARTIFACT}\n${WARNING}\n`), long), undefined);
  // Another rendering, nothing rendered stored: artifact notifications only, or nothing.
  assert.equal(whyRenderedDifferently(stored(`${ARTIFACT}\n`), short), undefined);
  assert.equal(whyRenderedDifferently(stored(""), short), undefined);
  // Another rendering with a diagnostic, or an entry that does not say how it rendered.
  assert.match(
    whyRenderedDifferently(stored(`${ARTIFACT}\n${WARNING}\n`), short) ?? "",
    /^diagnostics rendered otherwise \(--error-format=json --json=diagnostic-rendered-ansi\)$/,
  );
  assert.match(
    whyRenderedDifferently(stored(`${WARNING}\n`, null), long) ?? "",
    /not recorded/,
  );
  assert.equal(whyRenderedDifferently(stored(`${ARTIFACT}\n`, null), long), undefined);
  // A different terminal width renders differently too.
  const narrow = argsOf(["--error-format=json", CARGO_JSON, "--diagnostic-width=60"]);
  assert.ok(whyRenderedDifferently(stored(`${WARNING}\n`), narrow));
});

Deno.test("future-incompatibility reports and plain text count as diagnostics", () => {
  assert.equal(hasDiagnostics(`${ARTIFACT}\n\n${ARTIFACT}\n`), false);
  const report = '{"$message_type":"future_incompat","future_incompat_report":[{"diagnostic":' +
    '{"rendered":"warning: this was previously accepted"}}]}';
  assert.equal(hasDiagnostics(`${ARTIFACT}\n${report}\n`), true);
  assert.equal(hasDiagnostics("warning: unused variable: `x`\n"), true);
});

/** Builds a fresh copy of `fixture` under `dir` through `cacheDir` and returns its log. */
async function build(
  fixture: string,
  dir: string,
  cacheDir: string,
  cargoArgs: string[],
  extraEnv: Record<string, string> = {},
  prepare: (project: string) => Promise<void> = async () => {},
): Promise<{ entries: DispatchLogEntry[]; stderr: string }> {
  const id = crypto.randomUUID().slice(0, 8);
  const project = await copyFixture(fixture, join(dir, `project-${id}`));
  await prepare(project);
  const cargoHome = await createCargoHome(join(dir, `cargo-home-${id}`));
  const log = join(dir, `dispatch-${id}.jsonl`);
  const env = { ...warmupEnv({ cacheDir, cargoHome, log }), ...extraEnv };
  const run = await runCargo(cargoArgs, { cwd: project, env });
  assert.equal(run.code, 0, run.stderr);
  return { entries: await readDispatchLog(log), stderr: run.stderr };
}

Deno.test("cargo check, then cargo check --message-format=short in another copy: all served", async () => {
  await using dir = await tempDir();
  const cacheDir = join(dir.path, "cache");
  const first = await build("seed001", dir.path, cacheDir, ["check", "--locked"]);
  assert.ok(registryMisses(first.entries).length > 10);
  const short = await build("seed001", dir.path, cacheDir, [
    "check",
    "--locked",
    "--message-format=short",
  ]);
  const describe = (entries: DispatchLogEntry[]) =>
    entries.map((entry) => `${entry.crate} ${entry.kind}: ${entry.reason ?? ""}`).join("; ");
  assert.deepEqual(registryMisses(short.entries), [], describe(registryMisses(short.entries)));
  const hits = short.entries.filter((entry) =>
    entry.outcome === "hit" && entry.kind !== "build-run"
  );
  assert.equal(hits.length, registryMisses(first.entries).length);
});

// A crate of the workspace (cached with `workspace = true`) with a warning: the short build must
// print it short, never the stored long form, and the long build long.
Deno.test("stored diagnostics are never replayed in another rendering", async () => {
  await using dir = await tempDir();
  const cacheDir = join(dir.path, "cache");
  const withWarning = async (project: string) => {
    await Deno.writeTextFile(join(project, "src/lib.rs"), "pub fn used() {}\nfn unused() {}\n");
  };
  const env = { CARGO_WARMUP_WORKSPACE: "1", CARGO_INCREMENTAL: "0" };
  const check = (extra: string[]) =>
    build("tiny", dir.path, cacheDir, ["check", "--locked", "--lib", ...extra], env, withWarning);
  const longForm = /warning: function `unused` is never used\n\s+--> src\/lib\.rs:2:4/;
  const shortForm = /src\/lib\.rs:2:4: warning: function `unused` is never used/;
  const ownCrate = (entries: DispatchLogEntry[]) =>
    entries.find((entry) => entry.crate === "tiny" && entry.kind === "check");

  const long = await check([]);
  assert.match(long.stderr, longForm);
  assert.equal(ownCrate(long.entries)?.outcome, "miss");

  const short = await check(["--message-format=short"]);
  assert.match(short.stderr, shortForm);
  assert.doesNotMatch(short.stderr, longForm);
  assert.equal(ownCrate(short.entries)?.outcome, "miss");
  assert.match(ownCrate(short.entries)?.reason ?? "", /diagnostics rendered otherwise/);
  // The registry crates stored no diagnostics: served to either rendering.
  assert.deepEqual(registryMisses(short.entries).filter((entry) => entry.crate !== "tiny"), []);

  // The same rendering again: served, in its own form.
  const shortAgain = await check(["--message-format=short"]);
  assert.match(shortAgain.stderr, shortForm);
  assert.equal(
    ownCrate(shortAgain.entries)?.outcome,
    "hit",
    JSON.stringify(ownCrate(shortAgain.entries)),
  );
});
