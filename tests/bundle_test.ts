// Tests for the bundle format: round trips, and refusing anything altered, truncated or hostile.
import assert from "node:assert/strict";
import { type Bundle, BundleError, openBundle, packBundle } from "../src/bundle/bundle.ts";
import { packTar, unpackTar } from "../src/bundle/_tar.ts";

const KEY = "ab".repeat(32);

function sampleBundle(key = KEY): Bundle {
  return {
    meta: {
      format: 1,
      key,
      crate: "itoa",
      version: "1.0.1",
      kind: "lib",
      outputs: [{ role: "rlib", digest: "00".repeat(32) }, {
        role: "rmeta",
        digest: "11".repeat(32),
      }],
      sources: [{ path: "@@WARMUP_PKG@@/src/lib.rs", digest: "22".repeat(32) }],
      envDeps: [{ name: "CARGO_PKG_NAME", value: "itoa" }],
      compileMs: 120,
      createdAt: "2026-11-22T00:00:00.000Z",
    },
    files: new Map([["rlib", new Uint8Array([1, 2, 3])], [
      "rmeta",
      new Uint8Array(70_000).fill(7),
    ]]),
    depInfo: "@@WARMUP_OUT@@/@@WARMUP_STEM@@.d: @@WARMUP_PKG@@/src/lib.rs\n",
    stdout: "",
    stderr: '{"$message_type":"artifact","artifact":"@@WARMUP_OUT@@/lib@@WARMUP_STEM@@.rmeta"}\n',
  };
}

Deno.test("a bundle survives packing and opening unchanged", async () => {
  const opened = await openBundle(await packBundle(sampleBundle()), KEY);
  assert.deepEqual(opened.meta, sampleBundle().meta);
  assert.deepEqual([...opened.files.get("rlib")!], [1, 2, 3]);
  assert.equal(opened.files.get("rmeta")?.length, 70_000);
  assert.equal(opened.depInfo, sampleBundle().depInfo);
  assert.equal(opened.stderr, sampleBundle().stderr);
});

Deno.test("a truncated bundle is refused", async () => {
  const bytes = await packBundle(sampleBundle());
  for (const length of [0, 10, 69, 70, bytes.length - 1]) {
    await assert.rejects(() => openBundle(bytes.subarray(0, length), KEY), BundleError);
  }
});

Deno.test("a bundle with a flipped payload byte fails its content hash", async () => {
  const bytes = await packBundle(sampleBundle());
  bytes[bytes.length - 5]! ^= 0xff;
  await assert.rejects(() => openBundle(bytes, KEY), /Content hash mismatch/);
});

Deno.test("a bundle stored under another key is refused", async () => {
  const bytes = await packBundle(sampleBundle("cd".repeat(32)));
  await assert.rejects(() => openBundle(bytes, KEY), /is for key/);
});

Deno.test("with a signing key only bundles signed with it for this key are accepted", async () => {
  const key = new TextEncoder().encode("team secret");
  const signed = await packBundle(sampleBundle(), { signingKey: key });
  assert.equal((await openBundle(signed, KEY, { signingKey: key })).meta.crate, "itoa");
  const unsigned = await packBundle(sampleBundle());
  await assert.rejects(() => openBundle(unsigned, KEY, { signingKey: key }), /Bad signature/);
  const other = await packBundle(sampleBundle(), {
    signingKey: new TextEncoder().encode("someone else"),
  });
  await assert.rejects(() => openBundle(other, KEY, { signingKey: key }), /Bad signature/);
});

Deno.test("tar entries with traversal, absolute paths or links are refused", () => {
  const archive = packTar([{ name: "meta.json", data: new Uint8Array([1]) }]);
  const rename = (name: string) => {
    const copy = archive.slice();
    copy.fill(0, 0, 100);
    copy.set(new TextEncoder().encode(name), 0);
    return copy;
  };
  assert.throws(() => unpackTar(rename("../../etc/passwd")), /Unsafe entry name/);
  assert.throws(() => unpackTar(rename("/etc/passwd")), /Unsafe entry name/);
  const link = archive.slice();
  link[156] = "2".charCodeAt(0);
  assert.throws(() => unpackTar(link), /not a regular file|checksum/);
  assert.throws(() => packTar([{ name: "../x", data: new Uint8Array() }]), TypeError);
});

Deno.test("a tar with a bad header checksum or a short body is refused", () => {
  const archive = packTar([{ name: "a", data: new Uint8Array(600) }]);
  const bad = archive.slice();
  bad[0] = "b".charCodeAt(0);
  assert.throws(() => unpackTar(bad), /checksum/);
  assert.throws(() => unpackTar(archive.subarray(0, 700)), /Truncated|Unexpected end/);
});
