// One sample cache entry for the tests that need one (an itoa library, its rlib as the only file):
// each test overrides only the fields it is about, so no test carries a copy of the rest.

import type { Bundle, BundleMeta } from "../src/bundle/bundle.ts";

/** The key of {@linkcode sampleMeta} unless one is given. */
export const SAMPLE_KEY = "ab".repeat(32);

/**
 * A valid entry's meta, `fields` laid over it.
 *
 * @example
 * ```ts ignore
 * const meta = sampleMeta({ key, envDeps: [{ name: "GREETING", value: "hi" }] });
 * ```
 */
export function sampleMeta(fields: Partial<BundleMeta> = {}): BundleMeta {
  return {
    format: 1,
    key: SAMPLE_KEY,
    crate: "itoa",
    version: "1.0.1",
    kind: "lib",
    outputs: [{ role: "rlib", digest: "00".repeat(32) }],
    sources: [],
    envDeps: [],
    compileMs: 120,
    createdAt: "2026-11-22T00:00:00.000Z",
    ...fields,
  };
}

/**
 * A valid bundle (meta, an rlib of three bytes, no output), `fields` laid over it and `meta` over
 * {@linkcode sampleMeta}.
 *
 * @example
 * ```ts ignore
 * const bytes = await packBundle(sampleBundle({ meta: { key } }), { signer });
 * ```
 */
export function sampleBundle(
  fields: Partial<Omit<Bundle, "meta">> & { meta?: Partial<BundleMeta> } = {},
): Bundle {
  const { meta, ...rest } = fields;
  return {
    meta: sampleMeta(meta),
    files: new Map([["rlib", new Uint8Array([1, 2, 3])]]),
    stdout: "",
    stderr: "",
    ...rest,
  };
}
