// Capture's state belongs to its owner: two Captures in one process (two daemons' placing, or a
// test beside a daemon) note builds apart, and closing one leaves the other's notes alone.

import assert from "node:assert/strict";
import { Builds } from "../src/cache/build_of.ts";
import { Captures, type CompileToCapture } from "../src/place/capture.ts";
import { CargoVersions } from "../src/place/cargo_version.ts";
import { tempDir } from "./_fixtures.ts";

/** A registry library compile as capture sees it, in `targetDir`'s debug profile. */
function compileIn(targetDir: string): CompileToCapture {
  return {
    key: "k".repeat(64),
    crate: "itoa",
    version: "1.0.11",
    kind: "lib",
    outDir: `${targetDir}/debug/deps`,
    crateName: "itoa",
    extraFilename: "-0123456789abcdef",
    stem: "itoa-0123456789abcdef",
    externs: [],
    outputs: [{ role: "rlib", path: `${targetDir}/debug/deps/libitoa-0123456789abcdef.rlib` }],
    env: { CARGO_PKG_NAME: "itoa", CARGO_MANIFEST_DIR: "/registry/itoa-1.0.11" },
    cargoHome: "/home/a/.cargo",
    rustcRelease: "1.95.0",
  };
}

Deno.test("two Captures in one process share no noted build", async () => {
  await using dir = await tempDir("cargo-warmup-capture-");
  const mine = new Captures(new CargoVersions());
  const other = new Captures(new CargoVersions());
  try {
    // This process stands for the build's cargo: still running, so nothing is captured yet.
    const call = { buildId: String(Deno.pid), builds: new Builds(), cargoCwd: dir.path, env: {} };
    mine.noteCompile(compileIn(`${dir.path}/target`), { dir: dir.path, closed: false }, call);
    assert.equal(mine.pending, 1);
    assert.equal(other.pending, 0);
    await other.captureFinished();
    other.close();
    assert.equal(mine.pending, 1);
  } finally {
    mine.close();
    other.close();
  }
});
