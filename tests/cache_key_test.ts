// The cache key: the same crate built in two directories (another project, another machine's
// CARGO_HOME) gets the very same recipe, while everything that shapes the output changes it.

import assert from "node:assert/strict";
import { join } from "node:path";
import { cacheKeyOf, type KeyInputs } from "../src/dispatch/cache_key.ts";
import type { DigestMemo } from "../src/index/file_digest.ts";
import { pathRootsOf } from "../src/dispatch/path_roots.ts";
import { parseRustcArgs } from "../src/dispatch/rustc_args.ts";
import { tempDir } from "./_fixtures.ts";

const RUSTC = {
  identity: "rustc-1.95-identity",
  host: "x86_64-unknown-linux-gnu",
  release: "1.95.0",
};
const noMemo: DigestMemo = { lookup: () => undefined, remember: () => {} };

/**
 * One serde_json-like invocation as cargo would write it in a project at `project` with crates
 * unpacked under `cargoHome`; `itoa` is the dependency artefact file it links against.
 */
function inputs(
  project: string,
  cargoHome: string,
  itoa: string,
  overrides: { args?: string[]; env?: Record<string, string>; rustc?: typeof RUSTC } = {},
): KeyInputs {
  const pkg = join(cargoHome, "registry/src/index.crates.io-1949cf8c6b5b557f/serde_json-1.0.87");
  const outDir = join(project, "target/debug/deps");
  const argv = [
    "--crate-name",
    "serde_json",
    "--edition=2018",
    join(pkg, "src/lib.rs"),
    "--error-format=json",
    "--crate-type",
    "lib",
    "--emit=dep-info,metadata,link",
    "-C",
    "debuginfo=2",
    "--cfg",
    'feature="std"',
    "--cfg",
    'feature="default"',
    "-C",
    `metadata=${project.length.toString(16)}`,
    "-C",
    `extra-filename=-${project.length}`,
    "--out-dir",
    outDir,
    "-L",
    `dependency=${outDir}`,
    "--extern",
    `itoa=${itoa}`,
    "--cap-lints",
    "allow",
    ...(overrides.args ?? []),
  ];
  const parsed = parseRustcArgs(argv);
  if (!parsed.cacheable) throw new Error(`not cacheable: ${parsed.reason}`);
  const env = {
    CARGO_PKG_NAME: "serde_json",
    CARGO_PKG_VERSION: "1.0.87",
    CARGO_MANIFEST_DIR: pkg,
    CARGO_CRATE_NAME: "serde_json",
    HOME: project,
    ...overrides.env,
  };
  const roots = pathRootsOf({
    outDir,
    outputStem: `serde_json-${project.length}`,
    extraFilename: `-${project.length}`,
    manifestDir: pkg,
    cargoHome,
  });
  return {
    args: parsed.args,
    env,
    roots,
    rustc: overrides.rustc ?? RUSTC,
    source: "registry:index.crates.io-1949cf8c6b5b557f",
    memo: noMemo,
  };
}

async function itoaArtefact(dir: string, content: string): Promise<string> {
  const path = join(dir, "libitoa-0fcf.rmeta");
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, content);
  return path;
}

Deno.test("the same crate in two projects and two CARGO_HOMEs has one recipe and one key", async () => {
  await using dir = await tempDir();
  const a = inputs(
    join(dir.path, "alice/app"),
    join(dir.path, "alice/.cargo"),
    await itoaArtefact(join(dir.path, "alice/app/target/debug/deps"), "itoa 1.0.1"),
  );
  const b = inputs(
    join(dir.path, "builds/ci-runner-7/checkout"),
    join(dir.path, "ci/cargo-home"),
    await itoaArtefact(
      join(dir.path, "builds/ci-runner-7/checkout/target/debug/deps"),
      "itoa 1.0.1",
    ),
  );
  const keyA = cacheKeyOf(a);
  const keyB = cacheKeyOf(b);
  assert.deepEqual(keyA.recipe, keyB.recipe);
  assert.equal(keyA.key, keyB.key);
  assert.match(keyA.key, /^[0-9a-f]{64}$/);
  // No absolute path of either machine is in the recipe.
  assert.doesNotMatch(JSON.stringify(keyA.recipe), new RegExp(dir.path));
});

Deno.test("what shapes the output changes the key", async () => {
  await using dir = await tempDir();
  const project = join(dir.path, "p");
  const home = join(dir.path, "h");
  const itoa = await itoaArtefact(join(project, "target/debug/deps"), "itoa 1.0.1");
  const base = cacheKeyOf(inputs(project, home, itoa)).key;
  const variants: Record<string, KeyInputs> = {
    "another feature": inputs(project, home, itoa, {
      args: ["--cfg", 'feature="float_roundtrip"'],
    }),
    "another opt-level": inputs(project, home, itoa, { args: ["-C", "opt-level=3"] }),
    "another version": inputs(project, home, itoa, { env: { CARGO_PKG_VERSION: "1.0.88" } }),
    "another rustc": inputs(project, home, itoa, { rustc: { ...RUSTC, identity: "rustc-1.96" } }),
    "another target": inputs(project, home, itoa, {
      args: ["--target", "aarch64-unknown-linux-gnu"],
    }),
  };
  for (const [what, changed] of Object.entries(variants)) {
    assert.notEqual(cacheKeyOf(changed).key, base, what);
  }
  // A dependency artefact with other content (another crate hash) is another key.
  await Deno.writeTextFile(itoa, "itoa 1.0.1 built with other flags");
  assert.notEqual(cacheKeyOf(inputs(project, home, itoa)).key, base, "another dependency artefact");
});

Deno.test("the order of --cfg flags does not change the key", async () => {
  await using dir = await tempDir();
  const project = join(dir.path, "p");
  const itoa = await itoaArtefact(join(project, "target/debug/deps"), "itoa");
  const one = inputs(project, join(dir.path, "h"), itoa, {
    args: ["--cfg", 'feature="a"', "--cfg", 'feature="b"'],
  });
  const other = inputs(project, join(dir.path, "h"), itoa, {
    args: ["--cfg", 'feature="b"', "--cfg", 'feature="a"'],
  });
  assert.equal(cacheKeyOf(one).key, cacheKeyOf(other).key);
});
