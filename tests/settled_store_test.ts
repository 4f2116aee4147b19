// Unit tests of the stores held back until the builds are over (src/cache/settled_store.ts): one
// that does not wait runs at once; a held one is written later only if its compile's files are
// unchanged and its cache still open, one per crate and target dir; a lookup of its key from
// another target dir writes it first, one from its own drops it; and once every build is gone
// and quiet, it is written by itself.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type HeldStore, HeldStores } from "../src/cache/settled_store.ts";
import { openTestCache } from "./_call.ts";
import { tempDir } from "./_fixtures.ts";
import { waitUntil } from "./_wait.ts";

/** A held store of key `k` for the target dir `slot`, whose compile left `file`. */
const held = (file: string, slot = "target-a/libx.rlib", key = "k".repeat(64)): HeldStore => ({
  key,
  slot,
  files: [file],
  waits: true,
});

/** A store that records its runs in `ran` under `name`. */
const recording = (ran: string[], name: string) => () => Promise.resolve(void ran.push(name));

Deno.test("a store that does not wait (CI's compiles) runs at once", async () => {
  await using dir = await tempDir("cargo-warmup-held-");
  await using test = await openTestCache(dir.path);
  const stores = new HeldStores();
  const ran: string[] = [];
  const store = { ...held(join(dir.path, "none")), waits: false };
  await stores.storeWhenSettled(store, test.cache, test.call.request, recording(ran, "now"));
  assert.deepEqual(ran, ["now"]);
  stores.close();
});

Deno.test("a held store is written later, only if what its compile left is unchanged", async () => {
  await using dir = await tempDir("cargo-warmup-held-");
  await using test = await openTestCache(dir.path);
  const stores = new HeldStores();
  const ran: string[] = [];
  const [kept, changed] = [join(dir.path, "kept.rlib"), join(dir.path, "changed.rlib")];
  await Deno.writeTextFile(kept, "compiled");
  await Deno.writeTextFile(changed, "compiled");
  const request = test.call.request;
  await stores.storeWhenSettled(held(kept, "a"), test.cache, request, recording(ran, "kept"));
  await stores.storeWhenSettled(held(changed, "b"), test.cache, request, recording(ran, "changed"));
  // A compile whose output is not there (it failed, or is gone) is never held.
  await stores.storeWhenSettled(
    held(join(dir.path, "missing"), "c"),
    test.cache,
    request,
    recording(ran, "missing"),
  );
  assert.deepEqual(ran, [], "held, not written");
  await Deno.writeTextFile(changed, "compiled again, longer");
  await stores.storeAll();
  assert.deepEqual(ran, ["kept"]);
  stores.close();
});

Deno.test("a crate compiled again in the same target dir replaces its held store", async () => {
  await using dir = await tempDir("cargo-warmup-held-");
  await using test = await openTestCache(dir.path);
  const stores = new HeldStores();
  const ran: string[] = [];
  const file = join(dir.path, "libx.rlib");
  await Deno.writeTextFile(file, "v1");
  await stores.storeWhenSettled(
    held(file, "slot", "1".repeat(64)),
    test.cache,
    test.call.request,
    recording(ran, "first"),
  );
  await stores.storeWhenSettled(
    held(file, "slot", "2".repeat(64)),
    test.cache,
    test.call.request,
    recording(ran, "second"),
  );
  await stores.storeAll();
  assert.deepEqual(ran, ["second"]);
  stores.close();
});

Deno.test("a lookup of the key from another target dir writes it first; from its own drops it", async () => {
  await using dir = await tempDir("cargo-warmup-held-");
  await using test = await openTestCache(dir.path);
  const stores = new HeldStores();
  const ran: string[] = [];
  const file = join(dir.path, "libx.rlib");
  await Deno.writeTextFile(file, "compiled");
  const build = test.call.request.buildId;
  await stores.storeWhenSettled(
    held(file, "worktree-a"),
    test.cache,
    test.call.request,
    recording(ran, "a"),
  );
  // A second worktree at that commit looks the key up: the store lands before its lookup does.
  await stores.beforeLookup(held(file, "worktree-b"), build);
  assert.deepEqual(ran, ["a"]);

  await stores.storeWhenSettled(
    held(file, "worktree-a"),
    test.cache,
    test.call.request,
    recording(ran, "again"),
  );
  // Cargo compiles the same crate in the same target dir again: something it read changed, so
  // the held entry would never be served.
  await stores.beforeLookup(held(file, "worktree-a"), build);
  await stores.storeAll();
  assert.deepEqual(ran, ["a"]);
  stores.close();
});

Deno.test("a held store into a cache closed since is not written", async () => {
  await using dir = await tempDir("cargo-warmup-held-");
  const test = await openTestCache(dir.path);
  const stores = new HeldStores();
  const ran: string[] = [];
  const file = join(dir.path, "libx.rlib");
  await Deno.writeTextFile(file, "compiled");
  await stores.storeWhenSettled(held(file), test.cache, test.call.request, recording(ran, "x"));
  await test[Symbol.asyncDispose]();
  await stores.storeAll();
  assert.deepEqual(ran, []);
  stores.close();
});

Deno.test("once every build that called is gone and it is quiet, the store is written by itself", async () => {
  await using dir = await tempDir("cargo-warmup-held-");
  await using test = await openTestCache(dir.path);
  const stores = new HeldStores();
  const ran: string[] = [];
  const file = join(dir.path, "libx.rlib");
  await Deno.writeTextFile(file, "compiled");
  // The build was a process that has exited.
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  test.call.request.buildId = String(gone.pid);
  await stores.storeWhenSettled(held(file), test.cache, test.call.request, recording(ran, "quiet"));
  await waitUntil(() => ran.length > 0, { what: "the held store to be written" });
  assert.deepEqual(ran, ["quiet"]);
  stores.close();
});
