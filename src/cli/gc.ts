/**
 * `cargo-warmup gc --max-size SIZE`: evicts the least recently used bundles until the cache is
 * under the cap, and drops index rows whose bundles are gone.
 * @module
 */

import { type EvictionResult, evictToCap, indexBytes } from "../cache/size_cap.ts";
import { hotBudgetOf, trimHotCopies } from "../cache/hot_copy.ts";
import { errorMessage } from "../error_message.ts";
import { openIndex } from "../index/index_db.ts";
import { pruneManifests } from "../cache/manifest_gc.ts";
import { openManagedCache } from "./open_cache.ts";
import { formatBytes } from "../units.ts";
import { parseSize } from "../config/size.ts";
import { parseFlags } from "./parse_flags.ts";
import { UsageError } from "./usage_error.ts";

export const GC_HELP = `Evict least recently used cache entries until the cache fits a size cap.

Usage: cargo-warmup gc [--max-size SIZE] [--remote-max-size SIZE] [--dry-run]

Options:
  --max-size SIZE          Cap for the local cache, like 500M or 2G (default: the configured
                           max-size, 10G unless set)
  --remote-max-size SIZE   Also prune the configured Redis, S3 or HTTP cache to this size, by
                           last use (an HTTP cache only where it lists its entries), and its
                           team manifests whose entries are mostly gone
  --dry-run                Say what would be evicted, evict nothing
  -h, --help        Print this help`;

/** Runs `gc`; resolves to the exit code. */
export async function runGc(argv: string[]): Promise<number> {
  const { values } = parseFlags("gc", argv, {
    "max-size": { type: "string" },
    "remote-max-size": { type: "string" },
    "dry-run": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(GC_HELP);
    return 0;
  }
  const localCap = sizeFlag("--max-size", values["max-size"]);
  const remoteCap = sizeFlag("--remote-max-size", values["remote-max-size"]);
  const dryRun = values["dry-run"] ?? false;
  const cache = await openManagedCache();
  try {
    if (remoteCap !== undefined && !cache.remote) {
      throw new UsageError(
        "gc: --remote-max-size needs a redis, s3 or http backend in the configuration",
      );
    }
    if (remoteCap !== undefined && cache.config.readOnly) {
      throw new UsageError("gc: the remote cache is configured read-only");
    }
    const cap = localCap ?? cache.config.maxSize;
    const evicted = await evictToCap(cache.local, cap - indexBytes(cache.config.dir), { dryRun });
    report(dryRun, "local", cache.local.location, cap, evicted);
    const entries = await cache.local.list();
    const { hotCap } = hotBudgetOf(cache.config.hotSize, entries);
    const trimmed = trimHotCopies(cache.config.dir, entries, hotCap, { dryRun });
    report(dryRun, "hot copies", cache.local.location, hotCap, trimmed);
    if (remoteCap !== undefined && cache.remote) {
      const result = await evictToCap(cache.remote, remoteCap, { dryRun });
      report(dryRun, "remote", cache.remote.location, remoteCap, result);
      // Judged by what is left (after a dry run, the entries it would evict still count).
      const present = new Set((await cache.remote.list()).map((entry) => entry.key));
      const manifests = await pruneManifests(cache.remote, present, { dryRun });
      console.log(
        `team manifests: ${dryRun ? "would remove" : "removed"} ${manifests.removed}, ` +
          `kept ${manifests.kept} in ${cache.remote.location}`,
      );
    }
    if (!dryRun) {
      // The bundles are what gc keeps in bounds; an index it cannot update now only lists rows
      // of evicted entries until the next gc.
      const warn = (message: string) => console.error(`warning: ${message}`);
      try {
        const index = openIndex(cache.config.dir, warn);
        try {
          index.retainArtefacts(new Set((await cache.local.list()).map((entry) => entry.key)));
        } finally {
          index.close();
        }
      } catch (error) {
        warn(`${errorMessage(error)}; the index was not updated`);
      }
    }
  } finally {
    await cache.close();
  }
  return 0;
}

function sizeFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseSize(value);
  } catch (error) {
    throw new UsageError(`gc: ${flag}: ${errorMessage(error)}`);
  }
}

function report(
  dryRun: boolean,
  level: string,
  location: string,
  cap: number,
  result: EvictionResult,
) {
  console.log(
    `${level}: ${dryRun ? "would evict" : "evicted"} ${result.evicted} entries, ` +
      `${formatBytes(result.before)} -> ${formatBytes(result.after)} (cap ${
        formatBytes(cap)
      }) in ${location}`,
  );
}
