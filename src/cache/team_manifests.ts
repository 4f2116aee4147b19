/**
 * A long-lived cache's team manifests (manifest.ts) at run time. Each build's entries are noted
 * as its calls are decided; when the build's calls settle (cargo has exited, or has made no call
 * for a few seconds: a CI container may go with its build) a writer publishes them to the shared
 * level as the manifest of the build's shape, merged with the one there. A build the local journal
 * cannot predict (a fresh machine: a CI job, a container) asks for its shape's manifest instead.
 * Everything here is background work: a manifest missing, stale, refused or unwritable costs the
 * build nothing but the calls' own reads.
 * @module
 */

import type { Store } from "../../backends/store.ts";
import { BundleError, type EnvelopeOptions } from "../bundle/envelope.ts";
import type { CacheCall } from "./call.ts";
import type { RustcIdentityMemo } from "../index/index_db.ts";
import { rustcIdentity } from "../rustc_identity.ts";
import type { JournalCall } from "../index/journal_tables.ts";
import { type BuildShape, buildShapeOf, cargoArgvOf } from "./build_shape.ts";
import {
  type ManifestEntry,
  manifestNameOf,
  mergeEntries,
  openManifest,
  sealManifest,
} from "./manifest.ts";

/** A build that has made no call for this long has settled, as far as its manifest goes. */
const QUIET_MS = 3_000;
const TICK_MS = 500;
/** Builds followed at once (a daemon serves builds one after another, a few at a time). */
const MAX_BUILDS = 64;

/** What team manifests need of their cache. */
export interface ManifestLevel {
  /** The shared level, opened; rejects or resolves undefined when there is none to reach. */
  remote(): Promise<Store | undefined>;
  /** Whether builds publish: the shared level is writable and this cache a trusted writer. */
  readonly writable: boolean;
  /** Waits for the cache's writes to the shared level in flight: a manifest follows its entries. */
  flush(): Promise<void>;
  /** What manifests are signed with (a writer's) and checked with (every reader's). */
  readonly keys: EnvelopeOptions;
  readonly rustcMemo: RustcIdentityMemo;
  /**
   * What placing each unit of the journal's build `build` in target/ needs, by slot (issue 29's
   * records), joined into the manifest's entries as `place`; none until placing captures them.
   */
  placeRecordsOf?(build: string): ReadonlyMap<string, unknown> | undefined;
}

/** What one build has used, noted for its manifest. */
interface BuildRecord {
  /** The journal's build id (cargo's pid and start). */
  build: string;
  /** Cargo's pid. */
  pid: string;
  shape: Promise<BuildShape | undefined>;
  entries: Map<string, ManifestEntry & { started: number }>;
  /** Entries noted since the last publish. */
  changed: boolean;
  lastCallAt: number;
  publishing: Promise<void> | undefined;
}

/** The result of fetching a build's manifest: its entries, or why it was refused. */
export type FetchedManifest = { entries: ManifestEntry[] } | { refused: string };

/** One cache's team manifests. */
export class TeamManifests {
  readonly #level: ManifestLevel;
  /** By the journal's build id (cargo's pid and start). */
  readonly #builds = new Map<string, BuildRecord>();
  #ticker: ReturnType<typeof setInterval> | undefined;

  constructor(level: ManifestLevel) {
    this.#level = level;
  }

  /**
   * Begins following `request`'s build at its first call: its shape is worked out from that
   * call, as every machine's first call of the same build sees it.
   */
  begin(request: CacheCall): void {
    this.#recordOf(request);
  }

  /**
   * The manifest of `request`'s build shape from the shared level, verified; undefined when there
   * is none, the build has no shape (no Cargo.lock) or the level cannot be read (the build's own
   * calls meet and report that).
   */
  async fetchFor(request: CacheCall): Promise<FetchedManifest | undefined> {
    try {
      const shape = await this.#recordOf(request).shape;
      const remote = shape && await this.#level.remote();
      return remote ? await fetchManifest(remote, shape!, this.#level.keys) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Notes an entry `request`'s build was served or stored (from the journal's record of it). */
  used(request: CacheCall, call: JournalCall): void {
    if (!this.#level.writable || request.localOnly || call.warming) return;
    if (call.key === undefined || (call.outcome !== "hit" && call.outcome !== "miss")) return;
    const record = this.#recordOf(request);
    const slot = call.slot ?? call.key;
    if (!record.entries.has(slot)) {
      const unit = `${call.crate}@${call.version}:${call.kind}:${call.stem ?? ""}`;
      record.entries.set(slot, { key: call.key, slot, unit, started: call.started });
      record.changed = true;
    }
    record.lastCallAt = Date.now();
    if (this.#ticker === undefined) {
      this.#ticker = setInterval(() => void this.publish(), TICK_MS);
      Deno.unrefTimer(this.#ticker);
    }
  }

  /**
   * Publishes the manifests of builds whose calls have settled (every build's, with `all`: the
   * daemon is asked to settle, or closes), and forgets builds that are over. Never rejects.
   */
  async publish(all = false): Promise<void> {
    const now = Date.now();
    const publishing: Promise<void>[] = [];
    for (const [id, record] of this.#builds) {
      const over = !cargoRunning(record.pid);
      if (record.changed && (all || over || now - record.lastCallAt >= QUIET_MS)) {
        record.publishing ??= this.#publishOne(record).finally(() => record.publishing = undefined);
      }
      if (record.publishing) publishing.push(record.publishing);
      if (over && !record.changed && !record.publishing) this.#builds.delete(id);
    }
    if (this.#builds.size === 0) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
    await Promise.all(publishing);
  }

  /** Stops following builds (the cache closes); publishes what is pending first. */
  async close(): Promise<void> {
    await this.publish(true);
    clearInterval(this.#ticker);
    this.#ticker = undefined;
  }

  /** Writes `record`'s manifest, merged with the one on the shared level. Never rejects. */
  async #publishOne(record: BuildRecord): Promise<void> {
    record.changed = false;
    try {
      const shape = await record.shape;
      const remote = shape && await this.#level.remote();
      if (!shape || !remote) return;
      const places = this.#level.placeRecordsOf?.(record.build);
      const entries = [...record.entries.values()]
        .sort((a, b) => a.started - b.started)
        .map(({ started: _started, ...entry }) => {
          const place = places?.get(entry.slot);
          return place === undefined ? entry : { ...entry, place };
        });
      // Its entries' own writes first: a reader must not find the manifest before them.
      await this.#level.flush();
      const name = manifestNameOf(shape);
      const stored = await remote.get(name);
      const older = stored &&
        await openManifest(stored, shape, this.#level.keys).then((m) => m.entries, () => []);
      const merged = mergeEntries(entries, older);
      if (older && sameEntries(merged, older)) return;
      const manifest = { shape, writtenAt: Date.now(), entries: merged };
      await remote.put(name, await sealManifest(manifest, this.#level.keys));
    } catch {
      // A manifest is worth having, never a failure: the next build of the shape publishes again.
    }
  }

  /** The record of `request`'s build, begun at its first call (which works out its shape). */
  #recordOf(request: CacheCall): BuildRecord {
    const { build } = request.builds.journalBuildOf(request);
    let record = this.#builds.get(build);
    if (record === undefined) {
      if (this.#builds.size >= MAX_BUILDS) {
        const [oldest] = this.#builds.keys();
        this.#builds.delete(oldest!);
      }
      record = {
        build,
        pid: request.buildId,
        shape: shapeOf(request, this.#level.rustcMemo).catch(() => undefined),
        entries: new Map(),
        changed: false,
        lastCallAt: Date.now(),
        publishing: undefined,
      };
      this.#builds.set(build, record);
    }
    return record;
  }
}

/**
 * The manifest of `shape` on `remote`, verified with `keys`: its entries, why it was refused, or
 * undefined when there is none or the remote cannot be read (whoever reads entries meets that).
 * Never rejects.
 */
export async function fetchManifest(
  remote: Store,
  shape: BuildShape,
  keys: EnvelopeOptions,
): Promise<FetchedManifest | undefined> {
  try {
    const bytes = await remote.get(manifestNameOf(shape));
    if (bytes === undefined) return undefined;
    return { entries: (await openManifest(bytes, shape, keys)).entries };
  } catch (error) {
    if (error instanceof BundleError) return { refused: error.message };
    return undefined;
  }
}

/** The shape of `request`'s build (build_shape.ts); undefined without a Cargo.lock. */
async function shapeOf(
  request: CacheCall,
  memo: RustcIdentityMemo,
): Promise<BuildShape | undefined> {
  const { lockfile, warming } = request.builds.journalBuildOf(request);
  if (lockfile === "" || warming) return undefined;
  const rustc = await rustcIdentity(request.rustc, request.env, memo);
  return buildShapeOf(lockfile, rustc.identity, cargoArgvOf(request.buildId) ?? [], request.env);
}

/** Whether two manifests' entries are the same, in the same order: then there is none to write. */
function sameEntries(a: readonly ManifestEntry[], b: readonly ManifestEntry[]): boolean {
  return a.length === b.length &&
    a.every((entry, i) =>
      entry.key === b[i]!.key && entry.slot === b[i]!.slot &&
      JSON.stringify(entry.place) === JSON.stringify(b[i]!.place)
    );
}

/**
 * Whether cargo's process `pid` still runs. (settled_store.ts asks the same of its builds; a pid
 * reused within seconds is not worth a read of its start time.)
 */
function cargoRunning(pid: string): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}
