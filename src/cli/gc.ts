/**
 * `cargo-warmup gc --max-size SIZE`: evicts the least recently used bundles until the cache is
 * under the cap, and drops index rows whose bundles are gone.
 * @module
 */

import { createLocalStore } from "../../backends/local.ts";
import type { Store } from "../../backends/store.ts";
import { IndexDb } from "../index/index_db.ts";
import { cacheDirOf } from "../dispatch/settings.ts";
import { formatBytes, parseSize } from "../units.ts";
import { parseFlags } from "./parse_flags.ts";
import { UsageError } from "./usage_error.ts";

export const GC_HELP = `Evict least recently used cache entries until the cache fits a size cap.

Usage: cargo-warmup gc --max-size SIZE [--dry-run]

Options:
  --max-size SIZE   The cap, like 500M, 2G or 10GiB
  --dry-run         Say what would be evicted, evict nothing
  -h, --help        Print this help`;

/** What one gc pass did to a store. */
export interface GcResult {
  before: number;
  after: number;
  evicted: number;
}

/** Runs `gc`; resolves to the exit code. */
export async function runGc(argv: string[]): Promise<number> {
  const { values } = parseFlags("gc", argv, {
    "max-size": { type: "string" },
    "dry-run": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(GC_HELP);
    return 0;
  }
  if (values["max-size"] === undefined) throw new UsageError("gc: --max-size SIZE is required");
  let cap: number;
  try {
    cap = parseSize(values["max-size"]);
  } catch (error) {
    throw new UsageError(`gc: ${(error as Error).message}`);
  }
  const cacheDir = cacheDirOf(Deno.env.toObject());
  const store = createLocalStore({ dir: cacheDir });
  const result = await evictToCap(store, cap, values["dry-run"] ?? false);
  if (!values["dry-run"]) {
    const index = new IndexDb(cacheDir);
    try {
      index.retainArtefacts(new Set((await store.list()).map((entry) => entry.key)));
    } finally {
      index.close();
    }
  }
  console.log(
    `${values["dry-run"] ? "would evict" : "evicted"} ${result.evicted} entries: ` +
      `${formatBytes(result.before)} -> ${formatBytes(result.after)} (cap ${
        formatBytes(cap)
      }) in ${store.location}`,
  );
  return 0;
}

/** Deletes the least recently used entries of `store` until it holds at most `cap` bytes. */
export async function evictToCap(store: Store, cap: number, dryRun = false): Promise<GcResult> {
  const entries = (await store.list()).sort((a, b) => a.lastUsed - b.lastUsed);
  const before = entries.reduce((sum, entry) => sum + entry.size, 0);
  let total = before;
  let evicted = 0;
  for (const entry of entries) {
    if (total <= cap) break;
    if (!dryRun) await store.delete(entry.key);
    total -= entry.size;
    evicted++;
  }
  return { before, after: total, evicted };
}
