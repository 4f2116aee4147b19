import assert from "node:assert/strict";
import { createRedisStore } from "../../backends/redis.ts";
import { StoreUnavailableError } from "../../backends/store.ts";
import { type RedisServer, startRedis } from "./_servers.ts";
import { testKey, testOutages, testStore } from "./store_suite.ts";

let server: RedisServer | undefined;
testStore(
  "redis",
  (namespace) => createRedisStore({ url: server!.url, prefix: `test:${namespace}:` }),
  {
    before: async () => void (server = await startRedis({ password: "s3cret pass" })),
    after: () => server!.stop(),
  },
);

const options = { sanitizeOps: false, sanitizeResources: false };

testOutages("redis", {
  async stopped() {
    const redis = await startRedis();
    await redis.stop();
    return createRedisStore({ url: redis.url });
  },
  async wrongCredentials() {
    const redis = await startRedis({ password: "right" });
    return {
      store: createRedisStore({ url: redis.url.replace(":right@", ":wrong@") }),
      cleanup: () => redis.stop(),
    };
  },
  refusedCredentials: /authentication failed/,
});

Deno.test("redis: a server that stops mid-session rejects, it does not hang", options, async () => {
  const redis = await startRedis();
  const store = createRedisStore({ url: redis.url, idleTimeoutMs: 1000 });
  await store.put(testKey("a"), new Uint8Array([1]));
  await redis.stop();
  await assert.rejects(() => store.get(testKey("a")), StoreUnavailableError);
  await store.close();
});

Deno.test("redis: a database number and TTL are honoured", options, async () => {
  await using redis = await startRedis();
  const inDb3 = createRedisStore({ url: redis.url.replace(/\/0$/, "/3"), ttlSeconds: 100 });
  const inDb0 = createRedisStore({ url: redis.url });
  await inDb3.put(testKey("f"), new Uint8Array([1]));
  assert.equal(await inDb0.has(testKey("f")), false);
  assert.equal(await inDb3.has(testKey("f")), true);
  const ttl = await new Deno.Command("redis-cli", {
    args: ["-p", String(redis.port), "-n", "3", "TTL", `cargo-warmup:${testKey("f")}`],
  }).output();
  const seconds = Number(new TextDecoder().decode(ttl.stdout).trim());
  assert.ok(seconds > 90 && seconds <= 100, `TTL ${seconds}`);
  await inDb3.close();
  await inDb0.close();
});

Deno.test("redis: a key that expired leaves no entry in list", options, async () => {
  await using redis = await startRedis();
  const store = createRedisStore({ url: redis.url, ttlSeconds: 1 });
  await store.put(testKey("a"), new Uint8Array([1]));
  await new Promise((resolve) => setTimeout(resolve, 2100));
  assert.deepEqual(await store.list(), []);
  await store.close();
});

Deno.test("redis: read-only use does not record last use", options, async () => {
  await using redis = await startRedis();
  const writer = createRedisStore({ url: redis.url });
  const reader = createRedisStore({ url: redis.url, recordUse: false });
  await writer.put(testKey("a"), new Uint8Array([1]));
  const [before] = await writer.list();
  await new Promise((resolve) => setTimeout(resolve, 20));
  await reader.get(testKey("a"));
  const [after] = await writer.list();
  assert.equal(after!.lastUsed, before!.lastUsed);
  await writer.close();
  await reader.close();
});

Deno.test("redis: a finished process exits at once, even without close()", options, async () => {
  await using redis = await startRedis();
  const module = new URL("../../backends/redis.ts", import.meta.url).href;
  const script = `import { createRedisStore } from ${JSON.stringify(module)};
const store = createRedisStore({ url: ${JSON.stringify(redis.url)} });
console.log(await store.get("${"a".repeat(64)}"));`;
  const started = performance.now();
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "null",
  }).output();
  assert.equal(code, 0);
  assert.ok(performance.now() - started < 3000, "the idle timeout kept the process alive");
});
