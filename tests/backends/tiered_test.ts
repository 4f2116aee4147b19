import assert from "node:assert/strict";
import { join } from "node:path";
import { createLocalStore } from "../../backends/local.ts";
import { openStore } from "../../backends/open_store.ts";
import { createRedisStore } from "../../backends/redis.ts";
import type { Store } from "../../backends/store.ts";
import { createStoreLevels, type LazyStore } from "../../backends/levels.ts";
import { loadConfig } from "../../src/config/config.ts";
import { startRedis } from "./_servers.ts";
import { testKey, testStore } from "./store_suite.ts";

// A timer, an op or a socket a test leaves behind fails it (see store_suite.ts).
Deno.test.sanitizer({ ops: true, resources: true });

const root = await Deno.makeTempDir({ prefix: "warmup-tiered-test-" });
const dirOf = (name: string) => join(root, `${name}-${crypto.randomUUID().slice(0, 8)}`);

// The shared store suite against two levels on local disk. Outages of a real remote behind local
// disk are the shared outage suite's (store_suite.ts testOutages), run by redis_test and s3_test.
await testStore("tiered (local + local)", () => ({
  open: (namespace) =>
    createStoreLevels(
      createLocalStore({ dir: join(root, namespace, "near") }),
      createLocalStore({ dir: join(root, namespace, "far") }),
    ),
}));

Deno.test("tiered: a remote hit is served and written back to local disk", async () => {
  const local = createLocalStore({ dir: dirOf("near") });
  const remote = createLocalStore({ dir: dirOf("far") });
  const store = createStoreLevels(local, remote);
  await remote.put(testKey("a"), new Uint8Array([1, 2]));
  assert.deepEqual(await store.get(testKey("a")), new Uint8Array([1, 2]));
  assert.deepEqual(await local.get(testKey("a")), new Uint8Array([1, 2]));
  assert.equal(await store.has(testKey("a")), true);
  await store.close();
});

Deno.test("tiered: a put lands on both levels once flushed", async () => {
  const local = createLocalStore({ dir: dirOf("near") });
  const remote = createLocalStore({ dir: dirOf("far") });
  const store = createStoreLevels(local, remote);
  await store.put(testKey("b"), new Uint8Array([3]));
  assert.equal(await local.has(testKey("b")), true);
  await store.flush();
  assert.equal(await remote.has(testKey("b")), true);
  await store.delete(testKey("b"));
  assert.equal(await remote.has(testKey("b")), false);
  await store.close();
});

Deno.test("tiered: a local hit never opens a lazy remote", async () => {
  const local = createLocalStore({ dir: dirOf("near") });
  let opened = 0;
  const remote: LazyStore = {
    kind: "test",
    location: "test://remote",
    open() {
      opened++;
      return Promise.resolve(createLocalStore({ dir: dirOf("far") }));
    },
  };
  const store = createStoreLevels(local, remote, { readOnly: true });
  await local.put(testKey("c"), new Uint8Array([1]));
  await store.get(testKey("c"));
  await store.put(testKey("d"), new Uint8Array([1]));
  assert.equal(opened, 0);
  assert.equal(await store.get(testKey("e")), undefined);
  assert.equal(opened, 1);
  await store.close();
});

Deno.test("tiered: processes of one build share the outage record", async () => {
  const redis = await startRedis();
  await redis.stop();
  const outageFile = join(dirOf("state"), "outage.json");
  await Deno.mkdir(join(outageFile, ".."), { recursive: true });
  const warnings: string[] = [];
  const open = () =>
    createStoreLevels(createLocalStore({ dir: dirOf("near") }), {
      kind: "redis",
      location: redis.url,
      open: () => Promise.resolve(createRedisStore({ url: redis.url })),
    }, { warn: (message) => warnings.push(message), outageFile });
  const first = open();
  await first.get(testKey("a"));
  const second = open();
  assert.equal(await second.get(testKey("a")), undefined);
  assert.equal(second.remoteSkipped, true);
  assert.equal(warnings.length, 1);
  await first.close();
  await second.close();
});

Deno.test("tiered: read-only writes nothing to the remote", async () => {
  await using redis = await startRedis();
  const remote = createRedisStore({ url: redis.url });
  await remote.put(testKey("a"), new Uint8Array([1]));
  // A last use long ago (the store's LRU score, in ms): a read that recorded one would move it.
  const setOldUse = await new Deno.Command("redis-cli", {
    args: ["-p", String(redis.port), "ZADD", "cargo-warmup:lru", "1000", testKey("a")],
  }).output();
  assert.equal(setOldUse.code, 0, new TextDecoder().decode(setOldUse.stderr));
  const [before] = await remote.list();
  assert.equal(before?.lastUsed, 1000);
  const { config } = await loadConfig({
    cwd: root,
    env: {
      CARGO_HOME: dirOf("home"),
      CARGO_WARMUP_DIR: dirOf("near"),
      CARGO_WARMUP_BACKEND: "redis",
      CARGO_WARMUP_REDIS_URL: redis.url,
      CARGO_WARMUP_READ_ONLY: "true",
    },
  });
  const store = openStore(config);
  assert.equal(store.readOnly, true);
  assert.deepEqual(await store.get(testKey("a")), new Uint8Array([1]));
  await store.put(testKey("b"), new Uint8Array([2]));
  await store.delete(testKey("a"));
  await store.close();
  const after = await remote.list();
  assert.deepEqual(after, [before]);
  await remote.close();
});

Deno.test("openStore: the local backend is a plain local store", async () => {
  const { config } = await loadConfig({ cwd: root, env: { CARGO_HOME: dirOf("home") } });
  const store: Store = await openStore(config);
  assert.equal(store.kind, "local");
  await store.close();
});

Deno.test("tiered: errors that are not outages still reach the caller", async () => {
  const store = createStoreLevels(
    createLocalStore({ dir: dirOf("near") }),
    createLocalStore({ dir: dirOf("far") }),
  );
  await assert.rejects(() => store.get("nope"), TypeError);
  await store.close();
});
