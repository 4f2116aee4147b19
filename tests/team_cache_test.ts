// End-to-end tests of team caches: real builds through cargo-warmup with a real redis-server and
// a real S3-protocol server behind the local level, and the faults a shared cache must survive
// (a server down before or during a build, wrong credentials, an altered bundle, read-only
// clients, a broken config file, bundles from writers without the signing key).

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  countOutcomes,
  createCargoHome,
  type DispatchLogEntry,
  readDispatchLog,
  runBinary,
  runCargo,
  runWarmup,
  tempDir,
  warmupEnv,
} from "./_harness.ts";
import { S3RVER_CREDENTIALS, startRedis, startS3 } from "./backends/_servers.ts";
import { createRedisStore } from "../backends/redis.ts";
import { createS3Store } from "../backends/s3.ts";
import type { Store } from "../backends/store.ts";

interface Build {
  project: string;
  code: number;
  stderr: string;
  entries: DispatchLogEntry[];
  output: string;
}

/** Builds a fresh copy of seed003 with its own empty local cache and `extraEnv` on top. */
async function buildSeed003(work: string, extraEnv: Record<string, string>): Promise<Build> {
  const id = crypto.randomUUID().slice(0, 8);
  const project = await copyFixture("seed003", join(work, `seed003-${id}`));
  const cargoHome = await createCargoHome(join(work, "cargo-home"));
  const log = join(work, `dispatch-${id}.jsonl`);
  const env = {
    ...warmupEnv({ cacheDir: join(work, `local-${id}`), cargoHome, log }),
    ...extraEnv,
  };
  const result = await runCargo(["build", "--locked"], { cwd: project, env });
  const output = result.code === 0 ? await runBinary(join(project, "target/debug/template")) : "";
  return {
    project,
    code: result.code,
    stderr: result.stderr,
    entries: await readDispatchLog(log),
    output,
  };
}

function assertBuilt(build: Build): void {
  assert.equal(build.code, 0, build.stderr);
  assert.match(build.output, /status 200 OK/);
}

async function listKeys(store: Store): Promise<string[]> {
  try {
    return (await store.list()).map((entry) => entry.key);
  } finally {
    await store.close();
  }
}

const misses = (build: Build) => countOutcomes(build.entries).miss;
const hits = (build: Build) => countOutcomes(build.entries).hit;

Deno.test("redis: project A fills it, project B with an empty local cache is served from it", async () => {
  await using dir = await tempDir();
  await using redis = await startRedis({ password: "team secret" });
  const env = { CARGO_WARMUP_BACKEND: "redis", CARGO_WARMUP_REDIS_URL: redis.url };

  const a = await buildSeed003(dir.path, env);
  assertBuilt(a);
  assert.ok(misses(a) > 10);
  const stored = await listKeys(createRedisStore({ url: redis.url, prefix: "cargo-warmup:" }));
  assert.equal(stored.length, misses(a), "every miss was written to Redis");

  const b = await buildSeed003(dir.path, env);
  assertBuilt(b);
  assert.equal(misses(b), 0, JSON.stringify(b.entries.filter((e) => e.outcome === "miss")));
  assert.equal(hits(b), misses(a));
  assert.equal(b.output, a.output);

  // status shows both levels, the remote reachable.
  const status = await runWarmup(["status", "--json"], {
    env: { ...env, CARGO_WARMUP_DIR: join(dir.path, "status-local") },
  });
  assert.equal(status.code, 0, status.stderr);
  const levels = JSON.parse(status.stdout).levels;
  assert.equal(levels[1].kind, "redis");
  assert.equal(levels[1].healthy, true);
  assert.equal(levels[1].entries, stored.length);

  // With the server gone before the build, it compiles normally after one warning.
  await redis.stop();
  const down = await buildSeed003(dir.path, env);
  assertBuilt(down);
  assert.equal(down.output, a.output);
  const warnings = down.stderr.split("\n").filter((line) => line.includes("warning: cargo-warmup"));
  assert.equal(warnings.length, 1, down.stderr);
  assert.match(warnings[0]!, /127\.0\.0\.1/);
});

Deno.test("redis: a server that dies in the middle of a build does not fail it", async () => {
  await using dir = await tempDir();
  await using redis = await startRedis();
  const log = join(dir.path, "mid-build.jsonl");
  const env = {
    CARGO_WARMUP_BACKEND: "redis",
    CARGO_WARMUP_REDIS_URL: redis.url,
    CARGO_WARMUP_LOG: log,
  };
  const building = buildSeed003(dir.path, env);
  // The fault at a known point: once three units were compiled (and so written to Redis).
  let linesAtStop = -1;
  for (let waited = 0; waited < 120_000 && linesAtStop < 0; waited += 10) {
    const entries = await readDispatchLog(log);
    if (countOutcomes(entries).miss >= 3) {
      await redis.stop();
      linesAtStop = entries.length;
    } else await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const build = await building;
  assertBuilt(build);
  assert.ok(linesAtStop > 0, "Redis was stopped during the build");
  const entries = await readDispatchLog(log);
  assert.ok(
    countOutcomes(entries.slice(linesAtStop)).miss >= 10,
    `most units were compiled after Redis died (${
      entries.length - linesAtStop
    } of ${entries.length})`,
  );
});

Deno.test("s3: served from the bucket, and safe with wrong credentials, altered bundles and read-only clients", async () => {
  await using dir = await tempDir();
  await using s3 = await startS3();
  const env = {
    CARGO_WARMUP_BACKEND: "s3",
    CARGO_WARMUP_S3_BUCKET: s3.bucket,
    CARGO_WARMUP_S3_ENDPOINT: s3.endpoint,
    CARGO_WARMUP_S3_REGION: s3.region,
    AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
  };
  const bucket = () =>
    createS3Store({
      bucket: s3.bucket,
      region: s3.region,
      endpoint: s3.endpoint,
      credentials: { ...S3RVER_CREDENTIALS },
    });

  const a = await buildSeed003(dir.path, env);
  assertBuilt(a);
  const keys = await listKeys(bucket());
  assert.equal(keys.length, misses(a));

  const b = await buildSeed003(dir.path, env);
  assertBuilt(b);
  assert.equal(misses(b), 0);
  assert.equal(b.output, a.output);

  // A bundle altered on the server is never served (and is deleted there).
  const hyper = a.entries.find((entry) => entry.crate === "hyper" && entry.kind === "lib")!;
  const store = bucket();
  await store.put(hyper.key!, new TextEncoder().encode("CWUB not really a bundle"));
  await store.close();
  const altered = await buildSeed003(dir.path, env);
  assertBuilt(altered);
  const hyperEntry = altered.entries.find((entry) => entry.key === hyper.key);
  assert.equal(hyperEntry?.outcome, "miss");
  assert.equal(hyperEntry?.reason, "corrupt entry");

  // Wrong credentials: refused by the server, reported once, and the build compiles normally.
  const wrong = await buildSeed003(dir.path, { ...env, AWS_SECRET_ACCESS_KEY: "not the secret" });
  assertBuilt(wrong);
  assert.equal(hits(wrong), 0);
  assert.match(wrong.stderr, /warning: cargo-warmup: .*(denied|credentials|403)/i);

  // A read-only client reads but never writes.
  const before = (await listKeys(bucket())).length;
  const readOnly = await buildSeed003(dir.path, {
    ...env,
    CARGO_WARMUP_READ_ONLY: "true",
    CARGO_WARMUP_S3_PREFIX: "empty-prefix/",
  });
  assertBuilt(readOnly);
  assert.ok(misses(readOnly) > 10);
  const afterStore = createS3Store({
    bucket: s3.bucket,
    region: s3.region,
    endpoint: s3.endpoint,
    credentials: { ...S3RVER_CREDENTIALS },
    prefix: "empty-prefix/",
  });
  assert.deepEqual(await listKeys(afterStore), []);
  assert.equal((await listKeys(bucket())).length, before);
});

Deno.test("a malformed config file is a clear error for the manager and never fails a build", async () => {
  await using dir = await tempDir();
  const project = await copyFixture("seed003", join(dir.path, "project"));
  await Deno.mkdir(join(project, ".cargo"));
  await Deno.writeTextFile(
    join(project, ".cargo", "config.toml"),
    '[build]\njobs = 2\n\n[warmup]\nbackend = "memcached"\n',
  );
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const env = warmupEnv({ cacheDir: join(dir.path, "cache"), cargoHome });
  const config = await runWarmup(["config"], { cwd: project, env });
  assert.equal(config.code, 1);
  assert.match(config.stderr, /config\.toml.*line 5.*backend|backend.*config\.toml.*5/s);

  const build = await runCargo(["build", "--locked"], { cwd: project, env });
  assert.equal(build.code, 0, build.stderr);
  assert.match(build.stderr, /warning: cargo-warmup: .*backend.*building without the cache/);
});

Deno.test("with a signing key, bundles from writers without it are refused", async () => {
  await using dir = await tempDir();
  const keyFile = join(dir.path, "team.key");
  await Deno.writeTextFile(keyFile, "a shared team secret");
  const shared = join(dir.path, "shared-cache");
  const fill = async (extra: Record<string, string>) => {
    const id = crypto.randomUUID().slice(0, 8);
    const project = await copyFixture("seed003", join(dir.path, `p-${id}`));
    const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
    const log = join(dir.path, `log-${id}.jsonl`);
    const result = await runCargo(["build", "--locked"], {
      cwd: project,
      env: { ...warmupEnv({ cacheDir: shared, cargoHome, log }), ...extra },
    });
    assert.equal(result.code, 0, result.stderr);
    return await readDispatchLog(log);
  };
  const unsigned = await fill({});
  assert.ok(countOutcomes(unsigned).miss > 10);
  const signedRun = await fill({ CARGO_WARMUP_SIGNING_KEY_FILE: keyFile });
  assert.equal(countOutcomes(signedRun).hit, 0, "an unsigned bundle was accepted");
  assert.ok(
    signedRun.every((entry) => entry.outcome !== "miss" || entry.reason === "corrupt entry"),
  );
  const again = await fill({ CARGO_WARMUP_SIGNING_KEY_FILE: keyFile });
  assert.equal(countOutcomes(again).miss, 0);
});
