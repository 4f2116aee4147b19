// Unit tests of the one lookup (src/cache/lookup.ts): nothing cached is a plain miss; the newest
// entry whose recorded inputs match is found; one made from other inputs is stale (and says why)
// unless an older variant matches; a corrupt or refused entry is dropped with one warning.

import assert from "node:assert/strict";
import { packBundle } from "../src/bundle/bundle.ts";
import { lookup, type LookupTarget } from "../src/cache/lookup.ts";
import { storeEntry } from "../src/cache/store_entry.ts";
import { pathRootsOf } from "../src/cache/path_roots.ts";
import { variantIdOf, variantKeyOf } from "../src/cache/variants.ts";
import { openTestCache, rowOfSample, type TestCache } from "./_call.ts";
import { tempDir } from "./_fixtures.ts";
import { SAMPLE_KEY as KEY, sampleBundle, sampleMeta } from "./_sample_bundle.ts";

/** The lookup of `KEY` by a call whose environment has GREETING=`greeting`. */
function targetWith(greeting: string, refuse?: LookupTarget["refuse"]): LookupTarget {
  const roots = pathRootsOf({
    outDir: "/p/target/debug/deps",
    outputStem: "itoa-1",
    extraFilename: "-1",
  });
  const memo = { lookup: () => undefined, remember: () => {} };
  return {
    key: KEY,
    label: "itoa 1.0.1",
    context: { roots, env: { GREETING: greeting }, memo },
    ...(refuse ? { refuse } : {}),
  };
}

/** Stores an entry of `KEY` made from GREETING=`greeting`, as a miss would. */
async function store(test: TestCache, greeting: string, replacesStale = false): Promise<void> {
  const bundle = sampleBundle({ meta: { envDeps: [{ name: "GREETING", value: greeting }] } });
  await storeEntry(
    {
      key: KEY,
      label: "itoa 1.0.1",
      collect: () => Promise.resolve(bundle),
      rowOf: rowOfSample,
      replacesStale,
    },
    test.cache,
    test.call.request,
  );
}

Deno.test("nothing cached: no entry and no reason", async () => {
  await using dir = await tempDir("cargo-warmup-lookup-");
  await using test = await openTestCache(dir.path);
  assert.deepEqual(await lookup(targetWith("hello"), test.cache, test.call.request), {});
});

Deno.test("the newest entry whose recorded inputs match is found in the key's slot", async () => {
  await using dir = await tempDir("cargo-warmup-lookup-");
  await using test = await openTestCache(dir.path);
  await store(test, "hello");
  const got = await lookup(targetWith("hello"), test.cache, test.call.request);
  assert.equal(got.found?.slot, KEY);
  assert.deepEqual(got.found?.content.meta.envDeps, [{ name: "GREETING", value: "hello" }]);
  assert.deepEqual([...got.found?.content.files.get("rlib") as Uint8Array], [1, 2, 3]);
  assert.ok(got.found?.bundle, "read from its verified bundle");
});

Deno.test("an entry from other inputs is stale and says why, unless an older variant matches", async () => {
  await using dir = await tempDir("cargo-warmup-lookup-");
  await using test = await openTestCache(dir.path);
  await store(test, "hello");
  await store(test, "bonjour", true);
  // The older variant the newest lists is found in its own slot.
  const older = await lookup(targetWith("hello"), test.cache, test.call.request);
  const helloId = variantIdOf(sampleMeta({ envDeps: [{ name: "GREETING", value: "hello" }] }));
  assert.equal(older.found?.slot, variantKeyOf(KEY, helloId));
  assert.deepEqual(older.found?.content.meta.envDeps, [{ name: "GREETING", value: "hello" }]);
  assert.equal(
    (await lookup(targetWith("bonjour"), test.cache, test.call.request)).found?.slot,
    KEY,
  );
  // Inputs no variant was made from: stale, so that the store keeps the newest as a variant.
  assert.deepEqual(await lookup(targetWith("hola"), test.cache, test.call.request), {
    reason: "environment changed: GREETING",
    stale: true,
  });
  assert.equal(test.call.stderr(), "");
});

Deno.test("a corrupt entry is dropped with one warning, and reads as a miss after", async () => {
  await using dir = await tempDir("cargo-warmup-lookup-");
  await using test = await openTestCache(dir.path);
  const bytes = await packBundle(sampleBundle());
  bytes[bytes.length - 1]! ^= 0xff; // a flipped bit in the payload
  await test.cache.put(KEY, bytes, rowOfSample(sampleMeta(), bytes.length), test.call.request);
  assert.deepEqual(await lookup(targetWith("hello"), test.cache, test.call.request), {
    reason: "corrupt entry",
  });
  assert.match(
    test.call.stderr(),
    /^warning: cargo-warmup: dropping a bad cache entry for itoa 1\.0\.1: /,
  );
  assert.equal(await test.cache.get(KEY, test.call.request), undefined, "dropped");
  assert.deepEqual(await lookup(targetWith("hello"), test.cache, test.call.request), {});
});

Deno.test("a verified entry the caller refuses is dropped like a corrupt one", async () => {
  await using dir = await tempDir("cargo-warmup-lookup-");
  await using test = await openTestCache(dir.path);
  await store(test, "hello");
  const refuse = () => "a library where a build-script run was expected";
  assert.deepEqual(await lookup(targetWith("hello", refuse), test.cache, test.call.request), {
    reason: "corrupt entry",
  });
  assert.match(test.call.stderr(), /dropping a bad cache entry for itoa 1\.0\.1: a library where/);
  assert.deepEqual(await lookup(targetWith("hello"), test.cache, test.call.request), {});
});
