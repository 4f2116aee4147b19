// End-to-end tests of team caches: real builds through cargo-warmup with a real redis-server, a
// real S3-protocol server and a real nginx WebDAV cache behind the local level, and the faults a shared cache must survive
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
  runtimeDirFor,
  runWarmup,
  tempDir,
  waitUntil,
  warmupEnv,
} from "./_harness.ts";
import { S3RVER_CREDENTIALS, startNginx, startRedis, startS3 } from "./backends/_servers.ts";
import { createHttpStore } from "../backends/http.ts";
import { createRedisStore } from "../backends/redis.ts";
import { createS3Store } from "../backends/s3.ts";
import type { Store } from "../backends/store.ts";
import { settleDaemons } from "../src/daemon/settle.ts";

interface Build {
  project: string;
  /** The build's local level (its daemon's runtime dir is beside it). */
  cacheDir: string;
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
  const cacheDir = join(work, `local-${id}`);
  const env = { ...warmupEnv({ cacheDir, cargoHome, log }), ...extraEnv };
  const result = await runCargo(["build", "--locked"], { cwd: project, env });
  const output = result.code === 0 ? await runBinary(join(project, "target/debug/template")) : "";
  return {
    project,
    cacheDir,
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

/** What the seed003 program prints (tests/harness_test.ts checks it against a plain build). */
const SEED003_OUTPUT = "status 200 OK\nbody ETALPMET OLLEH\n";
/** The jobs cargo runs at once in the mid-build fault test. */
const JOBS = 2;

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
  const warning = assertOneOutageWarning(down.stderr, "redis");
  assert.match(warning, /"redis:\/\/127\.0\.0\.1:\d+\/0"/);
  assert.doesNotMatch(warning, /team( |%20)secret/, "the password is not shown");
});

// The fault at a known point: Redis holds every unit of the build (project A put them there), and
// it is killed right after project B's first unit was served from it, while cargo is paused so
// that no new unit starts around the kill. The units cargo starts afterwards must each find Redis
// gone and compile, and the build must still succeed with the same program. If the build finished
// before the kill, nothing is dispatched after it and the test fails.
Deno.test("redis: a server that dies in the middle of a build does not fail it", async () => {
  await using dir = await tempDir();
  await using redis = await startRedis();
  const env = { CARGO_WARMUP_BACKEND: "redis", CARGO_WARMUP_REDIS_URL: redis.url };
  const a = await buildSeed003(dir.path, env);
  assertBuilt(a);
  assert.equal(a.output, SEED003_OUTPUT);
  const stored = new Set(a.entries.filter((entry) => entry.outcome === "miss").map((e) => e.key));
  assert.equal(
    (await listKeys(createRedisStore({ url: redis.url, prefix: "cargo-warmup:" }))).length,
    stored.size,
    "every unit of the build is in Redis",
  );
  // Project B must fetch each unit as cargo asks for it, not stage them all from A's team manifest
  // before the kill (a fresh machine's staging: tests/fresh_machine_test.ts).
  await settleDaemons(runtimeDirFor(a.cacheDir), 5_000);
  const manifests = createRedisStore({ url: redis.url, prefix: "cargo-warmup:" });
  const published = await manifests.listReserved("manifest");
  assert.equal(published.length, 1, "project A published its build's manifest");
  for (const { key } of published) await manifests.delete(key);
  await manifests.close();

  // Project B: a fresh copy with an empty local cache, so every unit is a fetch from Redis.
  const project = await copyFixture("seed003", join(dir.path, "seed003-b"));
  const cacheDir = join(dir.path, "local-b");
  const log = join(dir.path, "dispatch-b.jsonl");
  const cargo = new Deno.Command("cargo", {
    args: ["build", "--locked"],
    cwd: project,
    clearEnv: true,
    env: {
      ...warmupEnv({
        cacheDir,
        cargoHome: await createCargoHome(join(dir.path, "cargo-home")),
        log,
      }),
      ...env,
      // At most this many rustc calls run at once: the calls in flight when Redis dies.
      CARGO_BUILD_JOBS: String(JOBS),
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const finished = cargo.output();
  let exited = false;
  cargo.status.then(() => exited = true);

  let linesAtKill: number | undefined;
  const served = await waitUntil(async () => {
    if (exited) return "exited";
    return (await readDispatchLog(log)).some((entry) => entry.outcome === "hit") && "hit";
  }, { what: "a hit from Redis", everyMs: 5, timeoutMs: 600_000 });
  if (served === "hit") {
    // Paused, cargo starts no new unit while Redis goes; the calls in flight carry on.
    const paused = signal(cargo.pid, "SIGSTOP");
    try {
      await redis.stop();
      linesAtKill = (await readDispatchLog(log)).length;
    } finally {
      if (paused) signal(cargo.pid, "SIGCONT");
    }
  }
  const result = await finished;
  await settleDaemons(runtimeDirFor(cacheDir), 120_000);
  const stderr = new TextDecoder().decode(result.stderr);
  assert.equal(result.code, 0, stderr);
  assert.equal(await runBinary(join(project, "target/debug/template")), SEED003_OUTPUT);
  assert.ok(linesAtKill !== undefined, "the build ended before its first hit from Redis");

  // Lines past the calls in flight at the kill are units cargo started after it: Redis had them
  // all, so each one compiling proves it met the outage, not an empty cache.
  const entries = await readDispatchLog(log);
  const afterKill = entries.slice(linesAtKill + JOBS).filter((e) => e.outcome !== "not-cacheable");
  assert.ok(
    afterKill.length >= 5,
    `only ${afterKill.length} units were dispatched after Redis died (${linesAtKill} before)`,
  );
  for (const entry of afterKill) {
    assert.equal(entry.outcome, "miss", `${entry.crate} after the kill: ${JSON.stringify(entry)}`);
    assert.ok(stored.has(entry.key), `${entry.crate} was never in Redis`);
  }
  assert.ok(countOutcomes(entries).hit >= 1);

  // The outage is reported once, with one prefix.
  assertOneOutageWarning(stderr, "redis");
});

/**
 * The one line of a build's output reporting a remote outage, checked for its one wording: the
 * dispatcher's single `warning: cargo-warmup: ` prefix, then the store's message, then what the
 * build does about it. Returns the line.
 */
function assertOneOutageWarning(stderr: string, kind: string): string {
  const lines = stderr.split("\n").filter((line) => line.includes("Cannot reach cache store"));
  assert.equal(lines.length, 1, `expected one outage warning in:\n${stderr}`);
  const [line] = lines as [string];
  assert.ok(line.startsWith(`warning: cargo-warmup: Cannot reach cache store "${kind}://`), line);
  assert.ok(line.endsWith(`; continuing without the ${kind} cache for this build`), line);
  assert.doesNotMatch(stderr, /warning: (cargo-warmup: )?warning:/, "a doubled prefix");
  return line;
}

/** Sends `signal` to `pid`; false when the process is already gone. */
function signal(pid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(pid, signal);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

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
  assert.match(assertOneOutageWarning(wrong.stderr, "s3"), /access denied.*credentials/);
  assert.doesNotMatch(wrong.stderr, /not the secret/, "the secret is not shown");

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

Deno.test("http: served from an nginx cache with a bearer token, which is never shown", async () => {
  await using dir = await tempDir();
  const token = "team-bearer-t0ken";
  await using nginx = await startNginx({ bearerToken: token });
  const env = {
    CARGO_WARMUP_BACKEND: "http",
    CARGO_WARMUP_HTTP_URL: nginx.bearerUrl,
    CARGO_WARMUP_HTTP_TOKEN: token,
  };

  const a = await buildSeed003(dir.path, env);
  assertBuilt(a);
  const stored = await listKeys(createHttpStore({ url: nginx.bearerUrl, token }));
  assert.equal(stored.length, misses(a), "every miss was written to the HTTP cache");

  const b = await buildSeed003(dir.path, env);
  assertBuilt(b);
  assert.equal(misses(b), 0, JSON.stringify(b.entries.filter((e) => e.outcome === "miss")));
  assert.equal(hits(b), misses(a));
  assert.equal(b.output, SEED003_OUTPUT);

  const status = await runWarmup(["status", "--json"], {
    env: { ...env, CARGO_WARMUP_DIR: join(dir.path, "status-local") },
  });
  assert.equal(status.code, 0, status.stderr);
  const remote = JSON.parse(status.stdout).levels[1];
  assert.equal(remote.kind, "http");
  assert.equal(remote.healthy, true, remote.health);
  assert.equal(remote.entries, stored.length);

  // A wrong token: refused by the server, reported once, and the build compiles normally.
  const wrong = await buildSeed003(dir.path, { ...env, CARGO_WARMUP_HTTP_TOKEN: "wrong-t0ken" });
  assertBuilt(wrong);
  assert.equal(hits(wrong), 0);
  assert.match(assertOneOutageWarning(wrong.stderr, "http"), /access denied.*credentials/);
  for (const text of [a.stderr, b.stderr, wrong.stderr, status.stdout, status.stderr]) {
    assert.doesNotMatch(text, /t0ken/, "a token is shown");
  }
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
