// A fresh machine reads the team's manifest first: real builds of seed001 through cargo-warmup with
// a real redis-server (and the same entries copied to an S3-protocol server and an nginx cache).
// CI, a trusted writer, builds into Redis and publishes the manifest of its build's shape when
// its calls settle; a reader with an empty local level and no journal (a CI job, a container)
// fetches it at its first call and stages the entries ahead of cargo. A manifest that is altered,
// unsigned or signed by a key the reader does not trust is ignored with one warning, and every
// build is right.

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
  warmupEnv,
} from "./_harness.ts";
import { S3RVER_CREDENTIALS, startNginx, startRedis, startS3 } from "./backends/_servers.ts";
import { createHttpStore } from "../backends/http.ts";
import { createLocalStore } from "../backends/local.ts";
import { createRedisStore } from "../backends/redis.ts";
import { createS3Store } from "../backends/s3.ts";
import type { Store } from "../backends/store.ts";
import { openEnvelope, sealEnvelope } from "../src/bundle/envelope.ts";
import { type BundleSigner, readSigningKeyFile } from "../src/bundle/keys.ts";
import { settleDaemons } from "../src/daemon/settle.ts";

interface Build {
  code: number;
  stderr: string;
  entries: DispatchLogEntry[];
  output: string;
  /** With `prepare`: its stderr, and the bundles the local level held when it returned. */
  prepared?: { stderr: string; local: string[] };
}

/**
 * Builds a fresh copy of seed001 with a new, empty local level (so no journal) and `env`; with
 * `prepare`, runs `cargo-warmup prepare` in it first, and builds with `buildEnv` on top of `env`.
 */
async function buildSeed001(
  work: string,
  env: Record<string, string>,
  options: { prepare?: boolean; buildEnv?: Record<string, string> } = {},
): Promise<Build> {
  const id = crypto.randomUUID().slice(0, 8);
  const project = await copyFixture("seed001", join(work, `seed001-${id}`));
  const log = join(work, `dispatch-${id}.jsonl`);
  const cacheDir = join(work, `local-${id}`);
  const cargoHome = await createCargoHome(join(work, "cargo-home"));
  const baseEnv = { ...warmupEnv({ cacheDir, cargoHome, log }), ...env };
  let prepared: Build["prepared"];
  if (options.prepare) {
    const run = await runWarmup(["prepare"], { cwd: project, env: baseEnv });
    assert.equal(run.code, 0, run.stderr);
    const local = (await createLocalStore({ dir: cacheDir }).list()).map((entry) => entry.key);
    prepared = { stderr: run.stderr, local };
  }
  const result = await runCargo(["build", "--locked"], {
    cwd: project,
    env: { ...baseEnv, ...options.buildEnv },
  });
  // Its calls settle: a writer's daemon publishes now rather than a moment after cargo exits.
  await settleDaemons(runtimeDirFor(cacheDir), 10_000);
  const output = result.code === 0 ? await runBinary(join(project, "target/debug/server")) : "";
  const entries = await readDispatchLog(log);
  return { code: result.code, stderr: result.stderr, entries, output, ...prepared && { prepared } };
}

function assertBuilt(build: Build, expectedOutput: string): void {
  assert.equal(build.code, 0, build.stderr);
  assert.equal(build.output, expectedOutput);
}

const hits = (build: Build) => build.entries.filter((entry) => entry.outcome === "hit");
/** Hits whose entry was made ready ahead of the call (staging.ts). */
const staged = (build: Build) =>
  hits(build).filter((entry) => (entry.phases as Record<string, number> | undefined)?.staged);
const manifestWarnings = (build: Build) =>
  build.stderr.split("\n").filter((line) => line.includes("team manifest"));

/** `cargo-warmup keygen --out dir`: the key files, and the signer as the cache reads it. */
async function keygen(dir: string): Promise<{ key: string; pub: string; signer: BundleSigner }> {
  const run = await runWarmup(["keygen", "--out", dir]);
  assert.equal(run.code, 0, run.stderr);
  const key = join(dir, "cargo-warmup.key");
  const signing = await readSigningKeyFile(key);
  assert.ok("signer" in signing);
  return { key, pub: join(dir, "cargo-warmup.pub"), signer: signing.signer };
}

/** Every bundle and every manifest `store` holds, by name; the store is closed. */
async function contentsOf(store: Store) {
  try {
    const read = async (names: string[]) =>
      new Map(
        await Promise.all(names.map(async (name) => [name, (await store.get(name))!] as const)),
      );
    return {
      bundles: await read((await store.list()).map((entry) => entry.key)),
      manifests: await read((await store.listReserved("manifest")).map((entry) => entry.key)),
    };
  } finally {
    await store.close();
  }
}

async function putAll(store: Store, contents: Map<string, Uint8Array>): Promise<void> {
  try {
    await Promise.all([...contents].map(([name, bytes]) => store.put(name, bytes)));
  } finally {
    await store.close();
  }
}

Deno.test("a fresh machine stages the entries of its build's team manifest", async (t) => {
  await using dir = await tempDir();
  await using redis = await startRedis();
  const ci = await keygen(join(dir.path, "ci"));
  const redisEnv = { CARGO_WARMUP_BACKEND: "redis", CARGO_WARMUP_REDIS_URL: redis.url };
  const reader = { ...redisEnv, CARGO_WARMUP_TRUSTED_KEYS: ci.pub };
  const redisStore = () => createRedisStore({ url: redis.url, recordUse: false });

  // CI builds into Redis, signing what it stores, and publishes one manifest for the build.
  const writer = await buildSeed001(dir.path, {
    ...redisEnv,
    CARGO_WARMUP_SIGNING_KEY_FILE: ci.key,
  });
  assert.equal(writer.code, 0, writer.stderr);
  const expectedOutput = writer.output;
  const stored = await contentsOf(redisStore());
  const [[name, manifest]] = [...stored.manifests] as [[string, Uint8Array]];
  assert.equal(stored.manifests.size, 1, "one manifest for the one build shape");
  assert.equal(manifest[4], 2, "signed with Ed25519");
  assert.equal(manifest.slice(70, 78).toHex(), ci.signer.id, "signed with CI's key");
  const used = writer.entries.filter((e) => e.outcome !== "not-cacheable").map((e) => e.key!);
  assert.ok(used.length >= 10, JSON.stringify(writer.entries));
  assert.deepEqual([...stored.bundles.keys()].sort(), [...new Set(used)].sort());

  await t.step("a reader with no journal stages them from the manifest", async () => {
    const read = await buildSeed001(dir.path, reader);
    assertBuilt(read, expectedOutput);
    assert.equal(countOutcomes(read.entries).miss, 0, JSON.stringify(read.entries));
    const count = staged(read).length;
    assert.ok(count >= hits(read).length / 2, `${count} of ${hits(read).length} hits staged`);
    assert.deepEqual(manifestWarnings(read), [], read.stderr);
    // A keyless reader publishes nothing: the manifest is CI's as it was.
    assert.deepEqual((await contentsOf(redisStore())).manifests, stored.manifests);
  });

  await t.step("prepare on a fresh machine fetches them into the local level", async () => {
    // The build after it reads a remote that is gone: every entry is served from local disk.
    const read = await buildSeed001(dir.path, reader, {
      prepare: true,
      buildEnv: { CARGO_WARMUP_REDIS_URL: "redis://127.0.0.1:1/0" },
    });
    assert.deepEqual(read.prepared!.local.sort(), [...stored.bundles.keys()].sort());
    assert.match(read.prepared!.stderr, /fetched (\d+) of the \1 entries of the team manifest/);
    assertBuilt(read, expectedOutput);
    assert.equal(countOutcomes(read.entries).miss, 0, JSON.stringify(read.entries));
  });

  // What a hostile or broken writer leaves under the manifest's name: each is ignored with one
  // warning, staging nothing, and the build is served entry by entry, right.
  const payload = await openEnvelope(manifest, name);
  const altered = manifest.slice();
  altered[altered.length - 1]! ^= 1;
  const other = await keygen(join(dir.path, "other"));
  const refusedManifests = [
    ["altered", altered, /Content hash mismatch/],
    ["unsigned", await sealEnvelope(payload, name), /carries no signature/],
    [
      "signed by another key",
      await sealEnvelope(payload, name, { signer: other.signer }),
      /which is not a trusted key/,
    ],
  ] as const;
  for (const [what, bytes, reason] of refusedManifests) {
    await t.step(`a manifest ${what} is ignored with one warning`, async () => {
      await putAll(redisStore(), new Map([[name, bytes]]));
      const read = await buildSeed001(dir.path, reader);
      assertBuilt(read, expectedOutput);
      assert.equal(countOutcomes(read.entries).miss, 0, JSON.stringify(read.entries));
      assert.equal(staged(read).length, 0, "staged from a refused manifest");
      const [warning, ...more] = manifestWarnings(read);
      assert.deepEqual(more, [], read.stderr);
      assert.match(
        warning ?? read.stderr,
        /^warning: cargo-warmup: ignoring the team manifest of this build in redis:\/\//,
      );
      assert.match(warning!, reason);
    });
  }
  await putAll(redisStore(), stored.manifests);

  // The same entries and manifest on an S3-protocol server and an nginx cache: any remote serves.
  await using s3 = await startS3();
  await using nginx = await startNginx();
  const remotes = [
    {
      kind: "s3",
      store: () =>
        createS3Store({
          bucket: s3.bucket,
          region: s3.region,
          endpoint: s3.endpoint,
          credentials: { ...S3RVER_CREDENTIALS },
        }),
      env: {
        CARGO_WARMUP_BACKEND: "s3",
        CARGO_WARMUP_S3_BUCKET: s3.bucket,
        CARGO_WARMUP_S3_ENDPOINT: s3.endpoint,
        CARGO_WARMUP_S3_REGION: s3.region,
        AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      },
    },
    {
      kind: "http",
      store: () => createHttpStore({ url: nginx.openUrl }),
      env: { CARGO_WARMUP_BACKEND: "http", CARGO_WARMUP_HTTP_URL: nginx.openUrl },
    },
  ];
  for (const remote of remotes) {
    await t.step(`a reader through ${remote.kind} stages them too`, async () => {
      await putAll(remote.store(), new Map([...stored.bundles, ...stored.manifests]));
      const read = await buildSeed001(dir.path, {
        ...remote.env,
        CARGO_WARMUP_TRUSTED_KEYS: ci.pub,
      });
      assertBuilt(read, expectedOutput);
      assert.equal(countOutcomes(read.entries).miss, 0, JSON.stringify(read.entries));
      const count = staged(read).length;
      assert.ok(count >= hits(read).length / 2, `${count} of ${hits(read).length} hits staged`);
    });
  }
});
