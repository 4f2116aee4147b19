// Unit tests of the dispatcher's session with its caches (src/cache/session.ts): one cache per
// configuration, a broken configuration or a disabled cache told apart, a cache directory removed
// under a long-lived session opened anew, and idle caches closed.

import assert from "node:assert/strict";
import { join } from "node:path";
import { CacheSession, type ConfiguredCache } from "../src/cache/session.ts";
import { testCall } from "./_call.ts";
import { tempDir } from "./_fixtures.ts";
import { waitUntil } from "./_wait.ts";

/** A call of build `buildId` whose cache is `cacheDir`, in the test's `dir`. */
function callFor(
  dir: string,
  cacheDir: string,
  env: Record<string, string> = {},
  buildId?: number,
) {
  return testCall(join(dir, "run"), {
    ...(buildId === undefined ? {} : { buildId }),
    env: { CARGO_HOME: join(dir, "cargo-home"), CARGO_WARMUP_DIR: cacheDir, ...env },
  });
}

function assertConfigured(got: unknown): asserts got is ConfiguredCache {
  assert.ok(typeof got === "object" && got !== null && !("reason" in got), JSON.stringify(got));
}

Deno.test("calls of one configuration share one cache; another directory is another", async () => {
  await using dir = await tempDir("cargo-warmup-session-");
  const session = new CacheSession();
  try {
    const [a, b, other] = [
      callFor(dir.path, join(dir.path, "cache")),
      callFor(dir.path, join(dir.path, "cache")),
      callFor(dir.path, join(dir.path, "other")),
    ];
    const first = await session.cacheFor(a.request);
    const second = await session.cacheFor(b.request);
    const third = await session.cacheFor(other.request);
    assertConfigured(first);
    assertConfigured(second);
    assertConfigured(third);
    assert.equal(first.cache, second.cache);
    assert.notEqual(first.cache, third.cache);
    assert.equal(first.cache.active, 2, "both calls hold it");
    session.release(a.request);
    session.release(a.request); // twice is once
    assert.equal(first.cache.active, 1);
    for (const call of [b, other]) session.release(call.request);
    assert.equal(a.stderr() + b.stderr() + other.stderr(), "");
  } finally {
    await session.close();
  }
});

Deno.test("a broken configuration costs the cache, warned once per build", async () => {
  await using dir = await tempDir("cargo-warmup-session-");
  const session = new CacheSession();
  try {
    const env = { CARGO_WARMUP_MAX_SIZE: "banana" };
    const calls = [1, 2].map(() => callFor(dir.path, join(dir.path, "cache"), env));
    for (const call of calls) {
      assert.deepEqual(await session.cacheFor(call.request), { reason: "cache disabled" });
    }
    const said = calls.map((call) => call.stderr()).join("");
    assert.equal(
      said.match(/^warning: cargo-warmup: .*banana.*; building without the cache$/gm)?.length,
      1,
      said,
    );
    assert.deepEqual(session.openCaches(), [], "no cache opened for it");
  } finally {
    await session.close();
  }
});

Deno.test("CARGO_WARMUP_DISABLE: the call goes without the cache, which still counts it", async () => {
  await using dir = await tempDir("cargo-warmup-session-");
  const session = new CacheSession();
  try {
    for (const value of ["1", "true"]) {
      const call = callFor(dir.path, join(dir.path, "cache"), { CARGO_WARMUP_DISABLE: value });
      const got = await session.cacheFor(call.request);
      assert.ok("reason" in got && got.reason === "cache disabled", value);
      assert.ok(got.cache !== undefined, "open, to count the call");
      session.release(call.request);
    }
    const on = callFor(dir.path, join(dir.path, "cache"), { CARGO_WARMUP_DISABLE: "0" });
    assertConfigured(await session.cacheFor(on.request));
    session.release(on.request);
  } finally {
    await session.close();
  }
});

Deno.test("a cache directory removed under a long-lived session is opened anew by the next build", async () => {
  await using dir = await tempDir("cargo-warmup-session-");
  const session = new CacheSession({ longLived: true });
  try {
    const cacheDir = join(dir.path, "cache");
    const before = callFor(dir.path, cacheDir, {}, Deno.pid);
    const old = await session.cacheFor(before.request);
    assertConfigured(old);
    session.release(before.request);
    await Deno.remove(cacheDir, { recursive: true });

    const next = callFor(dir.path, cacheDir, {}, Deno.ppid);
    const renewed = await session.cacheFor(next.request);
    assertConfigured(renewed);
    assert.notEqual(renewed.cache, old.cache, "a new cache for the new directory");
    assert.equal(old.cache.closed, true, "the old one closed, no call holding it");
    assert.deepEqual(session.openCaches().map((open) => open.dir), [cacheDir]);
    session.release(next.request);
  } finally {
    await session.close();
  }
});

Deno.test("sweep closes idle caches, and beyond four the least recently used", async () => {
  await using dir = await tempDir("cargo-warmup-session-");
  const session = new CacheSession({ longLived: true });
  try {
    const dirs = [0, 1, 2, 3, 4, 5].map((n) => join(dir.path, `cache-${n}`));
    for (const cacheDir of dirs) {
      const call = callFor(dir.path, cacheDir);
      assertConfigured(await session.cacheFor(call.request));
      session.release(call.request);
      // Each used at its own time: the next one a clock tick later.
      const usedAt = Date.now();
      await waitUntil(() => Date.now() > usedAt, { everyMs: 1 });
    }
    // One still in use is never closed, however many are open.
    const busy = callFor(dir.path, dirs[0]!);
    assertConfigured(await session.cacheFor(busy.request));
    await session.sweep();
    const open = session.openCaches().map((cache) => cache.dir).sort();
    assert.deepEqual(open, [dirs[0], dirs[3], dirs[4], dirs[5]].sort());
    // Ten minutes on, every quiet one is closed.
    await session.sweep(Date.now() + 11 * 60 * 1000);
    assert.deepEqual(session.openCaches().map((cache) => cache.dir), [dirs[0]]);
    session.release(busy.request);
  } finally {
    await session.close();
  }
});
