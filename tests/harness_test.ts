// Checks the parts of tests/_harness.ts that do not need the dispatcher: the fixtures build
// offline with plain cargo and the private CARGO_HOME, and their binaries print what the
// integration tests expect. The shared warm cache is checked once mod.ts exists.

import assert from "node:assert/strict";
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

Deno.test({
  name: "sharedWarmCache builds once and copies stay independent",
  async fn() {
    await using dir = await tempDir();
    const shared = await sharedWarmCache();
    const builtAt = await Deno.readTextFile(join(shared, ".harness-complete"));

    // Another test process asks for it: same path, not rebuilt (the build time stays the same).
    const module = new URL("./_shared_warm_cache.ts", import.meta.url).href;
    const other = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const m = await import(${
          JSON.stringify(module)
        }); console.log(await m.sharedWarmCache());`,
      ],
      stderr: "piped",
    }).output();
    assert.equal(other.code, 0, new TextDecoder().decode(other.stderr));
    assert.equal(new TextDecoder().decode(other.stdout).trim(), shared);
    assert.equal(await Deno.readTextFile(join(shared, ".harness-complete")), builtAt);

    // Copies are whole and independent: emptying one leaves the other and the original intact.
    const first = await copySharedWarmCache(join(dir.path, "first"));
    const second = await copySharedWarmCache(join(dir.path, "second"));
    const bundles = async (cache: string) => (await listTree(join(cache, "bundles"))).length;
    const count = await bundles(shared);
    assert.ok(count > 40, `the warmed cache holds ${count} bundles`);
    assert.equal(await bundles(first), count);
    await Deno.remove(join(first, "bundles"), { recursive: true });
    assert.equal(await bundles(second), count);
    assert.equal(await bundles(shared), count);
  },
});

async function listTree(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...await listTree(path));
    else files.push(path);
  }
  return files;
}
