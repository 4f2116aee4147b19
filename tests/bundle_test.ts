// Tests for the bundle format: round trips, and refusing anything altered, truncated or hostile.
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { constants as zlibConstants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { type Bundle, BundleError, openBundle, packBundle } from "../src/bundle/bundle.ts";
import { packTar, unpackTar } from "../src/bundle/_tar.ts";
import { SAMPLE_KEY as KEY, sampleBundle as aSampleBundle } from "./_sample_bundle.ts";

/** The sample entry with two outputs (one large enough to compress), a source and a template. */
function sampleBundle(key = KEY): Bundle {
  return aSampleBundle({
    meta: {
      key,
      outputs: [{ role: "rlib", digest: "00".repeat(32) }, {
        role: "rmeta",
        digest: "11".repeat(32),
      }],
      sources: [{ path: "@@WARMUP_PKG@@/src/lib.rs", digest: "22".repeat(32) }],
      envDeps: [{ name: "CARGO_PKG_NAME", value: "itoa" }],
    },
    files: new Map([["rlib", new Uint8Array([1, 2, 3])], [
      "rmeta",
      new Uint8Array(70_000).fill(7),
    ]]),
    depInfo: "@@WARMUP_OUT@@/@@WARMUP_STEM@@.d: @@WARMUP_PKG@@/src/lib.rs\n",
    stderr: '{"$message_type":"artifact","artifact":"@@WARMUP_OUT@@/lib@@WARMUP_STEM@@.rmeta"}\n',
  });
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

/**
 * Writes the ustar header checksum of the 512-byte header at the start of `archive`: the byte
 * sum with the checksum field (148..155) read as spaces, as 6 octal digits, a NUL and a space.
 * An altered header then fails only the check under test, not the checksum.
 */
function fixHeaderChecksum(archive: Uint8Array): Uint8Array {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : archive[i]!;
  archive.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return archive;
}

Deno.test("tar entries with traversal, absolute paths or links are refused", () => {
  const archive = packTar([{ name: "meta.json", data: new Uint8Array([1]) }]);
  assert.deepEqual(fixHeaderChecksum(archive.slice()), archive, "the checksum packTar writes");
  const rename = (name: string) => {
    const copy = archive.slice();
    copy.fill(0, 0, 100);
    copy.set(new TextEncoder().encode(name), 0);
    return fixHeaderChecksum(copy);
  };
  assert.deepEqual(unpackTar(rename("other.json")).map((entry) => entry.name), ["other.json"]);
  assert.throws(() => unpackTar(rename("../../etc/passwd")), /Unsafe entry name/);
  assert.throws(() => unpackTar(rename("/etc/passwd")), /Unsafe entry name/);
  for (const type of ["1", "2", "5"]) { // a hard link, a symlink, a directory
    const other = archive.slice();
    other[156] = type.charCodeAt(0);
    assert.throws(
      () => unpackTar(fixHeaderChecksum(other)),
      new RegExp(`Entry "meta.json" is not a regular file \\(type "${type}"\\)`),
    );
  }
  assert.throws(() => packTar([{ name: "../x", data: new Uint8Array() }]), TypeError);
});

Deno.test("a tar with a bad header checksum or a short body is refused", () => {
  const archive = packTar([{ name: "a", data: new Uint8Array(600) }]);
  const bad = archive.slice();
  bad[0] = "b".charCodeAt(0);
  assert.throws(() => unpackTar(bad), /checksum/);
  assert.throws(() => unpackTar(archive.subarray(0, 700)), /Truncated|Unexpected end/);
});

// Hand-built zstd frames (RFC 8878): raw blocks for `raw`, then `zeros` as run-length blocks, so a
// bomb costs the test a few kilobytes, not the memory it would cost a reader.
function zstdFrame(
  { declared, raw = new Uint8Array(), zeros }: {
    declared?: number;
    raw?: Uint8Array;
    zeros: number;
  },
): Uint8Array {
  const MAX_BLOCK = 128 * 1024;
  const parts: Uint8Array[] = [];
  const header = new DataView(new ArrayBuffer(declared === undefined ? 6 : 14));
  header.setUint32(0, 0xfd2fb528, true);
  // No size, or an 8-byte one; never a single segment, so a window descriptor (16 MiB) follows.
  header.setUint8(4, declared === undefined ? 0x00 : 0xc0);
  header.setUint8(5, 0x70);
  if (declared !== undefined) header.setBigUint64(6, BigInt(declared), true);
  parts.push(new Uint8Array(header.buffer));
  const blocks: Array<{ type: 0 | 1; size: number; body: Uint8Array }> = [];
  for (let at = 0; at < raw.length; at += MAX_BLOCK) {
    const body = raw.subarray(at, at + MAX_BLOCK);
    blocks.push({ type: 0, size: body.length, body });
  }
  for (let left = zeros; left > 0; left -= MAX_BLOCK) {
    blocks.push({ type: 1, size: Math.min(left, MAX_BLOCK), body: new Uint8Array(1) });
  }
  blocks.forEach(({ type, size, body }, i) => {
    const word = Number(i === blocks.length - 1) | (type << 1) | (size << 3);
    parts.push(new Uint8Array([word & 0xff, (word >> 8) & 0xff, word >> 16]), body);
  });
  const frame = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    frame.set(part, offset);
    offset += part.length;
  }
  return frame;
}

/** An envelope around `payload` with the right hash, and signed for `KEY` when given a key. */
function envelope(payload: Uint8Array, signingKey?: Uint8Array): Uint8Array {
  const hash = createHash("sha256").update(payload).digest();
  const bytes = new Uint8Array(70 + payload.length);
  bytes.set(new TextEncoder().encode("CWUB"), 0);
  bytes[4] = 1;
  bytes[5] = signingKey ? 1 : 0;
  bytes.set(hash, 6);
  if (signingKey) bytes.set(createHmac("sha256", signingKey).update(KEY).update(hash).digest(), 38);
  bytes.set(payload, 70);
  return bytes;
}

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length; at += 65536) crypto.getRandomValues(bytes.subarray(at, at + 65536));
  return bytes;
}

const MiB = 2 ** 20;

/** Opening `bytes` fails with `pattern`, without the memory a bomb asks for (RSS is the measure). */
async function assertRefusedCheaply(
  bytes: Uint8Array,
  pattern: RegExp,
  options: { signingKey?: Uint8Array } = {},
): Promise<void> {
  const rssBefore = Deno.memoryUsage().rss;
  const error = await openBundle(bytes, KEY, options).then(() => undefined, (error) => error);
  const grew = Deno.memoryUsage().rss - rssBefore;
  assert.ok(error instanceof BundleError, `not a BundleError: ${error}`);
  assert.ok(grew < 100 * MiB, `opening grew RSS by ${Math.round(grew / MiB)} MiB: ${error}`);
  assert.match(error.message, pattern);
}

Deno.test("a packed bundle declares its unpacked size in its zstd frame header", async () => {
  const payload = (await packBundle(sampleBundle())).subarray(70);
  // zstd writes a frame under its 16 MiB window as one segment, with a 4-byte size after the
  // 1-byte descriptor: 0xa0.
  assert.equal(payload[4], 0xa0);
  const declared = new DataView(payload.buffer, payload.byteOffset).getUint32(5, true);
  assert.equal(declared, zstdDecompressSync(payload).length);
});

Deno.test("a bomb that inflates past its declared size is cut off there", async () => {
  // 4 MiB that does not compress raises the limit (64 times the payload plus 8 MiB) to about
  // 270 MiB, so only the declared 24 MiB stops the 304 MiB this unpacks to.
  const payload = zstdFrame({ declared: 24 * MiB, raw: randomBytes(4 * MiB), zeros: 300 * MiB });
  await assertRefusedCheaply(envelope(payload), /unpack/);
  const signingKey = new TextEncoder().encode("team secret");
  await assertRefusedCheaply(envelope(payload, signingKey), /unpack/, { signingKey });
});

Deno.test("a bundle declaring more than its limit is refused before decompressing", async () => {
  const honest = envelope(zstdFrame({ declared: 300 * MiB, zeros: 300 * MiB }));
  await assertRefusedCheaply(honest, /declares 314572800 unpacked bytes from \d+, over its limit/);
  const huge = envelope(zstdFrame({ declared: 2 ** 40, zeros: MiB }));
  await assertRefusedCheaply(huge, /declares 1099511627776 unpacked bytes/);
});

Deno.test("a bomb without a declared size is cut off at 64 times its size plus 8 MiB", async () => {
  const payload = zstdFrame({ zeros: 300 * MiB });
  const limit = 64 * payload.length + 8 * MiB;
  await assertRefusedCheaply(
    envelope(payload),
    new RegExp(`unpacks to more than ${limit} bytes, its limit of ${limit}`),
  );
});

Deno.test("a bundle written before sizes were declared still opens", async () => {
  const bundle = sampleBundle();
  const encoder = new TextEncoder();
  // Packed as the version before this one packed: the same archive, no size pledged.
  const archive = packTar([
    { name: "meta.json", data: encoder.encode(JSON.stringify(bundle.meta)) },
    { name: "stdout.tmpl", data: encoder.encode(bundle.stdout) },
    { name: "stderr.tmpl", data: encoder.encode(bundle.stderr) },
    { name: "dep-info.tmpl", data: encoder.encode(bundle.depInfo!) },
    { name: "out.rmeta", data: bundle.files.get("rmeta")! },
    { name: "out.rlib", data: bundle.files.get("rlib")! },
  ]);
  const payload = zstdCompressSync(archive, {
    params: {
      [zlibConstants.ZSTD_c_compressionLevel]: 1,
      [zlibConstants.ZSTD_c_enableLongDistanceMatching]: 1,
      [zlibConstants.ZSTD_c_windowLog]: 24,
    },
  });
  assert.equal(payload[4], 0x00, "the frame declares no size");
  const opened = await openBundle(envelope(payload), KEY);
  assert.deepEqual(opened.meta, bundle.meta);
  assert.deepEqual([...opened.files].map(([role, data]) => [role, [...data]]), [
    ...[...bundle.files].map(([role, data]) => [role, [...data]]),
  ]);
  assert.equal(opened.depInfo, bundle.depInfo);
});

Deno.test("a bundle that would unpack past its limit is not packed", async () => {
  const bundle = sampleBundle();
  bundle.files.set("rlib", new Uint8Array(20 * MiB));
  await assert.rejects(
    () => packBundle(bundle),
    /would unpack to \d+ bytes from \d+, over its limit/,
  );
});
