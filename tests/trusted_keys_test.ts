// End-to-end tests of trusted writers and keyless readers: real builds of the tiny fixture through
// cargo-warmup with a real redis-server behind the local level. CI signs what it stores with an
// Ed25519 key (`cargo-warmup keygen`); readers hold only its public key (`trusted-keys`), are
// served what CI stored, refuse everything else, and never write to the shared level.

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
import { startRedis } from "./backends/_servers.ts";
import { createLocalStore } from "../backends/local.ts";
import { createRedisStore } from "../backends/redis.ts";
import { type Bundle, openBundle, packBundle } from "../src/bundle/bundle.ts";
import { type BundleSigner, readSigningKeyFile } from "../src/bundle/keys.ts";
import { sha256Hex } from "../src/digest.ts";

/** What the tiny program prints. */
const TINY_OUTPUT = "tiny 4096 unix Some(2)\n";
const PREFIX = "cargo-warmup:";

interface Build {
  code: number;
  stderr: string;
  entries: DispatchLogEntry[];
  output: string;
  cacheDir: string;
}

/** Builds a fresh copy of tiny with `cacheDir` (default: a new, empty one) and `extraEnv`. */
async function buildTiny(
  work: string,
  extraEnv: Record<string, string>,
  cacheDir = join(work, `local-${crypto.randomUUID().slice(0, 8)}`),
): Promise<Build> {
  const id = crypto.randomUUID().slice(0, 8);
  const project = await copyFixture("tiny", join(work, `tiny-${id}`));
  const log = join(work, `dispatch-${id}.jsonl`);
  const env = {
    ...warmupEnv({ cacheDir, cargoHome: await createCargoHome(join(work, "cargo-home")), log }),
    ...extraEnv,
  };
  const result = await runCargo(["build", "--locked"], { cwd: project, env });
  const output = result.code === 0 ? await runBinary(join(project, "target/debug/tiny")) : "";
  return {
    code: result.code,
    stderr: result.stderr,
    entries: await readDispatchLog(log),
    output,
    cacheDir,
  };
}

function assertBuilt(build: Build): void {
  assert.equal(build.code, 0, build.stderr);
  assert.equal(build.output, TINY_OUTPUT);
}

const cached = (build: Build) => build.entries.filter((entry) => entry.outcome !== "not-cacheable");
const misses = (build: Build) => countOutcomes(build.entries).miss;
const hits = (build: Build) => countOutcomes(build.entries).hit;
/** The lines of a build's output that refuse something from the shared level. */
const refusals = (build: Build) =>
  build.stderr.split("\n").filter((line) => line.includes("Refusing bundle"));

/** Every bundle under `prefix` in Redis, by key. */
async function redisBundles(url: string, prefix = PREFIX): Promise<Map<string, Uint8Array>> {
  const store = createRedisStore({ url, prefix, recordUse: false });
  try {
    const bundles = new Map<string, Uint8Array>();
    for (const { key } of await store.list()) bundles.set(key, (await store.get(key))!);
    return bundles;
  } finally {
    await store.close();
  }
}

async function putAll(url: string, prefix: string, bundles: Map<string, Uint8Array>) {
  const store = createRedisStore({ url, prefix });
  try {
    for (const [key, bytes] of bundles) await store.put(key, bytes);
  } finally {
    await store.close();
  }
}

/** `cargo-warmup keygen --out dir`: the key files, and the signer as the cache reads it. */
async function keygen(dir: string): Promise<{ key: string; pub: string; signer: BundleSigner }> {
  const run = await runWarmup(["keygen", "--out", dir]);
  assert.equal(run.code, 0, run.stderr);
  const key = join(dir, "cargo-warmup.key");
  const signing = await readSigningKeyFile(key);
  assert.ok("signer" in signing);
  return { key, pub: join(dir, "cargo-warmup.pub"), signer: signing.signer };
}

/** Each bundle's SHA-256, by key. */
function digests(bundles: Map<string, Uint8Array>): Map<string, string> {
  return new Map([...bundles].map(([key, bytes]) => [key, sha256Hex(bytes)]));
}

/** Who signed a stored bundle: its key id, or "unsigned" for format 1. */
function signerOf(bytes: Uint8Array): string {
  return bytes[4] === 2 ? bytes.slice(70, 78).toHex() : "unsigned";
}

Deno.test("trusted keys: a reader with CI's public key is served what CI signed, and nothing else", async () => {
  await using dir = await tempDir();
  await using redis = await startRedis();
  const ci = await keygen(join(dir.path, "ci"));
  const shared = { CARGO_WARMUP_BACKEND: "redis", CARGO_WARMUP_REDIS_URL: redis.url };
  const writer = { ...shared, CARGO_WARMUP_SIGNING_KEY_FILE: ci.key };
  const reader = { ...shared, CARGO_WARMUP_TRUSTED_KEYS: ci.pub };

  // CI fills Redis: every entry signed with its key.
  const fill = await buildTiny(dir.path, writer);
  assertBuilt(fill);
  assert.ok(misses(fill) >= 4, JSON.stringify(fill.entries));
  const stored = await redisBundles(redis.url);
  assert.equal(stored.size, misses(fill));
  assert.deepEqual(new Set([...stored.values()].map(signerOf)), new Set([ci.signer.id]));

  // A reader holding only the public key is served everything, and builds the same program.
  const read = await buildTiny(dir.path, reader);
  assertBuilt(read);
  assert.equal(misses(read), 0, JSON.stringify(read.entries));
  assert.equal(hits(read), stored.size);
  assert.deepEqual(refusals(read), []);

  // Another writer (its own key) fills another prefix: the reader refuses all of it, with one
  // warning, compiles, and writes nothing there (its misses stay on its local disk).
  const other = await keygen(join(dir.path, "other"));
  const otherFill = await buildTiny(dir.path, {
    ...shared,
    CARGO_WARMUP_REDIS_PREFIX: "other:",
    CARGO_WARMUP_SIGNING_KEY_FILE: other.key,
  });
  assertBuilt(otherFill);
  const otherStored = await redisBundles(redis.url, "other:");
  assert.equal(otherStored.size, stored.size);
  const refused = await buildTiny(dir.path, { ...reader, CARGO_WARMUP_REDIS_PREFIX: "other:" });
  assertBuilt(refused);
  assert.equal(hits(refused), 0, JSON.stringify(refused.entries));
  assert.equal(misses(refused), stored.size);
  const [warning, ...more] = refusals(refused);
  assert.deepEqual(more, [], refused.stderr);
  assert.match(
    warning!,
    new RegExp(
      `^warning: cargo-warmup: Refusing bundle "[0-9a-f]{64}" from redis://127\\.0\\.0\\.1:\\d+/0: ` +
        `Bundle is signed by key "${other.signer.id}", which is not a trusted key; compiling it here$`,
    ),
  );
  // (Compared by digest: a failing deepEqual of megabytes of bytes would take the memory it diffs.)
  assert.deepEqual(
    digests(await redisBundles(redis.url, "other:")),
    digests(otherStored),
    "the reader wrote nothing to the shared level",
  );
  // Nothing refused was kept on local disk: it holds the reader's own compiles (unsigned).
  const local = createLocalStore({ dir: refused.cacheDir });
  try {
    const kept = await Promise.all((await local.list()).map(({ key }) => local.get(key)));
    assert.equal(kept.length, stored.size);
    assert.deepEqual(new Set(kept.map((bytes) => signerOf(bytes!))), new Set(["unsigned"]));
  } finally {
    await local.close();
  }
  // What it compiled stays on its own disk and serves its next build.
  const again = await buildTiny(
    dir.path,
    { ...reader, CARGO_WARMUP_REDIS_PREFIX: "other:" },
    refused.cacheDir,
  );
  assertBuilt(again);
  assert.equal(misses(again), 0, JSON.stringify(again.entries));
  assert.deepEqual(refusals(again), []);

  // CI's own bundle of itoa moved to memchr's key: genuine signature, wrong key. Refused when
  // read, dropped, compiled; the build is right.
  const itoa = cached(fill).find((entry) => entry.crate === "itoa" && entry.kind === "lib")!;
  const memchr = cached(fill).find((entry) => entry.crate === "memchr" && entry.kind === "lib")!;
  await putAll(redis.url, PREFIX, new Map([[memchr.key!, stored.get(itoa.key!)!]]));
  const moved = await buildTiny(dir.path, reader);
  assertBuilt(moved);
  const movedEntry = moved.entries.find((entry) => entry.key === memchr.key);
  assert.equal(movedEntry?.outcome, "miss");
  assert.equal(movedEntry?.reason, "corrupt entry");
  assert.match(moved.stderr, /Bundle is signed for another key, not "[0-9a-f]{64}"/);
  assert.equal(misses(moved), 1, JSON.stringify(moved.entries));
});

Deno.test("trusted keys: a hostile writer cannot make a keyless reader run its code", async () => {
  await using dir = await tempDir();
  await using redis = await startRedis();
  const ci = await keygen(join(dir.path, "ci"));
  const hostile = await keygen(join(dir.path, "hostile"));
  const shared = { CARGO_WARMUP_BACKEND: "redis", CARGO_WARMUP_REDIS_URL: redis.url };
  const fill = await buildTiny(dir.path, { ...shared, CARGO_WARMUP_SIGNING_KEY_FILE: ci.key });
  assertBuilt(fill);
  const genuine = await redisBundles(redis.url);

  // The hostile writer (write access to Redis, no CI key) replaces memchr's build script with its
  // own program, which leaves a marker when run, and stores every entry under its own prefix:
  // unsigned, signed with its own key, or naming CI's key with its own signature.
  const modes = ["unsigned", "own key", "forged"] as const;
  const markerOf = (mode: string) => join(dir.path, `ran-${mode.replace(" ", "-")}`);
  for (const mode of modes) {
    const poisoned = new Map<string, Uint8Array>();
    for (const [key, bytes] of genuine) {
      const bundle: Bundle = await openBundle(bytes, key);
      if (bundle.meta.kind === "build-script") {
        const script = `#!/bin/sh\necho hostile > "${markerOf(mode)}"\n`;
        bundle.files.set("bin", new TextEncoder().encode(script));
      }
      const packed = await packBundle(
        bundle,
        mode === "unsigned" ? {} : { signer: hostile.signer },
      );
      if (mode === "forged") packed.set(Uint8Array.fromHex(ci.signer.id), 70);
      poisoned.set(key, packed);
    }
    await putAll(redis.url, `${mode}:`, poisoned);
  }

  // The threat is real: a client without keys runs the hostile build script. (Read-only, so that
  // what it compiled does not change what the next reader finds.)
  const trusting = await buildTiny(dir.path, {
    ...shared,
    CARGO_WARMUP_REDIS_PREFIX: "unsigned:",
    CARGO_WARMUP_READ_ONLY: "true",
  });
  assert.equal(trusting.code, 0, trusting.stderr);
  assert.equal(await Deno.readTextFile(markerOf("unsigned")), "hostile\n");
  await Deno.remove(markerOf("unsigned"));

  // A reader with CI's public key refuses every poisoned entry, with one warning, and builds the
  // right program; the hostile script never runs.
  for (const mode of modes) {
    const build = await buildTiny(dir.path, {
      ...shared,
      CARGO_WARMUP_REDIS_PREFIX: `${mode}:`,
      CARGO_WARMUP_TRUSTED_KEYS: ci.pub,
    });
    assertBuilt(build);
    await assert.rejects(() => Deno.stat(markerOf(mode)), Deno.errors.NotFound, mode);
    assert.equal(hits(build), 0, `${mode}: ${JSON.stringify(build.entries)}`);
    assert.equal(refusals(build).length, 1, `${mode}:\n${build.stderr}`);
  }
});
