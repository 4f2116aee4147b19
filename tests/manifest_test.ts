// Team manifests as bytes (src/cache/manifest.ts) and the build shape that names them
// (src/cache/build_shape.ts): signed like bundles and refused when altered, unsigned where a
// signature is required, signed by a key the reader does not trust, or for another shape; merged
// so that the newest build's entries lead; named alike for the same build on two machines.

import assert from "node:assert/strict";
import { sealEnvelope } from "../src/bundle/envelope.ts";
import { generateKeyPair, readCacheKeys } from "../src/bundle/keys.ts";
import { type BuildShape, cargoShapeOf, shapingEnvOf } from "../src/cache/build_shape.ts";
import {
  type ManifestEntry,
  manifestNameOf,
  MAX_MANIFEST_ENTRIES,
  mergeEntries,
  openManifest,
  sealManifest,
} from "../src/cache/manifest.ts";
import { BundleError } from "../src/bundle/envelope.ts";
import { pruneManifests } from "../src/cache/manifest_gc.ts";
import { createLocalStore } from "../backends/local.ts";

const SHAPE: BuildShape = {
  lockfile: "0123456789abcdef0123456789abcdef",
  rustc: "f".repeat(64),
  cargo: ["build"],
  env: {},
};

const entry = (c: string, unit = c): ManifestEntry => ({
  key: c.repeat(64),
  slot: c.repeat(64),
  unit,
});

/** A writer's keys, and a reader's that trusts only that writer. */
async function writerAndReader() {
  const dir = await Deno.makeTempDir();
  const pair = await generateKeyPair();
  await Deno.writeTextFile(`${dir}/ci.key`, pair.privateKeyPem);
  const writer = await readCacheKeys({ signingKeyFile: `${dir}/ci.key`, trustedKeys: undefined });
  const reader = await readCacheKeys({ signingKeyFile: undefined, trustedKeys: [pair.publicKey] });
  await Deno.remove(dir, { recursive: true });
  return { writer, reader };
}

Deno.test("manifest: a trusted writer's manifest opens for a keyless reader, in order", async () => {
  const { writer, reader } = await writerAndReader();
  const entries = [entry("a"), { ...entry("b"), slot: "c".repeat(64), place: { dir: "x" } }];
  const sealed = await sealManifest({ shape: SHAPE, writtenAt: 5, entries }, writer);
  const opened = await openManifest(sealed, SHAPE, reader);
  assert.deepEqual(opened.entries, entries);
  assert.equal(opened.writtenAt, 5);
});

Deno.test("manifest: refused when altered, foreign, unsigned or for another shape", async () => {
  const { writer, reader } = await writerAndReader();
  const sealed = await sealManifest({ shape: SHAPE, writtenAt: 1, entries: [entry("a")] }, writer);

  const altered = sealed.slice();
  altered[altered.length - 1]! ^= 1;
  await assert.rejects(() => openManifest(altered, SHAPE, reader), /Content hash mismatch/);

  const other = await writerAndReader();
  const foreign = await sealManifest({ shape: SHAPE, writtenAt: 1, entries: [] }, other.writer);
  await assert.rejects(() => openManifest(foreign, SHAPE, reader), /not a trusted key/);

  const unsigned = await sealManifest({ shape: SHAPE, writtenAt: 1, entries: [entry("a")] });
  await assert.rejects(() => openManifest(unsigned, SHAPE, reader), /carries no signature/);
  // Without keys, a reader takes it (its entries are verified one by one when used).
  assert.equal((await openManifest(unsigned, SHAPE)).entries.length, 1);

  const otherShape = { ...SHAPE, cargo: ["build", "--release"] };
  await assert.rejects(() => openManifest(sealed, otherShape, reader), /signed for another key/);
  // Unsigned, the envelope binds no name: the payload's does.
  await assert.rejects(() => openManifest(unsigned, otherShape), /Not a manifest of format 1/);

  const garbage = await sealEnvelope(new TextEncoder().encode("{}"), manifestNameOf(SHAPE));
  await assert.rejects(() => openManifest(garbage, SHAPE), BundleError);
  const tooMany = await sealManifest({
    shape: SHAPE,
    writtenAt: 1,
    entries: Array.from({ length: MAX_MANIFEST_ENTRIES + 5 }, () => entry("d")),
  });
  assert.equal((await openManifest(tooMany, SHAPE)).entries.length, MAX_MANIFEST_ENTRIES);
});

Deno.test("manifest: the newest build's entries lead, an older build's fill in other units", () => {
  const older = [entry("a", "serde"), entry("b", "syn"), entry("c", "quote")];
  const newer = [entry("d", "syn"), entry("c", "quote")];
  assert.deepEqual(mergeEntries(newer, older).map((e) => e.key[0]), ["d", "c", "a"]);
  assert.deepEqual(mergeEntries(newer).map((e) => e.key[0]), ["d", "c"]);
  const many = Array.from({ length: MAX_MANIFEST_ENTRIES }, (_, i) => entry("e", `u${i}`));
  assert.equal(mergeEntries(many, older).length, MAX_MANIFEST_ENTRIES);
});

Deno.test("build shape: the flags that choose units, however cargo was asked", () => {
  const shape = (...argv: string[]) => cargoShapeOf(["cargo", ...argv]).join(" ");
  assert.equal(shape("build", "--locked", "-j", "2", "-v"), "build");
  assert.equal(shape("+stable", "b", "--color", "never", "--message-format=json"), "build");
  assert.equal(shape("build", "-r"), shape("build", "--release"));
  assert.equal(shape("build", "--features", "b,a"), shape("build", "-F", "a", "--features=b"));
  assert.equal(shape("build", "-p", "x", "--target", "t"), "build --package=x --target=t");
  assert.equal(shape("test", "--release", "some_filter", "--", "--nocapture"), "test --release");
  assert.equal(
    shape("build", "--target-dir", "/tmp/t", "--manifest-path", "a/Cargo.toml"),
    "build",
  );
  assert.notEqual(shape("build"), shape("check"));
  assert.notEqual(shape("build"), shape("build", "--profile", "dist"));
  assert.equal(cargoShapeOf([]).join(" "), "");
  assert.deepEqual(
    shapingEnvOf({ RUSTFLAGS: "-Cx", PATH: "/bin", CARGO_PROFILE_DEV_DEBUG: "0", HOME: "/h" }),
    { CARGO_PROFILE_DEV_DEBUG: "0", RUSTFLAGS: "-Cx" },
  );
});

Deno.test("manifest gc: those whose entries are mostly gone, or that cannot be read, go", async () => {
  const dir = await Deno.makeTempDir();
  const store = createLocalStore({ dir });
  const shapes = ["a", "b", "c", "d"].map((c) => ({ ...SHAPE, lockfile: c.repeat(32) }));
  const put = async (shape: BuildShape, entries: ManifestEntry[]) =>
    await store.put(manifestNameOf(shape), await sealManifest({ shape, writtenAt: 1, entries }));
  await put(shapes[0]!, [entry("1"), entry("2")]); // all present
  await put(shapes[1]!, [entry("1"), entry("3")]); // half present: kept
  await put(shapes[2]!, [entry("1"), entry("3"), entry("4")]); // a third present
  await store.put(manifestNameOf(shapes[3]!), new Uint8Array([1, 2, 3])); // not a manifest
  const present = new Set(["1", "2"].map((c) => c.repeat(64)));
  assert.deepEqual(await pruneManifests(store, present, { dryRun: true }), { kept: 2, removed: 2 });
  assert.equal((await store.listReserved("manifest")).length, 4);
  assert.deepEqual(await pruneManifests(store, present), { kept: 2, removed: 2 });
  const left = (await store.listReserved("manifest")).map((e) => e.key).sort();
  assert.deepEqual(left, [manifestNameOf(shapes[0]!), manifestNameOf(shapes[1]!)].sort());
  await Deno.remove(dir, { recursive: true });
});
