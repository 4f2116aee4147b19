// Unit tests of the index behind its guard (src/cache/guarded_index.ts): a fault costs the cache
// and is warned once per build, a damaged index is set aside and replaced, an index replaced on
// disk is let go, and a closed guard touches nothing.

import assert from "node:assert/strict";
import { join } from "node:path";
import { guardedIndex } from "../src/cache/guarded_index.ts";
import { testCall } from "./_call.ts";
import { tempDir } from "./_fixtures.ts";

/** The files of a cache dir's index and what was set aside beside it. */
const indexFiles = (dir: string) =>
  [...Deno.readDirSync(dir)].map((entry) => entry.name).filter((name) => name.startsWith("index"));
const locked = () => {
  throw new Error("database is locked");
};

Deno.test("a locked index costs the cache: warned once per build, then left alone", async () => {
  await using dir = await tempDir("cargo-warmup-guarded-");
  const cacheDir = join(dir.path, "cache");
  const call = testCall(join(dir.path, "run"));
  const index = guardedIndex(cacheDir, call.request);
  assert.equal(index.use(call.request, () => "read"), "read");
  assert.equal(index.use(call.request, locked), undefined, "a fault is no throw");
  assert.equal(index.use(call.request, locked), undefined);
  const warnings = call.stderr().split("\n").filter((line) => line !== "");
  assert.deepEqual(warnings, [
    `warning: cargo-warmup: cache index in ${cacheDir} is locked or broken, building without it: ` +
    "database is locked",
  ]);
  // Given up for a while: the next uses do not run, and do not wait on the index.
  let ran = false;
  assert.equal(index.use(call.request, () => ran = true), undefined);
  assert.equal(ran, false);
  index.close();

  // The build's next calls do not try it either; another build does.
  const sameBuild = guardedIndex(cacheDir, testCall(join(dir.path, "run")).request);
  assert.equal(sameBuild.use(call.request, () => "read"), undefined);
  sameBuild.close();
  const other = testCall(join(dir.path, "run"), { buildId: Deno.ppid });
  const otherBuild = guardedIndex(cacheDir, other.request);
  assert.equal(otherBuild.use(other.request, () => "read"), "read");
  otherBuild.close();
});

Deno.test("a fault without a call to tell is told at the next lookup; a quiet one never", async () => {
  await using dir = await tempDir("cargo-warmup-guarded-");
  const call = testCall(join(dir.path, "run"));
  const quiet = guardedIndex(join(dir.path, "quiet"), call.request);
  assert.equal(quiet.use(undefined, locked, true), undefined);
  quiet.warnIfUnavailable(call.request);
  assert.equal(call.stderr(), "");
  quiet.close();

  const index = guardedIndex(join(dir.path, "cache"), call.request);
  assert.equal(index.use(undefined, locked), undefined);
  assert.equal(call.stderr(), "");
  index.warnIfUnavailable(call.request);
  assert.match(call.stderr(), /cache index in .* unavailable, building without it: .*locked/);
  index.close();
});

Deno.test("a damaged index is set aside, said once, and a new one serves", async () => {
  await using dir = await tempDir("cargo-warmup-guarded-");
  const cacheDir = join(dir.path, "cache");
  const call = testCall(join(dir.path, "run"));
  const index = guardedIndex(cacheDir, call.request);
  assert.equal(index.use(call.request, () => "read"), "read");
  const damaged = () => {
    throw new Error("database disk image is malformed");
  };
  assert.equal(index.use(call.request, damaged), undefined);
  assert.ok(indexFiles(cacheDir).some((name) => name.startsWith("index.db.broken-")));
  index.warnIfUnavailable(call.request);
  index.warnIfUnavailable(call.request);
  const said = call.stderr().match(/is damaged \(.*malformed\); set aside as .*broken-.*/g);
  assert.equal(said?.length, 1, call.stderr());
  // Not given up: the next use opens a new index at once.
  assert.equal(index.use(call.request, () => "new"), "new");
  assert.ok(indexFiles(cacheDir).includes("index.db"));
  index.close();
});

Deno.test("garbage where the index was is set aside at open and said at the lookup", async () => {
  await using dir = await tempDir("cargo-warmup-guarded-");
  const cacheDir = join(dir.path, "cache");
  await Deno.mkdir(cacheDir);
  await Deno.writeTextFile(join(cacheDir, "index.db"), "no database, only garbage\n".repeat(200));
  const call = testCall(join(dir.path, "run"));
  const index = guardedIndex(cacheDir, call.request);
  index.warnIfUnavailable(call.request);
  assert.match(call.stderr(), /cache index .*index\.db is unreadable .*set aside as .*broken-/);
  assert.equal(index.use(call.request, () => "read"), "read");
  index.close();
});

Deno.test("an index replaced on disk is let go, and the new file is opened", async () => {
  await using dir = await tempDir("cargo-warmup-guarded-");
  const cacheDir = join(dir.path, "cache");
  const call = testCall(join(dir.path, "run"));
  const index = guardedIndex(cacheDir, call.request);
  assert.equal(index.stillOnDisk(), true, "none open yet");
  index.use(call.request, () => {});
  assert.equal(index.stillOnDisk(), true);
  // The cache dir removed and made again under a long-lived cache (`rm -rf`, a restore).
  await Deno.remove(cacheDir, { recursive: true });
  await Deno.mkdir(cacheDir);
  assert.equal(index.stillOnDisk(), false, "holds a deleted file");
  index.reopenIfReplaced();
  assert.equal(index.use(call.request, () => "read"), "read");
  assert.ok(indexFiles(cacheDir).includes("index.db"), "a new index in the new directory");
  assert.equal(index.stillOnDisk(), true);
  index.close();
});

Deno.test("a closed guard runs nothing and opens nothing", async () => {
  await using dir = await tempDir("cargo-warmup-guarded-");
  const cacheDir = join(dir.path, "cache");
  const call = testCall(join(dir.path, "run"));
  const index = guardedIndex(cacheDir, call.request);
  index.close();
  let ran = false;
  assert.equal(index.use(call.request, () => ran = true), undefined);
  assert.equal(ran, false);
  assert.deepEqual(indexFiles(dir.path).length, 0);
});
