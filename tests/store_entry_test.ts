// Unit tests of the one store after a miss (src/cache/store_entry.ts): the entry collected is
// packed, stored and found again; nothing worth storing stores nothing; a failure is one warning,
// never a rejection; the entry it replaces, made from other inputs, stays as an older variant.

import assert from "node:assert/strict";
import { openBundle } from "../src/bundle/bundle.ts";
import { type NewEntry, storeEntry } from "../src/cache/store_entry.ts";
import { variantIdOf, variantKeyOf } from "../src/cache/variants.ts";
import { openTestCache, rowOfSample, type TestCache } from "./_call.ts";
import { tempDir } from "./_fixtures.ts";
import { SAMPLE_KEY as KEY, sampleBundle } from "./_sample_bundle.ts";

/** An entry of `KEY` made from GREETING=`greeting`. */
function entryOf(greeting: string, fields: Partial<NewEntry> = {}): NewEntry {
  return {
    key: KEY,
    label: "itoa 1.0.1",
    collect: () =>
      Promise.resolve(sampleBundle({ meta: { envDeps: [{ name: "GREETING", value: greeting }] } })),
    rowOf: rowOfSample,
    replacesStale: false,
    ...fields,
  };
}

/** The entry stored in `slot`, opened as a bundle of `KEY`. */
async function storedIn(test: TestCache, slot: string) {
  const bytes = await test.cache.get(slot, test.call.request);
  return bytes && await openBundle(bytes, KEY);
}

Deno.test("an entry is collected, packed and stored under its key", async () => {
  await using dir = await tempDir("cargo-warmup-store-entry-");
  await using test = await openTestCache(dir.path);
  await storeEntry(entryOf("hello"), test.cache, test.call.request);
  const stored = await storedIn(test, KEY);
  assert.deepEqual(
    stored?.meta,
    sampleBundle({ meta: { envDeps: [{ name: "GREETING", value: "hello" }] } }).meta,
  );
  assert.deepEqual([...stored?.files.get("rlib") ?? []], [1, 2, 3]);
  assert.ok(test.call.request.phases.ended.packed !== undefined, "its phases are timed");
  assert.equal(test.call.stderr(), "");
});

Deno.test("an entry not worth storing (collect gives none) stores nothing", async () => {
  await using dir = await tempDir("cargo-warmup-store-entry-");
  await using test = await openTestCache(dir.path);
  await storeEntry(
    entryOf("hello", { collect: () => Promise.resolve(undefined) }),
    test.cache,
    test.call.request,
  );
  assert.equal(await test.cache.get(KEY, test.call.request), undefined);
  assert.equal(test.call.stderr(), "");
});

Deno.test("a store that fails is one warning per build, never a rejection", async () => {
  await using dir = await tempDir("cargo-warmup-store-entry-");
  await using test = await openTestCache(dir.path);
  const failing = entryOf("hello", { collect: () => Promise.reject(new Error("disk on fire")) });
  await storeEntry(failing, test.cache, test.call.request);
  await storeEntry(failing, test.cache, test.call.request);
  assert.equal(
    test.call.stderr(),
    "warning: cargo-warmup: cannot store itoa 1.0.1 in the cache: disk on fire\n",
  );
  assert.equal(await test.cache.get(KEY, test.call.request), undefined);
});

Deno.test("the stale entry it replaces stays as an older variant, listed by the new one", async () => {
  await using dir = await tempDir("cargo-warmup-store-entry-");
  await using test = await openTestCache(dir.path);
  await storeEntry(entryOf("hello"), test.cache, test.call.request);
  const older = (await storedIn(test, KEY))!.meta;
  await storeEntry(entryOf("bonjour", { replacesStale: true }), test.cache, test.call.request);

  const newest = (await storedIn(test, KEY))!.meta;
  assert.deepEqual(newest.envDeps, [{ name: "GREETING", value: "bonjour" }]);
  assert.deepEqual(newest.variants, [
    { id: variantIdOf(older), sources: older.sources, envDeps: older.envDeps },
  ]);
  const kept = await storedIn(test, variantKeyOf(KEY, variantIdOf(older)));
  assert.deepEqual(kept?.meta, older, "the older entry, as it was, in its variant slot");

  // Not stale (the lookup found the slot empty or current): nothing is kept aside.
  await storeEntry(entryOf("hallo"), test.cache, test.call.request);
  assert.equal((await storedIn(test, KEY))!.meta.variants, undefined);
});
