import assert from "node:assert/strict";
import { createRedisStore } from "../../backends/redis.ts";
import { waitUntil } from "../_wait.ts";
import { startRedis } from "./_servers.ts";
import { testKey, testOutages, testStore } from "./store_suite.ts";

// A timer, an op or a socket a test leaves behind fails it (see store_suite.ts).
Deno.test.sanitizer({ ops: true, resources: true });

// The shared suite against one server that outlives its cases (so a leaked socket fails one).
await testStore("redis", async () => {
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

Deno.test("redis: a database number and TTL are honoured", async () => {
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

Deno.test("redis: a key that expired leaves no entry in list", async () => {
  await using redis = await startRedis();
  const store = createRedisStore({ url: redis.url, ttlSeconds: 1 });
  const key = testKey("a");
  await store.put(key, new Uint8Array([1]));
  // A TTL of at most the second asked for, or already expired (-2) on a machine slow to ask;
  // never none (-1).
  const ttl = Number(await redisCli(redis, "PTTL", `cargo-warmup:${key}`));
  assert.ok(ttl === -2 || (ttl > 0 && ttl <= 1000), `PTTL ${ttl}`);
  await waitUntil(async () => await redisCli(redis, "EXISTS", `cargo-warmup:${key}`) === "0", {
    what: "the key to expire",
  });
  assert.notEqual(await redisCli(redis, "ZSCORE", "cargo-warmup:lru", key), "", "its LRU member");
  assert.deepEqual(await store.list(), []);
  assert.equal(await redisCli(redis, "ZCARD", "cargo-warmup:lru"), "0", "the LRU member is gone");
  await store.close();
});

Deno.test("redis: read-only use does not record last use", async () => {
  await using redis = await startRedis();
  const writer = createRedisStore({ url: redis.url });
  const reader = createRedisStore({ url: redis.url, recordUse: false });
  const key = testKey("a");
  await writer.put(key, new Uint8Array([1]));
  // A last use long ago (the LRU score, in ms): any recorded use moves it.
  await redisCli(redis, "ZADD", "cargo-warmup:lru", "1000", key);
  assert.deepEqual(await reader.get(key), new Uint8Array([1]));
  assert.equal((await writer.list())[0]?.lastUsed, 1000);
  await writer.get(key);
  assert.ok((await writer.list())[0]!.lastUsed > 1000, "a writer's read records its use");
  await writer.close();
  await reader.close();
});

Deno.test("redis: a finished process exits at once, even without close()", async () => {
  await using redis = await startRedis();
  const module = new URL("../../backends/redis.ts", import.meta.url).href;
  // An idle timeout of an hour: a connection or timer left holding the process would hold it
  // for that long, past the deadline below, which only bounds that hang.
  const script = `import { createRedisStore } from ${JSON.stringify(module)};
const store = createRedisStore({ url: ${JSON.stringify(redis.url)}, idleTimeoutMs: 3_600_000 });
console.log(await store.get("${"a".repeat(64)}"));`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    signal: AbortSignal.timeout(60_000),
  }).output();
  assert.equal(output.signal, null, "the process was still alive after a minute");
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.equal(new TextDecoder().decode(output.stdout), "undefined\n", "it asked the server");
});

/** Runs one command with `redis-cli` on `redis` and returns its reply, trimmed. */
async function redisCli(redis: { port: number }, ...args: string[]): Promise<string> {
  const output = await new Deno.Command("redis-cli", { args: ["-p", String(redis.port), ...args] })
    .output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout).trim();
}
