// Unit tests of the hit path of a crate compile (src/dispatch/serve_hit.ts): a matching entry's
// outputs written under this build's names with the .rmeta announced first, diagnostics replayed
// only in the form asked for, a failed probe replayed with its exit code, an entry missing an
// output not served, and nothing written for a client that gave up.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Bundle } from "../src/bundle/bundle.ts";
import { storeEntry } from "../src/cache/store_entry.ts";
import { sha256Hex } from "../src/digest.ts";
import { expectedOutputs } from "../src/dispatch/outputs.ts";
import { pathRootsOf } from "../src/cache/path_roots.ts";
import { parseRustcArgs } from "../src/dispatch/rustc_args.ts";
import { serveHit } from "../src/dispatch/serve_hit.ts";
import type { Unit } from "../src/dispatch/unit.ts";
import { openTestCache, rowOfSample, type TestCache } from "./_call.ts";
import { tempDir } from "./_fixtures.ts";
import { SAMPLE_KEY as KEY, sampleBundle } from "./_sample_bundle.ts";

const TARGET = "x86_64-unknown-linux-gnu";
const RMETA = new Uint8Array([7, 7, 7]);
const RLIB = new Uint8Array([1, 2, 3, 4]);
/** How rustc tells cargo the .rmeta is written (`--json=artifacts`), as stored: templated. */
const NOTICE =
  '{"$message_type":"artifact","artifact":"@@WARMUP_OUT@@/lib@@WARMUP_STEM@@.rmeta","emit":"metadata"}';

/** itoa's library compile into `outDir`, as cargo asks for it, made a unit of `KEY`. */
function unitIn(outDir: string, rendering = "--json=artifacts"): Unit {
  const argv = [
    ...["--crate-name", "itoa", "--edition=2018", "/reg/itoa-1.0.1/src/lib.rs"],
    ...["--error-format=json", rendering, "--crate-type", "lib"],
    ...["--emit=dep-info,metadata,link", "-C", "extra-filename=-0fcf", "--out-dir", outDir],
  ];
  const parsed = parseRustcArgs(argv);
  if (!parsed.cacheable) throw new Error(`not cacheable: ${parsed.reason}`);
  const outputs = expectedOutputs(parsed.args, TARGET);
  if ("unsupported" in outputs) throw new Error(outputs.unsupported);
  return {
    rustc: "rustc",
    argv,
    args: parsed.args,
    env: {},
    cwd: "/reg/itoa-1.0.1",
    roots: pathRootsOf({ outDir, outputStem: "itoa-0fcf", extraFilename: "-0fcf" }),
    outputs,
    key: KEY,
    crate: "itoa",
    version: "1.0.1",
    source: "registry+https://github.com/rust-lang/crates.io-index",
    fromWorkspace: false,
    target: TARGET,
    rustcRelease: "1.95.0",
    recipe: () => {
      throw new Error("a hit records no recipe");
    },
  };
}

/** itoa's entry: both outputs, the .rmeta notice then a warning on stderr. */
function entry(fields: Partial<Bundle> = {}, meta: Partial<Bundle["meta"]> = {}): Bundle {
  return sampleBundle({
    meta: {
      outputs: [{ role: "rmeta", digest: sha256Hex(RMETA) }, {
        role: "rlib",
        digest: sha256Hex(RLIB),
      }],
      rendering: "--error-format=json",
      ...meta,
    },
    files: new Map([["rmeta", RMETA], ["rlib", RLIB]]),
    depInfo: "@@WARMUP_OUT@@/@@WARMUP_STEM@@.d: /reg/itoa-1.0.1/src/lib.rs\n",
    stderr: `${NOTICE}\n{"$message_type":"diagnostic","message":"unused"}\n`,
    ...fields,
  });
}

async function stored(test: TestCache, bundle: Bundle): Promise<void> {
  await storeEntry(
    {
      key: KEY,
      label: "itoa 1.0.1",
      collect: () => Promise.resolve(bundle),
      rowOf: rowOfSample,
      replacesStale: false,
    },
    test.cache,
    test.call.request,
  );
}

Deno.test("a hit writes the outputs under this build's names, the .rmeta announced first", async () => {
  await using dir = await tempDir("cargo-warmup-serve-hit-");
  await using test = await openTestCache(dir.path);
  await stored(test, entry());
  const outDir = join(dir.path, "target", "debug", "deps");
  await Deno.mkdir(outDir, { recursive: true });
  // What the build held when it heard of the .rmeta: that, and not the rlib yet.
  const heard: Array<[boolean, boolean]> = [];
  const stderr = test.call.request.stderr;
  test.call.request.stderr = {
    write(bytes) {
      const has = (name: string) => existsSync(join(outDir, name));
      heard.push([has("libitoa-0fcf.rmeta"), has("libitoa-0fcf.rlib")]);
      return stderr.write(bytes);
    },
  };
  const outcome = await serveHit(unitIn(outDir), test.cache, test.call.request);
  assert.ok(outcome.served, JSON.stringify(outcome));
  assert.deepEqual(heard[0], [true, false], "the .rmeta announced before the rlib is written");
  assert.equal(outcome.slot, KEY);
  assert.equal(outcome.bytes, RMETA.length + RLIB.length);
  assert.deepEqual(await Deno.readFile(join(outDir, "libitoa-0fcf.rmeta")), RMETA);
  assert.deepEqual(await Deno.readFile(join(outDir, "libitoa-0fcf.rlib")), RLIB);
  assert.equal(
    await Deno.readTextFile(join(outDir, "itoa-0fcf.d")),
    `${outDir}/itoa-0fcf.d: /reg/itoa-1.0.1/src/lib.rs\n`,
  );
  // rustc's stderr, this build's paths in it, the notice first as rustc would have sent it.
  const [notice, warning] = test.call.stderr().split("\n");
  assert.equal(
    notice,
    NOTICE.replace("@@WARMUP_OUT@@/lib@@WARMUP_STEM@@", `${outDir}/libitoa-0fcf`),
  );
  assert.equal(warning, '{"$message_type":"diagnostic","message":"unused"}');
  assert.equal(
    [...Deno.readDirSync(outDir)].filter((e) => e.name.includes("warmup-tmp")).length,
    0,
  );
});

Deno.test("diagnostics stored in another form are not replayed: the call compiles", async () => {
  await using dir = await tempDir("cargo-warmup-serve-hit-");
  await using test = await openTestCache(dir.path);
  await stored(test, entry());
  const outDir = join(dir.path, "deps");
  await Deno.mkdir(outDir);
  const unit = unitIn(outDir, "--json=diagnostic-short,artifacts");
  const outcome = await serveHit(unit, test.cache, test.call.request);
  assert.deepEqual(outcome, {
    served: false,
    reason: "diagnostics rendered otherwise (--error-format=json)",
  });
  assert.deepEqual([...Deno.readDirSync(outDir)], [], "nothing written");
  // Without diagnostics, the form does not matter.
  await stored(test, entry({ stderr: `${NOTICE}\n` }));
  assert.ok((await serveHit(unit, test.cache, test.call.request)).served);
});

Deno.test("a failed probe is replayed: its diagnostics and exit code, no file", async () => {
  await using dir = await tempDir("cargo-warmup-serve-hit-");
  await using test = await openTestCache(dir.path);
  const probe = entry({ files: new Map(), stderr: "error[E0554]: not on stable\n" }, {
    outputs: [],
    exitCode: 1,
  });
  await stored(test, probe);
  const outDir = join(dir.path, "deps");
  await Deno.mkdir(outDir);
  const outcome = await serveHit(unitIn(outDir), test.cache, test.call.request);
  assert.ok(outcome.served && outcome.exitCode === 1, JSON.stringify(outcome));
  assert.equal(test.call.stderr(), "error[E0554]: not on stable\n");
  assert.deepEqual([...Deno.readDirSync(outDir)], []);
});

Deno.test("an entry without an output this build expects is not served, and says so", async () => {
  await using dir = await tempDir("cargo-warmup-serve-hit-");
  await using test = await openTestCache(dir.path);
  await stored(
    test,
    entry({ files: new Map([["rmeta", RMETA]]) }, {
      outputs: [{ role: "rmeta", digest: sha256Hex(RMETA) }],
    }),
  );
  const outDir = join(dir.path, "deps");
  await Deno.mkdir(outDir);
  const outcome = await serveHit(unitIn(outDir), test.cache, test.call.request);
  assert.deepEqual(outcome, { served: false, reason: "restore failed" });
  assert.match(
    test.call.stderr(),
    /cannot restore itoa from the cache, compiling it: no rlib in bundle/,
  );
});

Deno.test("for a client that gave up, a hit writes nothing into the build", async () => {
  await using dir = await tempDir("cargo-warmup-serve-hit-");
  await using test = await openTestCache(dir.path);
  await stored(test, entry());
  const outDir = join(dir.path, "deps");
  await Deno.mkdir(outDir);
  test.call.request.abandoned = () => true;
  const outcome = await serveHit(unitIn(outDir), test.cache, test.call.request);
  assert.deepEqual(outcome, { served: false, reason: "client gone" });
  assert.deepEqual([...Deno.readDirSync(outDir)], []);
  assert.equal(test.call.stderr(), "");
});
