// Tests for the bundle envelope's Ed25519 signatures (format 2): who may write what a reader with
// trusted keys accepts, and that format 1 stays as it was for everyone without an Ed25519 key.
import assert from "node:assert/strict";
import { join } from "node:path";
import { BundleError, openBundle, packBundle } from "../src/bundle/bundle.ts";
import { openEnvelope, sealEnvelope, verifySigner } from "../src/bundle/envelope.ts";
import {
  type BundleSigner,
  generateKeyPair,
  readCacheKeys,
  readSigningKeyFile,
  readTrustedKeys,
  type TrustedKeys,
} from "../src/bundle/keys.ts";
import { SAMPLE_KEY as KEY, sampleBundle } from "./_sample_bundle.ts";

const OTHER_KEY = "cd".repeat(32);

/** A writer's key pair as the cache reads it: the signer, and readers' trusted keys for it. */
async function writer(): Promise<{ signer: BundleSigner; trusted: TrustedKeys; pub: string }> {
  const { privateKeyPem, publicKey } = await generateKeyPair();
  const dir = await Deno.makeTempDir({ prefix: "warmup-envelope-test-" });
  try {
    await Deno.writeTextFile(join(dir, "k"), privateKeyPem);
    const signing = await readSigningKeyFile(join(dir, "k"));
    assert.ok("signer" in signing);
    return {
      signer: signing.signer,
      trusted: await readTrustedKeys([publicKey]),
      pub: publicKey,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const ci = await writer();
const intruder = await writer();

Deno.test("envelope: a bundle signed with an Ed25519 key opens for a reader trusting that key", async () => {
  const bytes = await packBundle(sampleBundle(), { signer: ci.signer });
  assert.equal(bytes[4], 2, "format 2");
  const opened = await openBundle(bytes, KEY, { trustedKeys: ci.trusted });
  assert.deepEqual(opened.meta, sampleBundle().meta);
  assert.deepEqual([...opened.files.get("rlib")!], [1, 2, 3]);
  await verifySigner(bytes, { trustedKeys: ci.trusted });
  // Readers without keys read it as before, by its content hash.
  assert.equal((await openBundle(bytes, KEY)).meta.crate, "itoa");
});

Deno.test("envelope: signed by another key, it is refused", async () => {
  const bytes = await packBundle(sampleBundle(), { signer: intruder.signer });
  const notTrusted = new RegExp(
    `signed by key "${intruder.signer.id}", which is not a trusted key`,
  );
  await assert.rejects(() => openBundle(bytes, KEY, { trustedKeys: ci.trusted }), notTrusted);
  await assert.rejects(() => verifySigner(bytes, { trustedKeys: ci.trusted }), notTrusted);
  // Both keys trusted: accepted.
  const both = new Map([...ci.trusted, ...intruder.trusted]);
  await openBundle(bytes, KEY, { trustedKeys: both });
});

Deno.test("envelope: naming a trusted key without its signature is refused", async () => {
  const bytes = await packBundle(sampleBundle(), { signer: intruder.signer });
  // The intruder's bundle relabelled with the trusted writer's key id.
  bytes.set(Uint8Array.fromHex(ci.signer.id), 70);
  await assert.rejects(
    () => verifySigner(bytes, { trustedKeys: ci.trusted }),
    new RegExp(`Bad signature: the bundle names key "${ci.signer.id}" but was not signed by it`),
  );
  await assert.rejects(() => openBundle(bytes, KEY, { trustedKeys: ci.trusted }), /Bad signature/);
  // A flipped bit of a genuine signature.
  const genuine = await packBundle(sampleBundle(), { signer: ci.signer });
  genuine[100]! ^= 1;
  await assert.rejects(() => verifySigner(genuine, { trustedKeys: ci.trusted }), /Bad signature/);
});

Deno.test("envelope: a signed bundle moved to another key is refused, whoever signed it", async () => {
  const bytes = await packBundle(sampleBundle(), { signer: ci.signer });
  // Its signature is genuine, so the shared level's check passes; the key it is read for does not.
  await verifySigner(bytes, { trustedKeys: ci.trusted });
  for (const options of [{ trustedKeys: ci.trusted }, {}]) {
    await assert.rejects(
      () => openBundle(bytes, OTHER_KEY, options),
      new RegExp(`Bundle is signed for another key, not "${OTHER_KEY}"`),
    );
  }
  // The key hash it was signed for, rewritten to the other key's: the signature no longer holds.
  const rewritten = bytes.slice();
  const sealedForOther = await sealEnvelope(new Uint8Array(), OTHER_KEY, { signer: ci.signer });
  rewritten.set(sealedForOther.subarray(38, 70), 38);
  await assert.rejects(
    () => openBundle(rewritten, OTHER_KEY, { trustedKeys: ci.trusted }),
    /Bad signature/,
  );
});

Deno.test("envelope: a truncated signature or header is refused", async () => {
  const bytes = await packBundle(sampleBundle(), { signer: ci.signer });
  for (const length of [70, 78, 100, 141]) {
    const cut = bytes.subarray(0, length);
    await assert.rejects(
      () => openBundle(cut, KEY, { trustedKeys: ci.trusted }),
      /format 2 has a truncated or malformed header/,
    );
    await assert.rejects(() => verifySigner(cut, { trustedKeys: ci.trusted }), BundleError);
  }
  // The signature cut short and the payload shifted into its place fails the content hash.
  const shifted = new Uint8Array([...bytes.subarray(0, 110), ...bytes.subarray(142)]);
  await assert.rejects(() => verifySigner(shifted, { trustedKeys: ci.trusted }), BundleError);
  await assert.rejects(() => openBundle(bytes.subarray(0, bytes.length - 1), KEY), /Content hash/);
});

Deno.test("envelope: from a shared level, an unsigned bundle is refused; on local disk it opens", async () => {
  const unsigned = await packBundle(sampleBundle());
  assert.equal(unsigned[4], 1, "format 1 without an Ed25519 key, as before");
  await assert.rejects(
    () => verifySigner(unsigned, { trustedKeys: ci.trusted }),
    /Bundle is not signed by a trusted key: it carries no signature/,
  );
  // HMAC-signed format 1 passes only for a reader holding a secret, which openBundle then checks.
  const secret = new TextEncoder().encode("team secret");
  const hmac = await packBundle(sampleBundle(), { signingKey: secret });
  await assert.rejects(() => verifySigner(hmac, { trustedKeys: ci.trusted }), /no signature/);
  await verifySigner(hmac, { trustedKeys: ci.trusted, signingKey: secret });
  await assert.rejects(
    () => openBundle(hmac, KEY, { signingKey: new TextEncoder().encode("another") }),
    /Bad signature/,
  );
  // What this machine wrote itself (format 1, unsigned) opens with trusted keys configured.
  assert.equal((await openBundle(unsigned, KEY, { trustedKeys: ci.trusted })).meta.crate, "itoa");
});

Deno.test("envelope: a reader with only an HMAC secret refuses Ed25519 bundles", async () => {
  const bytes = await packBundle(sampleBundle(), { signer: ci.signer });
  await assert.rejects(
    () => openBundle(bytes, KEY, { signingKey: new TextEncoder().encode("secret") }),
    /Bad signature: the bundle was not written by a holder of the key/,
  );
});

Deno.test("envelope: format 1 is unchanged (a sealed envelope's bytes)", async () => {
  const payload = new Uint8Array([9, 8, 7]);
  const sealed = await sealEnvelope(payload, KEY);
  assert.equal(sealed.length, 70 + 3);
  assert.deepEqual([...sealed.subarray(0, 6)], [0x43, 0x57, 0x55, 0x42, 1, 0]);
  assert.deepEqual([...sealed.subarray(38, 70)], new Array(32).fill(0));
  assert.deepEqual([...await openEnvelope(sealed, KEY)], [9, 8, 7]);
});

Deno.test("keys: signing-key-file is an Ed25519 key when it holds a PEM private key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "warmup-keys-test-" });
  try {
    const { privateKeyPem, publicKey } = await generateKeyPair();
    const keyFile = join(dir, "ci.key");
    await Deno.writeTextFile(keyFile, privateKeyPem);
    const keys = await readCacheKeys({ signingKeyFile: keyFile, trustedKeys: undefined });
    assert.equal(keys.signingKey, undefined);
    assert.equal(keys.signer?.publicKey, publicKey);
    // The writer reads back what it stores: its own key is trusted.
    assert.deepEqual([...keys.trustedKeys!.keys()], [keys.signer!.id]);

    const secretFile = join(dir, "team.secret");
    await Deno.writeTextFile(secretFile, "a shared team secret");
    const hmac = await readCacheKeys({ signingKeyFile: secretFile, trustedKeys: undefined });
    assert.deepEqual(hmac.signingKey, new TextEncoder().encode("a shared team secret"));
    assert.equal(hmac.signer, undefined);
    assert.equal(hmac.trustedKeys, undefined);

    // A PEM private key of another algorithm (a P-256 key here) is not taken for a secret.
    const ec = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
    ]) as CryptoKeyPair;
    const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", ec.privateKey));
    const ecFile = join(dir, "ec.key");
    await Deno.writeTextFile(
      ecFile,
      `-----BEGIN PRIVATE KEY-----\n${der.toBase64()}\n-----END PRIVATE KEY-----\n`,
    );
    await assert.rejects(
      () => readCacheKeys({ signingKeyFile: ecFile, trustedKeys: undefined }),
      /Cannot read signing key ".*ec\.key": ".*ec\.key" holds a private key that is not an Ed25519 one/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keys: trusted keys inline, in .pub files and in PEM public key files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "warmup-keys-test-" });
  try {
    const pubFile = join(dir, "ci.pub");
    await Deno.writeTextFile(pubFile, `${ci.pub}\n`);
    const spki = new Uint8Array([
      ...Uint8Array.fromHex("302a300506032b6570032100"),
      ...Uint8Array.fromBase64(intruder.pub),
    ]);
    const pemFile = join(dir, "other.pem");
    await Deno.writeTextFile(
      pemFile,
      `-----BEGIN PUBLIC KEY-----\n${spki.toBase64()}\n-----END PUBLIC KEY-----\n`,
    );
    const keys = await readTrustedKeys([pubFile, pemFile]);
    assert.deepEqual([...keys.keys()], [ci.signer.id, intruder.signer.id]);
    const bytes = await packBundle(sampleBundle(), { signer: intruder.signer });
    await openBundle(bytes, KEY, { trustedKeys: keys });

    await Deno.writeTextFile(join(dir, "bad.pub"), "not a key\n");
    await assert.rejects(
      () => readTrustedKeys([ci.pub, join(dir, "bad.pub")]),
      /Cannot read trusted key ".*bad\.pub": not an Ed25519 public key/,
    );
    await assert.rejects(
      () => readTrustedKeys([join(dir, "missing.pub")]),
      /Cannot read trusted key ".*missing\.pub": /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
