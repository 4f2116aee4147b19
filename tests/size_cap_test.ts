// The cache keeps its size by itself: the daemon evicts least recently used entries when stores
// push the local level over max-size, never an entry a call is reading, and status reports the
// bytes that are really on disk.

import assert from "node:assert/strict";
import { join } from "node:path";
import { createLocalStore } from "../backends/local.ts";
import { evictToCap } from "../src/size_cap.ts";
import {
  copyFixture,
  createCargoHome,
  runBinary,
  runCargo,
  runWarmup,
  tempDir,
  warmupEnv,
} from "./_harness.ts";

/** Bytes of the files under `dir` (what `du -b` counts for regular files). */
async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => [] as Deno.DirEntry[]);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) total += await bytesUnder(path);
    else if (entry.isFile) total += (await Deno.stat(path)).size;
  }
  return total;
}

/** What the entries of a cache take: bundles and their unpacked mirrors. */
async function entryBytes(cacheDir: string): Promise<number> {
  return await bytesUnder(join(cacheDir, "bundles")) + await bytesUnder(join(cacheDir, "unpacked"));
}

Deno.test("eviction goes by last use and spares the entries in use", async () => {
  await using dir = await tempDir();
  const store = createLocalStore({ dir: dir.path });
  const [oldest, middle, newest] = ["a", "b", "c"].map((c) => c.repeat(64)) as [
    string,
    string,
    string,
  ];
  for (const key of [oldest, middle, newest]) {
    await store.put(key, new Uint8Array(1000));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const result = await evictToCap(store, 2000, { protect: new Set([oldest]) });
  assert.deepEqual(result, { before: 3000, after: 2000, evicted: 1 });
  assert.equal(await store.has(oldest), true, "in use: kept although least recently used");
  assert.equal(await store.has(middle), false);
  assert.equal(await store.has(newest), true);
});

Deno.test("a cap smaller than one project holds by itself, and the build still succeeds", async () => {
  await using dir = await tempDir();
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const cacheDir = join(dir.path, "cache");
  const cap = 12 * 1024 * 1024;
  const env = { ...warmupEnv({ cacheDir, cargoHome }), CARGO_WARMUP_MAX_SIZE: "12M" };

  const project = await copyFixture("seed003", join(dir.path, "project"));
  const build = await runCargo(["build", "--locked"], { cwd: project, env });
  assert.equal(build.code, 0, build.stderr);
  assert.match(await runBinary(join(project, "target/debug/template")), /status 200 OK/);

  // Without the cap the same build leaves well over 100 MiB; the largest single entry is the
  // slack allowed for the one being written when the last pass ran.
  const onDisk = await entryBytes(cacheDir);
  const slack = 6 * 1024 * 1024;
  assert.ok(onDisk <= cap + slack, `${onDisk} bytes on disk against a cap of ${cap}`);
  assert.ok(onDisk > 0, "the cache keeps what fits");

  // status says what is on disk, within a few percent.
  const status = await runWarmup(["status", "--json"], { env });
  assert.equal(status.code, 0, status.stderr);
  const reported = JSON.parse(status.stdout).levels[0].bytes as number;
  assert.ok(
    Math.abs(reported - onDisk) <= onDisk * 0.03,
    `status says ${reported} bytes, the disk holds ${onDisk}`,
  );

  // A second build in a new directory still succeeds, served what is left, compiling the rest.
  const again = await copyFixture("seed003", join(dir.path, "again"));
  const second = await runCargo(["build", "--locked"], { cwd: again, env });
  assert.equal(second.code, 0, second.stderr);
  assert.ok(await entryBytes(cacheDir) <= cap + slack);
});
