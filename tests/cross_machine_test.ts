// Cross-machine hits on a real crates.io layout: two "machines" (two CARGO_HOMEs in different
// directories, each unpacking crates from a sparse registry on loopback) share one cache
// directory, as a team shares a remote level. Machine B must be served everything machine A
// compiled, although every crate sits at another absolute path.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  countOutcomes,
  type DispatchLogEntry,
  readDispatchLog,
  runBinary,
  runCargo,
  tempDir,
  warmupEnv,
} from "./_harness.ts";
import { createRegistryCargoHome, startSparseRegistry } from "./_sparse_registry.ts";

interface MachineBuild {
  entries: DispatchLogEntry[];
  output: string;
}

/**
 * Builds a fresh copy of `fixture` on machine `machine` (its own CARGO_HOME under `work`) through
 * the cache at `cacheDir`, and runs the program it built.
 */
async function buildOn(
  machine: string,
  fixture: string,
  work: string,
  cacheDir: string,
  indexUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<MachineBuild> {
  const id = crypto.randomUUID().slice(0, 8);
  const cargoHome = join(work, `machine-${machine}`, "cargo-home");
  await createRegistryCargoHome(cargoHome, indexUrl);
  const project = await copyFixture(fixture, join(work, `machine-${machine}`, `project-${id}`));
  // Directory-source checksums in a checked-in lockfile would not match the registry's.
  await Deno.remove(join(project, "Cargo.lock")).catch(() => {});
  const log = join(work, `dispatch-${id}.jsonl`);
  const env = { ...warmupEnv({ cacheDir, cargoHome, log }), ...extraEnv };
  const build = await runCargo(["build"], { cwd: project, env });
  assert.equal(build.code, 0, build.stderr);
  return {
    entries: await readDispatchLog(log),
    output: await runBinary(join(project, "target/debug", fixture)),
  };
}

/**
 * Misses of the build's own units and build-script runs; a build script's failing compiler probe
 * is not one.
 */
const unitMisses = (build: MachineBuild) =>
  build.entries.filter((entry) => entry.outcome === "miss" && entry.reason !== "compile failed");
const describe = (entries: DispatchLogEntry[]) =>
  entries.map((entry) => `${entry.crate} ${entry.kind}: ${entry.reason ?? "no entry"}`).join("; ");

Deno.test("machine B under another CARGO_HOME is served everything machine A compiled", async () => {
  await using dir = await tempDir();
  await using registry = await startSparseRegistry();
  const cacheDir = join(dir.path, "shared-cache");
  for (const fixture of ["probes", "tiny"]) {
    const a = await buildOn("a", fixture, dir.path, cacheDir, registry.indexUrl);
    assert.ok(unitMisses(a).length > 0, "machine A compiles");
    const b = await buildOn("b", fixture, dir.path, cacheDir, registry.indexUrl);
    assert.deepEqual(unitMisses(b), [], `${fixture} on machine B: ${describe(unitMisses(b))}`);
    assert.equal(countOutcomes(b.entries).hit, unitMisses(a).length);
    assert.equal(b.output, a.output);
  }
  // Each machine unpacked its own copy of every crate: the paths really differed.
  assert.ok(registry.downloads >= 2 * 3, `downloads: ${registry.downloads}`);
});

// outdir-probe's library includes a file its build script generates from an environment
// variable: a different value is a miss of the run and of the library, and both variants of each
// stay served under their keys.
Deno.test("a different generated file misses, and each variant is served again afterwards", async () => {
  await using dir = await tempDir();
  await using registry = await startSparseRegistry();
  const cacheDir = join(dir.path, "shared-cache");
  const build = (machine: string, greeting?: string) =>
    buildOn(
      machine,
      "probes",
      dir.path,
      cacheDir,
      registry.indexUrl,
      greeting === undefined ? {} : { OUTDIR_PROBE_GREETING: greeting },
    );
  const probeLib = (result: MachineBuild) =>
    result.entries.filter((entry) => entry.crate === "outdir-probe" && entry.kind === "lib");

  const hello = await build("a");
  assert.equal(hello.output, "hello, probed: true\n");

  const bonjour = await build("b", "bonjour");
  assert.equal(bonjour.output, "bonjour, probed: true\n");
  // The build script runs again (its rerun-if-env-changed variable differs), then the library.
  assert.deepEqual(unitMisses(bonjour).map((entry) => `${entry.crate} ${entry.kind}`), [
    "outdir-probe build-run",
    "outdir-probe lib",
  ]);
  const probeRun = bonjour.entries.find((entry) =>
    entry.kind === "build-run" && entry.crate === "outdir-probe"
  );
  assert.match(probeRun?.reason ?? "", /environment changed: OUTDIR_PROBE_GREETING/);
  assert.match(probeLib(bonjour)[0]?.reason ?? "", /source changed: .*greeting\.rs/);

  for (const [machine, greeting] of [["c", undefined], ["d", "bonjour"]] as const) {
    const again = await build(machine, greeting);
    assert.equal(again.output, `${greeting ?? "hello"}, probed: true\n`);
    assert.deepEqual(unitMisses(again), [], describe(unitMisses(again)));
    assert.equal(probeLib(again)[0]?.outcome, "hit");
  }
});
