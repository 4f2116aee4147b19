// Checks tests/_harness.ts itself: the fixtures build offline with plain cargo and the private
// CARGO_HOME, and their binaries print what the integration tests expect; the shared warm cache
// is built once for all test processes, and the copies tests work on are whole and independent.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  copyFixture,
  copySharedWarmCache,
  countOutcomes,
  createCargoHome,
  exists,
  FRONT_DOOR,
  readDispatchLog,
  runBinary,
  runCargo,
  sharedWarmCache,
  tempDir,
  warmupEnv,
} from "./_harness.ts";

const SEED001_SERVER = [
  "server accepted 3 jobs",
  '[{"id":1,"name":"JOB-1","inputs":[1,2]},{"id":2,"name":"JOB-2","inputs":[1,2,3,4]},' +
  '{"id":3,"name":"JOB-3","inputs":[1,2,3,4,5,6]}]',
  "",
].join("\n");
const SEED001_WORKER = [
  "worker finished 3 jobs",
  '[{"id":1,"sum":3},{"id":2,"sum":10},{"id":3,"sum":21}]',
  "",
].join("\n");
const SEED003_TEMPLATE = "status 200 OK\nbody ETALPMET OLLEH\n";

Deno.test("copyFixture leaves out target/ and applies an overlay on its base", async () => {
  await using dir = await tempDir();
  const plain = await copyFixture("seed001", join(dir.path, "plain"));
  const extra = await copyFixture("seed001_extra_feature", join(dir.path, "extra"));
  assert.ok(await exists(join(plain, "Cargo.lock")));
  assert.ok(await exists(join(extra, "server", "src", "main.rs")));
  assert.ok(!(await exists(join(extra, "OVERLAY_OF"))));
  assert.ok(!(await exists(join(plain, "target"))));
  const manifest = await Deno.readTextFile(join(extra, "Cargo.toml"));
  assert.match(manifest, /features = \["derive", "rc"\]/);
  assert.equal(
    await Deno.readTextFile(join(extra, "Cargo.lock")),
    await Deno.readTextFile(join(plain, "Cargo.lock")),
  );
});

Deno.test("fixtures build offline with plain cargo and print the expected output", async (t) => {
  await using dir = await tempDir();
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  // One target dir for all steps: the extra-feature build then recompiles only what changed.
  const targetDir = join(dir.path, "target");
  const env = { CARGO_HOME: cargoHome, CARGO_TARGET_DIR: targetDir, CARGO_TERM_COLOR: "never" };

  const build = async (fixture: string) => {
    const project = await copyFixture(fixture, join(dir.path, fixture));
    const result = await runCargo(["build", "--locked"], { cwd: project, env });
    assert.equal(result.code, 0, result.stderr);
    return result;
  };

  await t.step("seed001", async () => {
    await build("seed001");
    assert.equal(await runBinary(join(targetDir, "debug", "server")), SEED001_SERVER);
    assert.equal(await runBinary(join(targetDir, "debug", "worker")), SEED001_WORKER);
  });

  await t.step("seed001_extra_feature recompiles serde and its dependents only", async () => {
    const result = await build("seed001_extra_feature");
    const compiled = [...result.stderr.matchAll(/Compiling (\S+) v/g)].map((m) => m[1]).sort();
    assert.deepEqual(compiled, ["serde", "serde_json", "server", "shared", "worker"]);
    assert.equal(await runBinary(join(targetDir, "debug", "server")), SEED001_SERVER);
  });

  await t.step("seed003", async () => {
    await build("seed003");
    assert.equal(await runBinary(join(targetDir, "debug", "template")), SEED003_TEMPLATE);
  });
});

Deno.test("warmupEnv wraps rustc and drops inherited build settings", () => {
  const inherited = ["CARGO_TARGET_DIR", "RUSTC_WRAPPER", "RUSTFLAGS", "CARGO_WARMUP_DIR"];
  const saved = inherited.map((name) => [name, Deno.env.get(name)] as const);
  try {
    for (const name of inherited) Deno.env.set(name, "/inherited");
    const env = warmupEnv({ cacheDir: "/c", cargoHome: "/h", log: "/l" });
    assert.equal(env.RUSTC_WRAPPER, FRONT_DOOR);
    assert.equal(env.CARGO_WARMUP_DIR, "/c");
    assert.equal(env.CARGO_HOME, "/h");
    assert.equal(env.CARGO_WARMUP_LOG, "/l");
    assert.equal(env.CARGO_TERM_COLOR, "never");
    assert.equal(env.CARGO_TARGET_DIR, undefined);
    assert.equal(env.RUSTFLAGS, undefined);
    assert.equal(env.PATH, Deno.env.get("PATH"));
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
});

Deno.test("readDispatchLog parses JSON lines and countOutcomes tallies them", async () => {
  await using dir = await tempDir();
  const log = join(dir.path, "dispatch.jsonl");
  assert.deepEqual(await readDispatchLog(log), []);
  await Deno.writeTextFile(
    log,
    [
      '{"crate":"serde","version":"1.0.152","outcome":"hit","kind":"lib"}',
      '{"crate":"serde","version":"1.0.152","outcome":"miss","kind":"build-script"}',
      '{"crate":"server","outcome":"not-cacheable","reason":"path dependency","kind":"bin"}',
      "",
    ].join("\n"),
  );
  const entries = await readDispatchLog(log);
  assert.equal(entries.length, 3);
  assert.deepEqual(countOutcomes(entries), { hit: 1, miss: 1, "not-cacheable": 1 });
  assert.deepEqual(countOutcomes(entries, (entry) => entry.crate === "serde"), {
    hit: 1,
    miss: 1,
    "not-cacheable": 0,
  });
});

// "Builds once": a second test process asking for the shared warm cache gets the very same
// directory, not a rebuild of it (a rebuild renames a fresh staging directory into place and
// rewrites every bundle, so the directory, its marker and its files would be new).
Deno.test("sharedWarmCache is built once and then reused by other test processes", async () => {
  const shared = await sharedWarmCache();
  assert.equal(await sharedWarmCache(), shared, "a second call in this process");
  const before = await identityOf(shared);
  assert.ok(before.bundles.size > 40, `the warmed cache holds ${before.bundles.size} bundles`);

  const module = new URL("./_shared_warm_cache.ts", import.meta.url).href;
  const other = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const m = await import(${JSON.stringify(module)}); console.log(await m.sharedWarmCache());`,
    ],
    stderr: "piped",
  }).output();
  assert.equal(other.code, 0, new TextDecoder().decode(other.stderr));
  assert.equal(new TextDecoder().decode(other.stdout).trim(), shared);

  const after = await identityOf(shared);
  assert.equal(after.directory, before.directory, "the cache directory was replaced");
  assert.equal(after.builtAt, before.builtAt, "the cache was rebuilt");
  assert.deepEqual(after.bundles, before.bundles, "bundles were rewritten");
});

// Copies are whole (every file, byte for byte) and independent: a test corrupting, deleting and
// adding files in its copy, in place as the fault tests do, changes neither the shared cache nor
// another test's copy (so a copy made of links, or the original itself, fails here).
Deno.test("copySharedWarmCache gives whole copies that are independent of each other", async () => {
  await using dir = await tempDir();
  const shared = await sharedWarmCache();
  const original = await contentsOf(shared);
  const first = await copySharedWarmCache(join(dir.path, "first"));
  const second = await copySharedWarmCache(join(dir.path, "second"));
  assert.deepEqual(await contentsOf(first), original, "the first copy is not whole");
  assert.deepEqual(await contentsOf(second), original, "the second copy is not whole");

  const [corrupted, removed] = (await listTree(join(first, "bundles"))).sort();
  assert.ok(corrupted && removed, "the copy has fewer than two bundles");
  const file = await Deno.open(corrupted, { write: true }); // same inode: no truncate, no rename
  await file.write(new TextEncoder().encode("CORRUPTED BY harness_test"));
  file.close();
  await Deno.remove(removed);
  await Deno.writeTextFile(join(first, "bundles", "added-by-harness-test"), "extra");
  const changed = await contentsOf(first);
  assert.notEqual(
    changed.get(corrupted.slice(first.length)),
    original.get(corrupted.slice(first.length)),
  );
  assert.equal(changed.has(removed.slice(first.length)), false);

  assert.deepEqual(await contentsOf(second), original, "changing one copy changed another");
  assert.deepEqual(await contentsOf(shared), original, "changing a copy changed the original");
});

/** What a rebuild of the cache at `dir` would change: its inode, marker and bundle files. */
async function identityOf(dir: string) {
  const bundles = new Map<string, number | null>();
  for (const path of await listTree(join(dir, "bundles"))) {
    bundles.set(path, (await Deno.stat(path)).ino);
  }
  return {
    directory: (await Deno.stat(dir)).ino,
    builtAt: await Deno.readTextFile(join(dir, ".harness-complete")),
    bundles,
  };
}

/** Every file under `dir` by its path relative to `dir`, with the SHA-256 of its bytes. */
async function contentsOf(dir: string): Promise<Map<string, string>> {
  const contents = new Map<string, string>();
  for (const path of (await listTree(dir)).sort()) {
    const hash = createHash("sha256").update(await Deno.readFile(path)).digest("hex");
    contents.set(path.slice(dir.length), hash);
  }
  return contents;
}

async function listTree(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...await listTree(path));
    else files.push(path);
  }
  return files;
}
