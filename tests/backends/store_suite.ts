/**
 * The one test suite every store passes: local disk, Redis and S3 run the same cases; and the one
 * outage suite every remote passes.
 * @module
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { createLocalStore } from "../../backends/local.ts";
import { type Store, StoreUnavailableError } from "../../backends/store.ts";
import { createStoreLevels, type StoreLevels } from "../../backends/levels.ts";
import { waitUntil } from "../_wait.ts";

/** Opens a store on `namespace`; the same namespace reaches the same bundles. */
export type StoreFactory = (namespace: string) => Promise<Store> | Store;

/** What the suite runs against: stores on namespaces, and whatever they need (a server). */
export interface StoreFixture {
  open: StoreFactory;
  /** Releases what the fixture started or made (stops its server, removes its directory). */
  close?(): Promise<void>;
}

/** A cache key made of `c`, or a random one. */
export function testKey(c?: string): string {
  return c ? c.repeat(64) : randomBytes(32).toString("hex");
}

/**
 * Registers one `Deno.test` per case, named `store: <name>: <case>`, with the op and resource
 * sanitizers on, and a last one that closes the fixture. The fixture (a server, a directory) is set
 * up once, before the cases, so it outlives each of them: a connection, a timer or a response body
 * that a store's `close()` leaves behind fails its case, rather than being closed for it by a
 * server that stops. Await it at the top of the test module. Should the closing test be filtered
 * out, the module's unload stops the server (its kill is the synchronous first step of `close`).
 *
 * @example
 * ```ts ignore
 * await testStore("redis", async () => {
 *   const server = await startRedis();
 *   return { open: (namespace) => createRedisStore({ url: server.url, prefix: `${namespace}:` }), close: server.stop };
 * });
 * ```
 */
export async function testStore(
  name: string,
  setUp: () => Promise<StoreFixture> | StoreFixture,
): Promise<void> {
  const fixture = await setUp();
  let closing: Promise<void> | undefined;
  const close = () => closing ??= fixture.close?.() ?? Promise.resolve();
  globalThis.addEventListener("unload", () => void close());
  for (const [caseName, run] of Object.entries(CASES)) {
    Deno.test({
      name: `store: ${name}: ${caseName}`,
      ...SANITIZED,
      async fn() {
        const namespace = `${caseName.replace(/\W+/g, "-")}-${crypto.randomUUID().slice(0, 8)}`;
        const store = await fixture.open(namespace);
        try {
          await run(store, () => fixture.open(namespace));
        } finally {
          await store.close();
        }
      },
    });
  }
  // Unsanitized: it ends what was started before any test (the server, its pipes).
  Deno.test({
    name: `store: ${name}: the fixture closes`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: close,
  });
}

/** Every backend test runs with both sanitizers: a leaked timer, op or socket is a failure. */
export const SANITIZED = { sanitizeOps: true, sanitizeResources: true } as const;

type Case = (store: Store, reopen: () => Promise<Store> | Store) => Promise<void>;

const CASES: Record<string, Case> = {
  async "a missing key is a miss"(store) {
    const key = testKey();
    assert.equal(await store.get(key), undefined);
    assert.equal(await store.has(key), false);
    await store.delete(key);
  },

  async "put then get returns the same bytes"(store) {
    const key = testKey();
    const bundle = new Uint8Array([1, 2, 3, 4, 5]);
    await store.put(key, bundle);
    assert.deepEqual(await store.get(key), bundle);
    assert.equal(await store.has(key), true);
  },

  async "put replaces what was there"(store) {
    const key = testKey();
    await store.put(key, new Uint8Array([1]));
    await store.put(key, new Uint8Array([2, 2]));
    assert.deepEqual(await store.get(key), new Uint8Array([2, 2]));
    assert.equal((await store.list()).filter((entry) => entry.key === key).length, 1);
  },

  async "delete removes the bundle"(store) {
    const key = testKey();
    await store.put(key, new Uint8Array([9]));
    await store.delete(key);
    assert.equal(await store.get(key), undefined);
    assert.equal(await store.has(key), false);
    assert.deepEqual(await store.list(), []);
  },

  async "list gives each bundle's size and last use"(store) {
    // The time of the puts, to the second (S3 keeps LastModified to the second).
    const before = Math.floor(Date.now() / 1000) * 1000;
    const sizes = new Map([[testKey("a"), 10], [testKey("b"), 2000], [testKey("c"), 1]]);
    for (const [key, size] of sizes) await store.put(key, new Uint8Array(size));
    const listed = await store.list();
    const after = Math.ceil(Date.now() / 1000) * 1000;
    assert.deepEqual(
      listed.map((entry) => [entry.key, entry.size]).sort(),
      [...sizes].sort(),
    );
    for (const entry of listed) {
      assert.ok(
        entry.lastUsed >= before && entry.lastUsed <= after,
        `lastUsed ${entry.lastUsed} is not between ${before} and ${after}`,
      );
    }
  },

  async "a read moves a bundle's last use forward"(store, reopen) {
    const older = testKey("d");
    const newer = testKey("e");
    await store.put(older, new Uint8Array([1]));
    await store.put(newer, new Uint8Array([2]));
    // Read the older one until what the store records says it was used after the newer one was
    // written: at once where last use is kept to the millisecond, within a second on S3 (to the
    // second). A store that records no read, or a stale time, never gets there.
    let reading: Store | undefined = store;
    await waitUntil(async () => {
      reading ??= await reopen();
      assert.deepEqual(await reading.get(older), new Uint8Array([1]));
      await reading.close(); // waits for last-use records written in the background
      reading = undefined;
      const again = await reopen();
      const listed = await again.list().finally(() => again.close());
      const lastUsed = (key: string) => listed.find((entry) => entry.key === key)!.lastUsed;
      return lastUsed(older) > lastUsed(newer);
    }, { what: "a last use after the newer put", everyMs: 50, timeoutMs: HANG_BOUND_MS });
  },

  async "health reports a working store"(store) {
    const health = await store.health();
    assert.equal(health.ok, true, health.detail);
  },

  async "a 5 MB bundle comes back intact"(store) {
    const key = testKey();
    const bundle = new Uint8Array(randomBytes(5 * 1024 * 1024));
    await store.put(key, bundle);
    const read = await store.get(key);
    assert.equal(read?.length, bundle.length);
    assert.ok(Buffer.compare(read!, bundle) === 0, "5 MB bundle differs");
  },

  async "bytes of every value survive, and so does an empty bundle"(store) {
    const every = new Uint8Array(1024).map((_, i) => i % 256);
    every.set([13, 10, 36, 42, 0, 13, 10], 100); // RESP framing bytes inside the value
    const key = testKey();
    await store.put(key, every);
    assert.deepEqual(await store.get(key), every);
    const empty = testKey();
    await store.put(empty, new Uint8Array(0));
    assert.deepEqual(await store.get(empty), new Uint8Array(0));
  },

  async "concurrent puts all land"(store) {
    const keys = Array.from({ length: 16 }, () => testKey());
    await Promise.all(keys.map((key, i) => store.put(key, new Uint8Array(1000 + i).fill(i))));
    const same = testKey();
    const versions = [1, 2, 3, 4].map((n) => new Uint8Array(50_000).fill(n));
    await Promise.all(versions.map((bundle) => store.put(same, bundle)));
    for (const [i, key] of keys.entries()) {
      assert.deepEqual(await store.get(key), new Uint8Array(1000 + i).fill(i));
    }
    const winner = await store.get(same);
    assert.ok(versions.some((bundle) => Buffer.compare(bundle, winner!) === 0), "torn write");
    assert.equal((await store.list()).length, keys.length + 1);
  },

  async "a reserved name is kept apart from the bundles"(store, reopen) {
    const bundleKey = testKey();
    const name = `manifest-${testKey()}`;
    await store.put(bundleKey, new Uint8Array([1]));
    await store.put(name, new Uint8Array([7, 7, 7]));
    assert.deepEqual(await store.get(name), new Uint8Array([7, 7, 7]));
    assert.equal(await store.has(name), true);
    // Read again, then listed by another client: a read records no use of a reserved name.
    await store.close();
    const again = await reopen();
    try {
      assert.deepEqual((await again.list()).map((entry) => entry.key), [bundleKey]);
      const reserved = await again.listReserved("manifest");
      assert.deepEqual(reserved.map((entry) => [entry.key, entry.size]), [[name, 3]]);
      assert.deepEqual(await again.listReserved("other"), []);
      await again.delete(name);
      assert.equal(await again.get(name), undefined);
      assert.deepEqual((await again.list()).map((entry) => entry.key), [bundleKey]);
    } finally {
      await again.close();
    }
  },

  async "an invalid key is refused"(store) {
    await assert.rejects(() => store.get("../etc/passwd"), TypeError);
    await assert.rejects(() => store.put("ABC", new Uint8Array(1)), TypeError);
    await assert.rejects(() => store.put(`Manifest-${testKey()}`, new Uint8Array(1)), TypeError);
    await assert.rejects(() => store.get(`manifest/${testKey()}`), TypeError);
  },
};

/** One running server of a remote driver, and stores on it, for {@linkcode testOutages}. */
export interface OutageServer {
  /** A store on this server with the credentials it accepts. */
  open(): Store;
  /** A store on this server with credentials it refuses. */
  openWithWrongCredentials(): Store;
  /** Stops the server (safe to call twice); stores opened on it stay usable, and fail. */
  stop(): Promise<void>;
}

/** A server that accepts connections and never answers, for {@linkcode testOutages}. */
export interface SilentServer {
  hostname: string;
  port: number;
}

/** What {@linkcode testOutages} needs from a driver. */
export interface OutageSetup {
  /** Starts a server of the driver. */
  start(): Promise<OutageServer>;
  /** How the driver's message names refused credentials. */
  refusedCredentials: RegExp;
  /** A store on `server` that gives up waiting for an answer after `timeoutMs`. */
  openOnSilentServer(server: SilentServer, timeoutMs: number): Store;
  /** The secrets in the stores' settings (passwords, secret keys) that no message may show. */
  secrets: string[];
}

/**
 * The one outage suite every remote driver passes: a stopped server (before or during a session),
 * a server that never answers and refused credentials are a {@linkcode StoreUnavailableError}
 * that names the store, within a bounded time, never a hang, a miss or a leaked secret; behind
 * local disk each costs exactly one warning, worded once, and the bundles still land locally.
 *
 * @example
 * ```ts ignore
 * testOutages("redis", { start, openOnSilentServer, refusedCredentials: /authentication/, secrets: [] });
 * ```
 */
export function testOutages(name: string, setup: OutageSetup): void {
  const options = SANITIZED;
  const operations = (store: Store): Record<string, () => Promise<unknown>> => ({
    get: () => store.get(testKey()),
    put: () => store.put(testKey(), new Uint8Array([1])),
    has: () => store.has(testKey()),
    delete: () => store.delete(testKey()),
    list: () => store.list(),
  });

  // A server that is gone before the first call: every operation fails, quickly, and says where.
  Deno.test(
    `outage: ${name}: a stopped server fails every operation fast with StoreUnavailableError`,
    options,
    async () => {
      const server = await setup.start();
      await server.stop();
      const store = server.open();
      try {
        // Refused at once: a refusal, not a timeout, ends each.
        for (const [operation, run] of Object.entries(operations(store))) {
          const error = await assertUnavailable(store, operation, run);
          assert.match(error.message, CONNECTION_REFUSED, operation);
        }
        const health = await store.health();
        assert.equal(health.ok, false);
        assert.notEqual(health.detail, "");
      } finally {
        await store.close();
      }
    },
  );

  // A connection that worked and then lost its server (a restart, a crash) fails the same way.
  Deno.test(
    `outage: ${name}: a server that stops mid-session fails fast, it does not hang`,
    options,
    async () => {
      const server = await setup.start();
      const store = server.open();
      try {
        const key = testKey();
        await store.put(key, new Uint8Array([7]));
        assert.deepEqual(await store.get(key), new Uint8Array([7]));
        await server.stop();
        // The lost connection is noticed and the one reconnect refused, not waited out.
        const lost = await assertUnavailable(store, "get", () => store.get(key));
        assert.match(lost.message, CONNECTION_REFUSED);
        const put = await assertUnavailable(
          store,
          "put",
          () => store.put(key, new Uint8Array([8])),
        );
        assert.match(put.message, CONNECTION_REFUSED);
      } finally {
        await store.close();
        await server.stop();
      }
    },
  );

  // A server that hangs (accepts, never answers) costs the store's timeout, not the build.
  Deno.test(
    `outage: ${name}: a server that never answers fails within the store's timeout`,
    options,
    async () => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const held: Deno.Conn[] = [];
      const accepting = (async () => {
        for await (const conn of listener) held.push(conn);
      })().catch(() => {});
      const { port } = listener.addr as Deno.NetAddr;
      const store = setup.openOnSilentServer({ hostname: "127.0.0.1", port }, 300);
      try {
        // The store's own 300 ms timeout ends the wait (not a default, not the hang bound).
        const error = await assertUnavailable(store, "get", () => store.get(testKey()));
        assert.match(error.message, /: no answer within 300 ms$/);
      } finally {
        await store.close();
        listener.close();
        await accepting;
        for (const conn of held) conn.close();
      }
    },
  );

  // Wrong credentials are an outage (not a miss, which would hide them), and the message says
  // the credentials were refused without repeating them.
  Deno.test(
    `outage: ${name}: refused credentials are unavailable, and say why`,
    options,
    async () => {
      const server = await setup.start();
      const store = server.openWithWrongCredentials();
      try {
        const refusal = await assertUnavailable(store, "get", () => store.get(testKey()));
        assert.match(refusal.message, setup.refusedCredentials);
        await assertUnavailable(store, "put", () => store.put(testKey(), new Uint8Array([1])));
        const health = await store.health();
        assert.equal(health.ok, false);
        for (const text of [refusal.message, store.location, health.detail]) {
          assertNoSecret(text, setup.secrets);
        }
      } finally {
        await store.close();
        await server.stop();
      }
    },
  );

  // Behind local disk (the tiered store every build uses), each kind of outage is one warning in
  // one wording, without a "warning:" of its own (the caller adds the one prefix), and the build
  // goes on with local disk: misses read as misses, puts land locally.
  Deno.test(
    `outage: ${name}: behind local disk, one warning worded once, and the bundles stay local`,
    options,
    async (t) => {
      const server = await setup.start();
      const localRoot = await Deno.makeTempDir({ prefix: "warmup-outage-" });
      let levels = 0;
      // A build's calls through local disk in front of `remote` (after `before`, if any) meet
      // exactly one outage warning.
      const buildMeetsOneWarning = async (
        remote: Store,
        before?: (store: StoreLevels, warnings: string[]) => Promise<void>,
      ) => {
        const warnings: string[] = [];
        const remoteCalls: string[] = [];
        const local = createLocalStore({ dir: join(localRoot, String(levels++)) });
        const store = createStoreLevels(local, recordingCalls(remote, remoteCalls), {
          warn: (message) => warnings.push(message),
        });
        try {
          await before?.(store, warnings);
          remoteCalls.length = 0;
          await aBuildsCalls(store);
          assert.deepEqual(remoteCalls, ["get"], "the first call found the outage, the rest skip");
          assertOneOutageWarning(warnings, remote, setup.secrets);
        } finally {
          await store.close();
        }
      };
      try {
        await t.step("refused credentials", async () => {
          await buildMeetsOneWarning(server.openWithWrongCredentials());
        });

        await t.step("a server that stops mid-build", async () => {
          const remote = server.open();
          await buildMeetsOneWarning(remote, async (store, warnings) => {
            const early = testKey();
            await store.put(early, new Uint8Array([5]));
            await store.flush();
            assert.equal(await remote.has(early), true, "the put reached the remote");
            assert.deepEqual(warnings, []);
            await server.stop();
          });
        });

        await t.step("a server stopped before the build", async () => {
          await server.stop();
          await buildMeetsOneWarning(server.open());
        });
      } finally {
        await server.stop();
        await Deno.remove(localRoot, { recursive: true });
      }
    },
  );
}

/** Generous: a store that waits this long on an outage hangs (the cases never pass by it). */
const HANG_BOUND_MS = 30_000;

/** How a stopped server is reported: refused, not timed out. */
const CONNECTION_REFUSED = /connection refused/i;

/** `work`, or a failure saying what hung when it has not settled within {@linkcode HANG_BOUND_MS}. */
async function unlessHung<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} hung for ${HANG_BOUND_MS} ms`)),
      HANG_BOUND_MS,
    );
  });
  try {
    return await Promise.race([work, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** `store`, recording in `calls` the name of each bundle operation made on it. */
function recordingCalls(store: Store, calls: string[]): Store {
  const operations = new Set(["get", "put", "has", "delete", "list"]);
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof property !== "string" || !operations.has(property)) return value;
      return (...args: unknown[]) => {
        calls.push(property);
        return (value as (...args: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** Runs `operation` on `store`, which must reject with a StoreUnavailableError naming it. */
async function assertUnavailable(
  store: Store,
  operation: string,
  run: () => Promise<unknown>,
): Promise<StoreUnavailableError> {
  const error = await unlessHung(run(), operation).then(
    () => assert.fail(`${operation} succeeded on a store in trouble`),
    (error: unknown) => error,
  );
  assert.ok(error instanceof StoreUnavailableError, `${operation}: ${error}`);
  const prefix = `Cannot reach cache store "${store.location}": `;
  assert.ok(error.message.startsWith(prefix), `${operation}: ${error.message}`);
  assert.ok(error.message.length > prefix.length, `${operation}: no detail in "${error.message}"`);
  return error;
}

/** A build's worth of calls on a tiered store whose remote is down: all served by local disk. */
async function aBuildsCalls(store: StoreLevels): Promise<void> {
  const stored = testKey();
  assert.equal(await store.get(testKey()), undefined, "an outage reads as a miss");
  await store.put(stored, new Uint8Array([1, 2, 3]));
  assert.equal(await store.get(testKey()), undefined);
  assert.equal(await store.has(testKey()), false);
  assert.ok((await store.list()).some((entry) => entry.key === stored));
  await unlessHung(store.flush(), "flush");
  assert.deepEqual(await store.local.get(stored), new Uint8Array([1, 2, 3]));
  assert.equal(store.remoteSkipped, true);
}

/** Exactly one warning, in the one wording, naming the remote and keeping its secrets. */
function assertOneOutageWarning(warnings: string[], remote: Store, secrets: string[]): void {
  assert.equal(warnings.length, 1, `expected one warning, got:\n${warnings.join("\n")}`);
  const [warning] = warnings as [string];
  const prefix = `Cannot reach cache store "${remote.location}": `;
  const suffix = `; continuing without the ${remote.kind} cache for this build`;
  assert.ok(warning.startsWith('Cannot reach cache store "'), warning);
  assert.ok(warning.startsWith(prefix), `"${warning}" does not start with "${prefix}"`);
  assert.ok(warning.endsWith(suffix), `"${warning}" does not end with "${suffix}"`);
  assert.ok(warning.length > prefix.length + suffix.length, `no detail in "${warning}"`);
  for (const message of warnings) {
    assert.ok(!message.includes("warning:"), `"${message}": the caller adds the one prefix`);
  }
  assertNoSecret(warning, secrets);
}

function assertNoSecret(text: string, secrets: string[]): void {
  for (const secret of secrets) assert.ok(!text.includes(secret), `"${text}" shows a secret`);
}
