import assert from "node:assert/strict";
import { createRedisStore } from "../../backends/redis.ts";
import { startRedis } from "./_servers.ts";
import { testKey, testOutages, testStore } from "./store_suite.ts";

// The shared suite against one server that its test starts and stops.
testStore("redis", async () => {
  const server = await startRedis({ password: "s3cret pass" });
  return {
    open: (namespace) => createRedisStore({ url: server.url, prefix: `test:${namespace}:` }),
    close: () => server.stop(),
  };
});

// Outages (a stopped server, before or during a session, and a refused password) are the shared
// outage suite's; the password must never show in what the store says.
const PASSWORD = "hunter2-right";
const WRONG_PASSWORD = "hunter2-wrong";
testOutages("redis", {
  async start() {
    const server = await startRedis({ password: PASSWORD });
    return {
      open: () => createRedisStore({ url: server.url }),
      openWithWrongCredentials: () =>
        createRedisStore({ url: server.url.replace(`:${PASSWORD}@`, `:${WRONG_PASSWORD}@`) }),
      stop: () => server.stop(),
    };
  },
  openOnSilentServer: ({ hostname, port }, timeoutMs) =>
    createRedisStore({ url: `redis://${hostname}:${port}/0`, idleTimeoutMs: timeoutMs }),
  refusedCredentials: /authentication failed/,
  secrets: [PASSWORD, WRONG_PASSWORD],
});

const options = { sanitizeOps: false, sanitizeResources: false };

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
