/**
 * `cargo-warmup status`: what is cached, how big it is, how often it served, and why crates were
 * not cacheable. `--json` prints the same as one object for scripts.
 * @module
 */

import { WARM_COUNTER_PREFIX } from "../cache/cache.ts";
import { join } from "node:path";
import {
  daemonRecords,
  isDaemonProcess,
  runtimeDirOf,
  whyRuntimeDirRefused,
} from "../runtime_dir.ts";
import { settleDaemons } from "../daemon/settle.ts";
import { versionTag } from "../version.ts";
import type { Store, StoredEntry } from "../../backends/store.ts";
import { type IndexDb, openIndex } from "../index/index_db.ts";
import { errorMessage } from "../error_message.ts";
import { hotBudgetOf } from "../cache/hot_copy.ts";
import { openManagedCache } from "./open_cache.ts";
import { warmupStatusLines } from "../warm/background.ts";
import { formatBytes, formatDuration } from "../units.ts";
import { parseFlags } from "./parse_flags.ts";

export const STATUS_HELP = `Show what the cache holds and how well it serves.

Usage: cargo-warmup status [--json] [--recent N]

Options:
  --json        Print one JSON object (entries, bytes, hits, misses, notCacheable, …)
  --recent N    List the N most recently used entries (default 10)
  -h, --help    Print this help`;

/** One level of the cache (local disk, or the remote behind it). */
export interface LevelReport {
  level: "local" | "remote";
  kind: string;
  location: string;
  healthy: boolean;
  health: string;
  entries: number;
  /** Bytes at rest: bundles and, locally, their unpacked hot copies. */
  bytes: number;
  /** The size cap the level is kept under (the local level: `max-size`, kept by the daemon). */
  cap?: number;
  /** Local level: the bytes of its hot copies (included in `bytes`) and their budget. */
  hotBytes?: number;
  hotCap?: number;
}

/** What served hits cost to read and write, by where they were read from. */
export interface HitCost {
  /** Hits copied from an unpacked hot copy, and their mean milliseconds. */
  hot: { hits: number; meanMs: number };
  /** Hits decompressed from a bundle (local or remote), and their mean milliseconds. */
  bundle: { hits: number; meanMs: number };
}

/** The status report, as `--json` prints it. */
export interface StatusReport {
  /** Lines about a running or finished warm-up and a changed toolchain (see src/warm). */
  warmup: string[];
  /** The local level's location, entry count and size; `levels` has every level. */
  location: string;
  healthy: boolean;
  health: string;
  entries: number;
  bytes: number;
  levels: LevelReport[];
  /** The daemon of this version, if one runs. */
  daemon: {
    running: boolean;
    pid?: number;
    startedAt?: string;
    runtimeDir: string;
    /** Why the runtime directory keeps the daemon off, when it does. */
    refused?: string;
  };
  /** Calls of builds served (crate compiles and build-script runs); a warm-up's are in `warmed`. */
  hits: number;
  /** Calls of builds compiled (or run) and stored. */
  misses: number;
  /** What warm-ups (`init`, `init --rewarm`) did: compiled and stored, or found cached. */
  warmed: { compiled: number; served: number };
  /** The part of `hits` and `misses` that were workspace and path crates (`[warmup] workspace`). */
  workspace: { hits: number; misses: number };
  /** Units placed in new target dirs before cargo looked (src/place/), and their bytes. */
  placed: { units: number; bytes: number; placings: number };
  notCacheable: number;
  notCacheableReasons: Record<string, number>;
  corrupt: number;
  stale: number;
  storeErrors: number;
  savedMs: number;
  hitCost: HitCost;
  recent: Array<Record<string, string | number>>;
}

/** Runs `status`; resolves to the exit code. */
export async function runStatus(argv: string[]): Promise<number> {
  const { values } = parseFlags("status", argv, {
    json: { type: "boolean" },
    recent: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(STATUS_HELP);
    return 0;
  }
  const report = await statusReport(Deno.env.toObject(), Number(values.recent ?? 10));
  console.log(values.json ? JSON.stringify(report, null, 2) : renderStatus(report));
  return 0;
}

/** Gathers the status report from the configured stores and the index. */
export async function statusReport(
  env: Record<string, string>,
  recent: number,
): Promise<StatusReport> {
  const runtimeDir = runtimeDirOf(env);
  // What the last build left the daemon to store is counted too.
  await settleDaemons(runtimeDir, 5_000);
  const daemon = daemonRecords(runtimeDir).find((record) =>
    record.tag === versionTag() && isDaemonProcess(record.pid)
  );
  const refusedRuntimeDir = whyRuntimeDirRefused(runtimeDir);
  const cache = await openManagedCache(env);
  try {
    const { report: localReport, entries: localEntries } = await levelReport(
      "local",
      cache.local,
    );
    const { hotBytes, hotCap } = hotBudgetOf(cache.config.hotSize, localEntries);
    const levels: LevelReport[] = [
      { ...localReport, cap: cache.config.maxSize, hotBytes, hotCap },
    ];
    if (cache.remote) levels.push((await levelReport("remote", cache.remote)).report);
    const local = levels[0]!;
    const index = indexOrNothing(cache.config.dir);
    try {
      const counters = index?.counters() ?? {};
      const reasons: Record<string, number> = {};
      for (const [name, value] of Object.entries(counters)) {
        if (name.startsWith("not_cacheable:")) reasons[name.slice("not_cacheable:".length)] = value;
      }
      // Calls the launcher handed to rustc before the dispatcher started (bin/cargo-warmup).
      for (const reason of await passedThroughByLauncher(cache.config.dir)) {
        reasons[reason] = (reasons[reason] ?? 0) + 1;
        counters.not_cacheable = (counters.not_cacheable ?? 0) + 1;
      }
      return {
        location: local.location,
        healthy: local.healthy,
        health: local.health,
        entries: local.entries,
        bytes: local.bytes,
        levels,
        daemon: daemon
          ? { running: true, pid: daemon.pid, startedAt: daemon.startedAt, runtimeDir }
          : {
            running: false,
            runtimeDir,
            ...(refusedRuntimeDir ? { refused: refusedRuntimeDir } : {}),
          },
        warmup: await warmupStatusLines(cache.config.dir, env),
        hits: counters.hits ?? 0,
        misses: counters.misses ?? 0,
        warmed: {
          compiled: counters[`${WARM_COUNTER_PREFIX}misses`] ?? 0,
          served: counters[`${WARM_COUNTER_PREFIX}hits`] ?? 0,
        },
        workspace: { hits: counters.workspace_hits ?? 0, misses: counters.workspace_misses ?? 0 },
        placed: {
          units: counters.placed_units ?? 0,
          bytes: counters.placed_bytes ?? 0,
          placings: counters.placings ?? 0,
        },
        notCacheable: counters.not_cacheable ?? 0,
        notCacheableReasons: reasons,
        corrupt: counters.corrupt ?? 0,
        stale: counters.stale ?? 0,
        storeErrors: counters.store_errors ?? 0,
        savedMs: counters.saved_ms ?? 0,
        hitCost: {
          hot: meanOf(counters.hits_hot, counters.hit_us_hot),
          bundle: meanOf(counters.hits_bundle, counters.hit_us_bundle),
        },
        recent: index?.artefacts(Number.isFinite(recent) ? recent : 10) ?? [],
      };
    } finally {
      index?.close();
    }
  } finally {
    await cache.close();
  }
}

/**
 * The index, or nothing when it cannot be read now (locked by a process that holds it, a full
 * disk): status then shows the levels without counts rather than failing. An unreadable index
 * is set aside and a new one started (openIndex).
 */
function indexOrNothing(dir: string): IndexDb | undefined {
  const warn = (message: string) => console.error(`warning: ${message}`);
  let index: IndexDb | undefined;
  try {
    index = openIndex(dir, warn);
    index.counters();
    return index;
  } catch (error) {
    index?.close();
    warn(`${errorMessage(error)}; hits, misses and recent entries are not shown`);
    return undefined;
  }
}

function meanOf(hits = 0, micros = 0): { hits: number; meanMs: number } {
  return { hits, meanMs: hits === 0 ? 0 : Math.round(micros / hits / 100) / 10 };
}

async function passedThroughByLauncher(cacheDir: string): Promise<string[]> {
  try {
    const text = await Deno.readTextFile(join(cacheDir, "passthrough.log"));
    return text.split("\n").filter((line) => line !== "");
  } catch {
    return [];
  }
}

/** A level's report, with the listing it was made from. */
async function levelReport(
  level: LevelReport["level"],
  store: Store,
): Promise<{ report: LevelReport; entries: StoredEntry[] }> {
  const health = await store.health();
  const entries = health.ok ? await store.list().catch(() => []) : [];
  const report = {
    level,
    kind: store.kind,
    location: store.location,
    healthy: health.ok,
    health: health.detail,
    entries: entries.length,
    bytes: entries.reduce((sum, entry) => sum + entry.size, 0),
  };
  return { report, entries };
}

/** Hits over lookups, as a percentage ("n/a" before any). */
function rateOf(counts: { hits: number; misses: number }): string {
  const lookups = counts.hits + counts.misses;
  return lookups === 0 ? "n/a" : `${Math.round((counts.hits / lookups) * 100)}%`;
}

function renderStatus(report: StatusReport): string {
  const rate = rateOf(report);
  const lines = report.levels.map((level) =>
    `${level.level.padEnd(12)} ${level.kind} ${level.location}: ` +
    (level.healthy
      ? `${level.entries} entries, ${formatBytes(level.bytes)}` +
        (level.cap === undefined ? "" : ` of ${formatBytes(level.cap)}`) +
        (level.hotBytes === undefined
          ? ""
          : `, of which hot copies ${formatBytes(level.hotBytes)} of ${
            formatBytes(level.hotCap ?? 0)
          }`) +
        ` (${level.health})`
      : `UNHEALTHY: ${level.health}`)
  );
  lines.push(
    `${"daemon".padEnd(12)} ` +
      (report.daemon.running
        ? `running, pid ${report.daemon.pid}, since ${report.daemon.startedAt}`
        : report.daemon.refused
        ? `cannot run: ${report.daemon.refused} (builds serve themselves, slower)`
        : `not running (the next build starts it; CARGO_WARMUP_DAEMON=0 turns it off)`),
  );
  lines.push(`hits         ${report.hits}   misses ${report.misses}   hit rate ${rate} (builds)`);
  if (report.warmed.compiled + report.warmed.served > 0) {
    lines.push(
      `warmed       ${report.warmed.compiled} units compiled by warm-ups` +
        ` (${report.warmed.served} found already cached)`,
    );
  }
  const { workspace } = report;
  if (workspace.hits + workspace.misses > 0) {
    const registry = {
      hits: report.hits - workspace.hits,
      misses: report.misses - workspace.misses,
    };
    lines.push(
      `  registry   ${registry.hits} hits, ${registry.misses} misses, hit rate ${
        rateOf(registry)
      } (published crates)`,
      `  workspace  ${workspace.hits} hits, ${workspace.misses} misses, hit rate ${
        rateOf(workspace)
      } (your own crates)`,
    );
  }
  if (report.placed.placings > 0) {
    lines.push(
      `placed       ${report.placed.units} units (${formatBytes(report.placed.bytes)}) in ` +
        `${report.placed.placings} new target dirs before cargo looked (never asked for)`,
    );
  }
  lines.push(
    `time saved   ${formatDuration(report.savedMs)}`,
    `hit cost     ${report.hitCost.hot.meanMs} ms from a hot copy (${report.hitCost.hot.hits} hits), ` +
      `${report.hitCost.bundle.meanMs} ms from a bundle (${report.hitCost.bundle.hits} hits)`,
    `not cached   ${report.notCacheable} rustc calls` +
      (report.corrupt ? `, ${report.corrupt} corrupt entries dropped` : "") +
      (report.stale ? `, ${report.stale} stale entries recompiled` : ""),
  );
  lines.push(...report.warmup);
  const reasons = Object.entries(report.notCacheableReasons).sort((a, b) => b[1] - a[1]);
  for (const [reason, count] of reasons.slice(0, 8)) {
    lines.push(`  ${String(count).padStart(6)}  ${reason}`);
  }
  if (report.recent.length > 0) {
    lines.push("recently used");
    for (const row of report.recent) {
      lines.push(
        `  ${String(row.crate)} ${row.version} ${row.kind} [${row.profile}] ` +
          `${formatBytes(Number(row.size))}, ${row.hits} hits, cached ${row.cached_at}`,
      );
    }
  }
  return lines.join("\n");
}
