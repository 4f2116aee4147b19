/**
 * Variants: several valid entries under one cache key, as ccache's direct mode keeps them. The
 * key holds what is known before compiling; which files (generated ones in OUT_DIR, above all)
 * and environment values a compile read is only known after, from its dep-info. Each stored
 * compilation records those inputs; a hit is an entry whose recorded inputs all match now.
 *
 * Storage: the key's own slot holds the most recently stored variant, whose meta lists the
 * inputs of up to {@linkcode MAX_VARIANTS}` - 1` older ones; each older one lives under its
 * {@linkcode variantKeyOf} slot. The common case (one variant) costs a hit one fetch, as before.
 * @module
 */

import { sha256Hex } from "../digest.ts";
import type { DigestMemo } from "../index/file_digest.ts";
import type { BundleMeta } from "../bundle/bundle.ts";
import { fromTemplate, type PathRoots, toTemplate } from "./path_roots.ts";
import { currentDigest } from "./input_identity.ts";

/** How many variants a key keeps; an older one beyond this is forgotten (and evicted by LRU). */
export const MAX_VARIANTS = 4;

/** The inputs one compilation read: templated paths with digests, env values (templated). */
export interface VariantInputs {
  sources: BundleMeta["sources"];
  envDeps: BundleMeta["envDeps"];
}

/** An older variant as listed in the newest one's meta. */
export type VariantRecord = NonNullable<BundleMeta["variants"]>[number];

/** What the inputs check needs of the invocation being served. */
export interface InputContext {
  roots: PathRoots;
  env: Record<string, string>;
  memo: DigestMemo;
}

/**
 * An environment input as an entry records it: its value templated (a path of this build reads
 * the same in every build), or no value when it was unset; {@linkcode whyInputsDiffer} compares
 * a call's environment with it.
 */
export function recordedEnvDep(
  name: string,
  value: string | undefined,
  roots: PathRoots,
): VariantInputs["envDeps"][number] {
  return value === undefined ? { name } : { name, value: toTemplate(value, roots) };
}

/** The identity of a variant: a digest of the inputs it was compiled from. */
export function variantIdOf(inputs: VariantInputs): string {
  return sha256Hex(JSON.stringify([inputs.sources, inputs.envDeps]));
}

/** Where the variant `id` of `key` is stored when it is not the newest. */
export function variantKeyOf(key: string, id: string): string {
  return sha256Hex(`${key}\0variant\0${id}`);
}

/**
 * Why an entry's recorded inputs do not match this invocation (a file's digest or an
 * environment value differs), or undefined when they all match.
 */
export function whyInputsDiffer(inputs: VariantInputs, context: InputContext): string | undefined {
  for (const source of inputs.sources) {
    const path = fromTemplate(source.path, context.roots);
    // A source that is gone has changed, unless it was recorded missing (input_identity.ts).
    if (currentDigest(path, context.memo) !== source.digest) return `source changed: ${path}`;
  }
  for (const dep of inputs.envDeps) {
    const value = context.env[dep.name];
    const now = value === undefined ? undefined : toTemplate(value, context.roots);
    if (now !== dep.value) return `environment changed: ${dep.name}`;
  }
  return undefined;
}

/** The first older variant listed in `newest` whose inputs match this invocation. */
export function matchingOlderVariant(
  newest: BundleMeta,
  context: InputContext,
): VariantRecord | undefined {
  return (newest.variants ?? []).find((variant) => !whyInputsDiffer(variant, context));
}

/**
 * The older variants a newly stored entry lists: the one it displaces from the key's slot (when
 * its inputs differ) and that one's list, without the new entry's own inputs, newest first.
 */
export function variantsAfter(
  displaced: BundleMeta | undefined,
  storedId: string,
): VariantRecord[] {
  if (displaced === undefined) return [];
  const displacedId = variantIdOf(displaced);
  const list: VariantRecord[] = displacedId === storedId
    ? []
    : [{ id: displacedId, sources: displaced.sources, envDeps: displaced.envDeps }];
  for (const variant of displaced.variants ?? []) {
    if (variant.id !== storedId && !list.some((listed) => listed.id === variant.id)) {
      list.push(variant);
    }
  }
  return list.slice(0, MAX_VARIANTS - 1);
}
