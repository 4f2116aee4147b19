/**
 * A team manifest: the entries a build of one shape (build_shape.ts) used, in the order it asked
 * for them, kept on the shared level under the reserved name `manifest-<shape digest>`, so that a
 * machine that never built the shape (a CI job, a container) can fetch them ahead of cargo. It is
 * signed as bundles are (envelope.ts), for its name, so a reader that requires trusted keys takes
 * only a trusted writer's; bounded in entries and bytes; one per shape, the newest wins.
 *
 * Payload: zstd-compressed JSON `{ format: 1, name, shape, writtenAt, entries }`; each entry
 * `{ key, slot?, unit, place? }` (`slot` when it differs from `key`: a variant's). `place` is what
 * placing a unit in target/ needs, carried untouched for who reads it.
 * @module
 */

import { zstdCompressSync, zstdDecompressSync } from "node:zlib";
import {
  BundleError,
  type EnvelopeOptions,
  openEnvelope,
  sealEnvelope,
} from "../bundle/envelope.ts";
import { verifySigner } from "../bundle/envelope.ts";
import { type BuildShape, shapeDigest } from "./build_shape.ts";

/** The word of the reserved names manifests are stored under (`manifest-<64 hex>`). */
export const MANIFEST_WORD = "manifest";
/** A manifest names at most this many entries: the newest build's first. */
export const MAX_MANIFEST_ENTRIES = 2_000;
/** A manifest's payload unpacks to at most this many bytes; a larger one is refused. */
const MAX_PAYLOAD_BYTES = 2 * 1024 * 1024;
const FORMAT = 1;
const HEX64 = /^[0-9a-f]{64}$/;

/** One entry a build used. */
export interface ManifestEntry {
  /** The cache key the entry was signed for. */
  key: string;
  /** The store slot it was read from or written to (`key`, or one of its variants). */
  slot: string;
  /**
   * Which unit it is for (crate, version, kind and artefact stem): a newer build's entry of a unit
   * replaces an older build's.
   */
  unit: string;
  /** What placing the unit in target/ needs (issue 29's records), carried untouched. */
  place?: unknown;
}

/** A manifest as read or about to be written. */
export interface Manifest {
  shape: BuildShape;
  /** When it was written, ms since the epoch. */
  writtenAt: number;
  entries: ManifestEntry[];
}

/**
 * The reserved name of the manifest of `shape`.
 *
 * @example
 * ```ts
 * import { manifestNameOf } from "./manifest.ts";
 * const name = manifestNameOf({ lockfile: "ab", rustc: "cd", cargo: ["build"], env: {} });
 * console.log(name.startsWith("manifest-"), name.length); // true 73
 * ```
 */
export function manifestNameOf(shape: BuildShape): string {
  return `${MANIFEST_WORD}-${shapeDigest(shape)}`;
}

/**
 * The entries of a newer build followed by those of `older` (the manifest it replaces) for units
 * the newer build did not use, at most {@linkcode MAX_MANIFEST_ENTRIES}: a build that compiled
 * only a few units (the rest were fresh in its target/) keeps what the manifest knew of the rest,
 * and a unit built anew replaces its older entry.
 *
 * @example
 * ```ts
 * import { mergeEntries } from "./manifest.ts";
 * const entry = (c: string, unit: string) => ({ key: c.repeat(64), slot: c.repeat(64), unit });
 * const merged = mergeEntries([entry("b", "serde")], [entry("a", "serde"), entry("c", "syn")]);
 * console.log(merged.map((e) => e.unit)); // ["serde", "syn"]
 * ```
 */
export function mergeEntries(
  newer: readonly ManifestEntry[],
  older: readonly ManifestEntry[] = [],
): ManifestEntry[] {
  const units = new Set(newer.map((entry) => entry.unit));
  const slots = new Set(newer.map((entry) => entry.slot));
  const kept = older.filter((entry) => !units.has(entry.unit) && !slots.has(entry.slot));
  return [...newer, ...kept].slice(0, MAX_MANIFEST_ENTRIES);
}

/**
 * `manifest` in its signed envelope, bound to its name, signed with `keys` as a bundle would be.
 *
 * @example
 * ```ts
 * import { openManifest, sealManifest } from "./manifest.ts";
 * const shape = { lockfile: "ab", rustc: "cd", cargo: ["build"], env: {} };
 * const entries = [{ key: "a".repeat(64), slot: "a".repeat(64), unit: "serde" }];
 * const sealed = await sealManifest({ shape, writtenAt: Date.now(), entries });
 * console.log((await openManifest(sealed, shape)).entries.length); // 1
 * ```
 */
export async function sealManifest(
  manifest: Manifest,
  keys: EnvelopeOptions = {},
): Promise<Uint8Array> {
  const name = manifestNameOf(manifest.shape);
  const entries = manifest.entries.slice(0, MAX_MANIFEST_ENTRIES).map((entry) => ({
    key: entry.key,
    ...(entry.slot !== entry.key && { slot: entry.slot }),
    unit: entry.unit,
    ...(entry.place !== undefined && { place: entry.place }),
  }));
  const json = JSON.stringify({
    format: FORMAT,
    name,
    shape: manifest.shape,
    writtenAt: manifest.writtenAt,
    entries,
  });
  return await sealEnvelope(zstdCompressSync(new TextEncoder().encode(json)), name, keys);
}

/**
 * The manifest of `shape` in `bytes`, once its envelope checks out for its name with `keys` (as a
 * bundle from the shared level is checked: with trusted keys, signed by one of them) and its
 * payload is a manifest of that shape.
 *
 * @throws {BundleError} Saying why it is refused: altered, unsigned, signed by another key, for
 * another shape, or not a manifest.
 */
export async function openManifest(
  bytes: Uint8Array,
  shape: BuildShape,
  keys: Pick<EnvelopeOptions, "signingKey" | "trustedKeys"> = {},
): Promise<Manifest> {
  const name = manifestNameOf(shape);
  if (keys.trustedKeys) await verifySigner(bytes, keys);
  const { writtenAt, entries } = readPayload(await openEnvelope(bytes, name, keys), name);
  return { shape, writtenAt, entries };
}

/**
 * What the manifest stored as `name` holds, its signature unchecked: enough for `gc` to judge it
 * by its entries, never for a build to use (that is {@linkcode openManifest}).
 *
 * @throws {BundleError} When it is altered or no manifest of that name.
 *
 * @example
 * ```ts
 * import { manifestNameOf, peekManifest, sealManifest } from "./manifest.ts";
 * const shape = { lockfile: "ab", rustc: "cd", cargo: ["build"], env: {} };
 * const sealed = await sealManifest({ shape, writtenAt: 7, entries: [] });
 * console.log((await peekManifest(sealed, manifestNameOf(shape))).writtenAt); // 7
 * ```
 */
export async function peekManifest(
  bytes: Uint8Array,
  name: string,
): Promise<Omit<Manifest, "shape">> {
  return readPayload(await openEnvelope(bytes, name), name);
}

/** A manifest's payload, checked to be one of `name`. */
function readPayload(payload: Uint8Array, name: string): Omit<Manifest, "shape"> {
  let parsed: unknown;
  try {
    const json = zstdDecompressSync(payload, { maxOutputLength: MAX_PAYLOAD_BYTES });
    parsed = JSON.parse(new TextDecoder().decode(json));
  } catch (error) {
    throw new BundleError(`Not a manifest: ${(error as Error).message}`, { cause: error });
  }
  const manifest = parsed as Partial<Record<string, unknown>> | null;
  if (manifest?.format !== FORMAT || manifest.name !== name) {
    throw new BundleError(`Not a manifest of format ${FORMAT} for "${name}"`);
  }
  if (!Array.isArray(manifest.entries) || manifest.entries.length > MAX_MANIFEST_ENTRIES) {
    throw new BundleError(`Manifest "${name}" lists no entries or too many`);
  }
  const entries: ManifestEntry[] = [];
  for (const item of manifest.entries as Array<Partial<Record<string, unknown>> | null>) {
    const key = item?.key;
    const slot = item?.slot ?? key;
    if (
      typeof key !== "string" || typeof slot !== "string" || !HEX64.test(key) || !HEX64.test(slot)
    ) {
      throw new BundleError(`Manifest "${name}" names an entry that is no cache key`);
    }
    entries.push({
      key,
      slot,
      unit: typeof item?.unit === "string" ? item.unit : slot,
      ...(item?.place !== undefined && { place: item.place }),
    });
  }
  const writtenAt = typeof manifest.writtenAt === "number" ? manifest.writtenAt : 0;
  return { writtenAt, entries };
}
