/**
 * The tier lists in `tiers/` (TOML data): which crates `init --tier=N` warms, with the feature
 * sets people use and the stacks of crates commonly used together.
 * @module
 */

import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { errorMessage } from "../error_message.ts";

/** One crate of a tier list with the ways it is commonly depended on. */
export interface TierCrate {
  /** The crate's name on the registry. */
  name: string;
  /** A cargo version requirement, e.g. `"1"` or `"0.4"`. */
  version: string;
  /** Feature sets, each enabled on top of the defaults (unless `defaultFeatures` is false). */
  featureSets: string[][];
  defaultFeatures: boolean;
  /** Used mostly by proc-macros and build scripts: warmed as a build dependency (host unit). */
  host: boolean;
}

/** Crates commonly used together in one project, each as `crate` or `crate/feature,feature`. */
export interface TierStack {
  name: string;
  crates: string[];
}

/** A parsed tier file. */
export interface TierList {
  /** Where it came from, for messages. */
  source: string;
  crates: TierCrate[];
  stacks: TierStack[];
  /** Also build every crate of the list together in one project. */
  union: boolean;
}

/** Tiers this program ships. */
export const TIER_COUNT = 3;

/** The directory holding tier1.toml … tier3.toml beside this program's sources. */
function tiersDir(): string {
  return fileURLToPath(new URL("../../tiers/", import.meta.url));
}

/**
 * Loads tiers 1 to `tier` from `dir`.
 *
 * @example
 * ```ts
 * import { loadTiers } from "./tiers.ts";
 * const lists = await loadTiers(1);
 * console.log(lists[0]?.crates.some((entry) => entry.name === "serde")); // true
 * ```
 */
export async function loadTiers(tier: number, dir = tiersDir()): Promise<TierList[]> {
  if (!Number.isInteger(tier) || tier < 1 || tier > TIER_COUNT) {
    throw new RangeError(`Invalid tier "${tier}": expected 1 to ${TIER_COUNT}`);
  }
  const lists: TierList[] = [];
  for (let level = 1; level <= tier; level++) {
    lists.push(await loadTierFile(join(dir, `tier${level}.toml`)));
  }
  return lists;
}

/** Loads one tier file (a shipped tier or one passed with `--tier-file`). */
export async function loadTierFile(path: string): Promise<TierList> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new Error(`Cannot read tier list "${path}": ${errorMessage(error)}`);
  }
  return await parseTierList(text, path);
}

/**
 * Parses the text of a tier file.
 *
 * @example
 * ```ts
 * import { parseTierList } from "./tiers.ts";
 * const list = await parseTierList('[crates]\nserde = { version = "1", features = [["derive"]] }');
 * console.log(list.crates[0]?.featureSets); // [["derive"]]
 * ```
 */
export async function parseTierList(text: string, source = "tier list"): Promise<TierList> {
  const { parse } = await import("smol-toml");
  let document: Record<string, unknown>;
  try {
    document = parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new SyntaxError(`Cannot parse tier list "${source}": ${errorMessage(error)}`);
  }
  const bad = (detail: string) => new SyntaxError(`Invalid tier list "${source}": ${detail}`);
  const crates: TierCrate[] = [];
  for (const [key, value] of Object.entries(asTable(document.crates ?? {}, "[crates]", bad))) {
    const [name = key, keyVersion] = key.split("@");
    const spec = typeof value === "string" ? { version: value } : asTable(value, key, bad);
    const version = spec.version ?? keyVersion;
    if (typeof version !== "string" || version === "") throw bad(`"${key}" has no version`);
    const sets = spec.features ?? [[]];
    if (!Array.isArray(sets) || !sets.every(isStringList)) {
      throw bad(`"${key}".features must be a list of feature lists`);
    }
    crates.push({
      name,
      version,
      featureSets: sets.length === 0 ? [[]] : sets,
      defaultFeatures: spec["default-features"] !== false,
      host: spec.host === true,
    });
  }
  const stacks: TierStack[] = [];
  for (const [name, value] of Object.entries(asTable(document.stacks ?? {}, "[stacks]", bad))) {
    if (!isStringList(value)) throw bad(`stack "${name}" must be a list of crates`);
    stacks.push({ name, crates: value });
  }
  return { source, crates, stacks, union: document.union === true };
}

function asTable(
  value: unknown,
  what: string,
  bad: (detail: string) => Error,
): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad(`${what} must be a table`);
  }
  return value as Record<string, unknown>;
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}
