/**
 * The one test suite every store passes: local disk, Redis and S3 run the same cases; and the one
 * outage suite every remote passes.
 * @module
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createLocalStore } from "../../backends/local.ts";
import { type Store, StoreUnavailableError } from "../../backends/store.ts";
import { createTieredStore } from "../../backends/tiered.ts";

/** Opens a store on `namespace`; the same namespace reaches the same bundles. */
export type StoreFactory = (namespace: string) => Promise<Store> | Store;

/** Lifecycle hooks around the suite, for starting and stopping a server. */
export interface StoreSuiteHooks {
  before?: () => Promise<void>;
  after?: () => Promise<void>;
}

/** A cache key made of `c`, or a random one. */
export function testKey(c?: string): string {
  return c ? c.repeat(64) : randomBytes(32).toString("hex");
}

/**
 * Registers one `Deno.test` named `store: <name>` with a step per case.
 *
 * @example
 * ```ts ignore
 * testStore("local", (namespace) => createLocalStore({ dir: join(root, namespace) }));
 * ```
 */
export function testStore(name: string, factory: StoreFactory, hooks: StoreSuiteHooks = {}): void {
  Deno.test({
    name: `store: ${name}`,
    // Stores arm unref'd timeout signals that may outlive a case.
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      await hooks.before?.();
      try {
        for (const [caseName, run] of Object.entries(CASES)) {
          await t.step(caseName, async () => {
            const namespace = `${caseName.replace(/\W+/g, "-")}-${crypto.randomUUID().slice(0, 8)}`;
            const store = await factory(namespace);
            try {
              await run(store, () => factory(namespace));
            } finally {
              await store.close();
            }
          });
        }
      } finally {
        await hooks.after?.();
      }
    },
  });
}

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
    const before = Date.now() - 2000;
    const sizes = new Map([[testKey("a"), 10], [testKey("b"), 2000], [testKey("c"), 1]]);
    for (const [key, size] of sizes) await store.put(key, new Uint8Array(size));
    const listed = await store.list();
    assert.deepEqual(
      listed.map((entry) => [entry.key, entry.size]).sort(),
      [...sizes].sort(),
    );
    for (const entry of listed) {
      assert.ok(
        entry.lastUsed >= before && entry.lastUsed <= Date.now() + 2000,
        `lastUsed ${entry.lastUsed}`,
      );
    }
  },

  async "a read moves a bundle's last use forward"(store, reopen) {
    const older = testKey("d");
    const newer = testKey("e");
    await store.put(older, new Uint8Array([1]));
    await store.put(newer, new Uint8Array([2]));
    // S3 keeps LastModified to the second.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await store.get(older);
    await store.close(); // waits for last-use records written in the background
    const again = await reopen();
    const listed = await again.list().finally(() => again.close());
    const lastUsed = (key: string) => listed.find((entry) => entry.key === key)!.lastUsed;
    assert.ok(lastUsed(older) > lastUsed(newer), `${lastUsed(older)} <= ${lastUsed(newer)}`);
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

  async "an invalid key is refused"(store) {
    await assert.rejects(() => store.get("../etc/passwd"), TypeError);
    await assert.rejects(() => store.put("ABC", new Uint8Array(1)), TypeError);
  },
};

/** What {@linkcode testOutages} needs from a driver: its stores in trouble. */
export interface OutageSetup {
  /** A store whose server was stopped. */
  stopped(): Promise<Store>;
  /** A store on a running server with wrong credentials; `cleanup` stops that server. */
  wrongCredentials(): Promise<{ store: Store; cleanup(): Promise<void> }>;
  /** How the driver's message names refused credentials. */
  refusedCredentials: RegExp;
}

/**
 * The one outage suite every remote driver passes: a dead server and refused credentials are a
 * fast {@linkcode StoreUnavailableError}, never a hang or a miss, and behind local disk they cost
 * exactly one warning, worded once, and the build's bundles still land on local disk.
 *
 * @example
 * ```ts ignore
 * testOutages("redis", { stopped, wrongCredentials, refusedCredentials: /authentication failed/ });
 * ```
 */
export function testOutages(name: string, setup: OutageSetup): void {
  const options = { sanitizeOps: false, sanitizeResources: false };

  Deno.test(
    `outage: ${name}: a stopped server fails fast with StoreUnavailableError`,
    options,
    async () => {
      const store = await setup.stopped();
      try {
        const started = performance.now();
        await assert.rejects(() => store.get(testKey()), StoreUnavailableError);
        await assert.rejects(() => store.put(testKey(), new Uint8Array(1)), StoreUnavailableError);
        await assert.rejects(() => store.list(), StoreUnavailableError);
        assert.ok(performance.now() - started < 3000, "took longer than three seconds");
        assert.equal((await store.health()).ok, false);
      } finally {
        await store.close();
      }
    },
  );

  Deno.test(
    `outage: ${name}: refused credentials are unavailable, and say why`,
    options,
    async () => {
      const { store, cleanup } = await setup.wrongCredentials();
      try {
        const refusal = await store.get(testKey()).then(
          () => assert.fail("a read with wrong credentials succeeded"),
          (error: unknown) => error,
        );
        assert.ok(refusal instanceof StoreUnavailableError, String(refusal));
        assert.match(refusal.message, /^Cannot reach cache store "/);
        assert.match(refusal.message, setup.refusedCredentials);
        assert.equal((await store.health()).ok, false);
      } finally {
        await store.close();
        await cleanup();
      }
    },
  );

  Deno.test(
    `outage: ${name}: behind local disk, one warning and the bundles stay local`,
    options,
    async () => {
      const localDir = await Deno.makeTempDir({ prefix: "warmup-outage-" });
      const remote = await setup.stopped();
      const warnings: string[] = [];
      const store = createTieredStore(createLocalStore({ dir: localDir }), remote, {
        warn: (message) => warnings.push(message),
      });
      try {
        assert.equal(await store.get(testKey("a")), undefined, "an outage reads as a miss");
        await store.put(testKey("b"), new Uint8Array([1, 2, 3]));
        await store.get(testKey("c"));
        assert.equal(warnings.length, 1, warnings.join("\n"));
        const [warning] = warnings as [string];
        assert.ok(warning.startsWith(`Cannot reach cache store "${remote.location}": `), warning);
        assert.ok(
          warning.endsWith(`; continuing without the ${remote.kind} cache for this build`),
          warning,
        );
        assert.doesNotMatch(warning, /warning:/i, "the caller adds the one prefix");
        assert.deepEqual(await store.local.get(testKey("b")), new Uint8Array([1, 2, 3]));
        assert.equal(store.remoteSkipped, true);
      } finally {
        await store.close();
        await Deno.remove(localDir, { recursive: true });
      }
    },
  );
}
