// The check the levels run on what the remote serves (`admitRemote`, which a cache with trusted
// keys sets to "signed by a trusted key"): a refused entry is a miss with a warning and is never
// written back to local disk, so an unverified remote bundle never becomes a local one.
import assert from "node:assert/strict";
import { join } from "node:path";
import { createLocalStore } from "../../backends/local.ts";
import { createStoreLevels } from "../../backends/levels.ts";
import { BundleError, packBundle } from "../../src/bundle/bundle.ts";
import { verifySigner } from "../../src/bundle/envelope.ts";
import { generateKeyPair, readCacheKeys } from "../../src/bundle/keys.ts";
import { sampleBundle } from "../_sample_bundle.ts";

// A timer, an op or a socket a test leaves behind fails it (see store_suite.ts).
Deno.test.sanitizer({ ops: true, resources: true });

const bundleFor = (key: string) => sampleBundle({ meta: { key } });

/** A signer as the cache reads it from a key file `keygen` wrote. */
async function keysOf(dir: string, name: string) {
  const { privateKeyPem } = await generateKeyPair();
  await Deno.writeTextFile(join(dir, name), privateKeyPem);
  return await readCacheKeys({ signingKeyFile: join(dir, name), trustedKeys: undefined });
}

Deno.test("levels: a remote entry admitRemote refuses is a miss, warned, and never kept locally", async () => {
  const dir = await Deno.makeTempDir({ prefix: "warmup-admit-test-" });
  try {
    const ci = await keysOf(dir, "ci.key");
    const other = await keysOf(dir, "other.key");
    const [signed, unsigned, foreign] = ["a", "b", "c"].map((c) => c.repeat(64)) as [
      string,
      string,
      string,
    ];
    const local = createLocalStore({ dir: join(dir, "near") });
    const remote = createLocalStore({ dir: join(dir, "far") });
    await remote.put(signed, await packBundle(bundleFor(signed), { signer: ci.signer }));
    await remote.put(unsigned, await packBundle(bundleFor(unsigned)));
    await remote.put(foreign, await packBundle(bundleFor(foreign), { signer: other.signer }));
    // What this machine wrote itself is on local disk, unsigned: it is never put to the check.
    const own = "d".repeat(64);
    await local.put(own, await packBundle(bundleFor(own)));

    const warnings: string[] = [];
    const checked: string[] = [];
    const levels = createStoreLevels(local, remote, {
      warn: (message) => warnings.push(message),
      admitRemote: async (key, bytes) => {
        checked.push(key);
        try {
          await verifySigner(bytes, { trustedKeys: ci.trustedKeys });
          return undefined;
        } catch (error) {
          if (error instanceof BundleError) return error.message;
          throw error;
        }
      },
    });
    try {
      assert.ok(await levels.get(signed));
      assert.equal(await local.has(signed), true, "a trusted remote hit is kept");
      assert.equal(await levels.get(unsigned), undefined);
      assert.equal(await levels.get(foreign), undefined);
      assert.equal(await local.has(unsigned), false, "an unsigned one is not");
      assert.equal(await local.has(foreign), false, "nor one signed by another key");
      assert.ok(await levels.get(own));
      assert.deepEqual(checked, [signed, unsigned, foreign]);
      assert.deepEqual(warnings, [
        `Refusing bundle "${unsigned}" from ${remote.location}: Bundle is not signed by a trusted key: it carries no signature; compiling it here`,
        `Refusing bundle "${foreign}" from ${remote.location}: Bundle is signed by key "${
          other.signer!.id
        }", which is not a trusted key; compiling it here`,
      ]);
      // A later read asks the remote again (and refuses again): nothing refused was remembered.
      assert.equal(await levels.get(unsigned), undefined);
      assert.equal(checked.length, 4);
    } finally {
      await levels.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
