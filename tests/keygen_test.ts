// `cargo-warmup keygen`, run as users run it: the files it writes, their modes, that the pair
// signs and verifies bundles, and that it never overwrites a key.
import assert from "node:assert/strict";
import { join } from "node:path";
import { WARMUP_BIN } from "./_fixtures.ts";
import { openBundle, packBundle } from "../src/bundle/bundle.ts";
import { readCacheKeys } from "../src/bundle/keys.ts";
import { sampleBundle } from "./_sample_bundle.ts";

async function keygen(args: string[], cwd: string) {
  const output = await new Deno.Command(WARMUP_BIN, { args: ["keygen", ...args], cwd }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("keygen: writes a private key only its owner reads and the public key beside it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "warmup-keygen-test-" });
  try {
    const out = join(dir, "ci", "keys");
    const run = await keygen(["--out", out], dir);
    assert.equal(run.code, 0, run.stderr);
    const privatePath = join(out, "cargo-warmup.key");
    const publicPath = join(out, "cargo-warmup.pub");
    assert.equal((await Deno.stat(privatePath)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(publicPath)).mode! & 0o077, 0o044, "the public key is readable");
    const publicKey = (await Deno.readTextFile(publicPath)).trim();
    assert.equal(Uint8Array.fromBase64(publicKey).length, 32);
    assert.match(await Deno.readTextFile(privatePath), /^-----BEGIN PRIVATE KEY-----\n/);
    assert.ok(run.stdout.includes(privatePath) && run.stdout.includes(publicKey), run.stdout);

    // The pair works: the key file signs, the .pub file (named in trusted-keys) verifies.
    const writer = await readCacheKeys({ signingKeyFile: privatePath, trustedKeys: undefined });
    const reader = await readCacheKeys({ signingKeyFile: undefined, trustedKeys: [publicPath] });
    assert.equal(writer.signer?.publicKey, publicKey);
    const key = "ef".repeat(32);
    const bytes = await packBundle(sampleBundle({ meta: { key } }), { signer: writer.signer });
    assert.equal((await openBundle(bytes, key, { trustedKeys: reader.trustedKeys })).meta.key, key);

    // Without --out: the current directory.
    const here = await keygen([], out.replace(/keys$/, ""));
    assert.equal(here.code, 0, here.stderr);
    await Deno.stat(join(dir, "ci", "cargo-warmup.key"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keygen: refuses to overwrite a key, or to write beside a lone public key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "warmup-keygen-test-" });
  try {
    assert.equal((await keygen(["--out", dir], dir)).code, 0);
    const before = await Deno.readFile(join(dir, "cargo-warmup.key"));
    const again = await keygen(["--out", dir], dir);
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /^error: Key file ".*cargo-warmup\.key" already exists: keygen never overwrites a key/,
    );
    assert.deepEqual(await Deno.readFile(join(dir, "cargo-warmup.key")), before, "unchanged");

    // A public key alone (its private key kept elsewhere) is not replaced either.
    await Deno.remove(join(dir, "cargo-warmup.key"));
    const lone = await keygen(["--out", dir], dir);
    assert.equal(lone.code, 1);
    assert.match(lone.stderr, /cargo-warmup\.pub" already exists/);
    await assert.rejects(() => Deno.stat(join(dir, "cargo-warmup.key")), Deno.errors.NotFound);

    const usage = await keygen(["--force"], dir);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^error: keygen: Unknown option '--force'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
