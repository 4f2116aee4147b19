// Unit tests of variants (src/cache/variants.ts): which recorded inputs match, and which older
// variants a newly stored entry keeps listing.

import assert from "node:assert/strict";
import { join } from "node:path";
import type { BundleMeta } from "../src/bundle/bundle.ts";
import { sha256Hex } from "../src/digest.ts";
import { pathRootsOf } from "../src/cache/path_roots.ts";
import {
  matchingOlderVariant,
  MAX_VARIANTS,
  variantIdOf,
  variantKeyOf,
  variantsAfter,
  whyInputsDiffer,
} from "../src/cache/variants.ts";
import { tempDir } from "./_fixtures.ts";
import { sampleMeta } from "./_sample_bundle.ts";

function metaWith(greeting: string, variants?: BundleMeta["variants"]): BundleMeta {
  return sampleMeta({
    sources: [{
      path: "@@WARMUP_OUT_DIR_ENV@@/greeting.rs",
      digest: sha256Hex(new TextEncoder().encode(greeting)),
    }],
    envDeps: [{ name: "GREETING_STYLE", value: "plain" }],
    ...(variants ? { variants } : {}),
  });
}

const recordOf = (meta: BundleMeta) => ({
  id: variantIdOf(meta),
  sources: meta.sources,
  envDeps: meta.envDeps,
});

Deno.test("the variant that matches the generated file and the environment now is found", async () => {
  await using dir = await tempDir();
  const outDir = join(dir.path, "out");
  await Deno.mkdir(outDir);
  await Deno.writeTextFile(join(outDir, "greeting.rs"), "hello");
  const context = {
    roots: pathRootsOf({ outDir: dir.path, outputStem: "x", extraFilename: "", outDirEnv: outDir }),
    env: { GREETING_STYLE: "plain" },
    memo: { lookup: () => undefined, remember: () => {} },
  };
  const hello = metaWith("hello");
  const bonjour = metaWith("bonjour", [recordOf(hello)]);
  assert.equal(whyInputsDiffer(hello, context), undefined);
  assert.match(whyInputsDiffer(bonjour, context) ?? "", /source changed: .*greeting\.rs/);
  assert.equal(matchingOlderVariant(bonjour, context)?.id, variantIdOf(hello));
  assert.match(
    whyInputsDiffer(hello, { ...context, env: { GREETING_STYLE: "loud" } }) ?? "",
    /environment changed: GREETING_STYLE/,
  );
  assert.equal(matchingOlderVariant(bonjour, { ...context, env: {} }), undefined);
});

Deno.test("a stored entry lists the one it displaces, newest first, bounded and without itself", () => {
  const metas = ["a", "b", "c", "d", "e", "f"].map((greeting) => metaWith(greeting));
  // Stored one after the other: each displaces the previous one from the key's slot.
  let newest: BundleMeta | undefined;
  for (const meta of metas) {
    const variants = variantsAfter(newest, variantIdOf(meta));
    newest = { ...meta, ...(variants.length ? { variants } : {}) };
  }
  assert.deepEqual(
    newest!.variants!.map((variant) => variant.id),
    metas.slice(-MAX_VARIANTS, -1).reverse().map(variantIdOf),
  );
  // Storing again an input set that is listed moves it to the slot and out of the list.
  const again = metas.at(-2)!;
  const relisted = variantsAfter(newest, variantIdOf(again)).map((variant) => variant.id);
  assert.ok(!relisted.includes(variantIdOf(again)));
  assert.equal(relisted[0], variantIdOf(metas.at(-1)!));
  // The same inputs as the entry displaced: nothing new to list.
  assert.deepEqual(variantsAfter(metaWith("z"), variantIdOf(metaWith("z"))), []);
  assert.notEqual(variantKeyOf("k".repeat(64), "1"), variantKeyOf("k".repeat(64), "2"));
});
