/**
 * The build journal's tables in the index: the last builds (`builds`), every call of each
 * (`build_calls`: when, how long, served or compiled and why, and for a miss the key's inputs),
 * and the key's inputs of each stored entry (`entry_recipes`). `explain` compares a miss's inputs
 * with the nearest entry's; `report` draws a build's calls. Bounded: the last {@linkcode MAX_BUILDS}
 * builds, and recipes only while their entry is in the index.
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import { zstdCompressSync, zstdDecompressSync } from "node:zlib";

/**
 * How many of the user's builds the journal keeps, and apart from them, how many of warm-ups' (an
 * `init` runs many builds, which must not push out the user's).
 */
export const MAX_BUILDS = 20;

/** Appended to the index's schema. */
export const JOURNAL_SCHEMA = `
CREATE TABLE IF NOT EXISTS builds (
  id TEXT PRIMARY KEY,
  project TEXT NOT NULL,
  lockfile TEXT NOT NULL,
  warming INTEGER NOT NULL,
  started INTEGER NOT NULL,
  ended INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS builds_started ON builds(started);
CREATE TABLE IF NOT EXISTS build_calls (
  build TEXT NOT NULL,
  started INTEGER NOT NULL,
  ms REAL NOT NULL,
  crate TEXT NOT NULL,
  version TEXT NOT NULL,
  kind TEXT NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT,
  key TEXT,
  slot TEXT,
  stem TEXT,
  rustc_ms INTEGER,
  saved_ms INTEGER,
  bytes INTEGER,
  recipe BLOB
);
CREATE INDEX IF NOT EXISTS build_calls_build ON build_calls(build);
CREATE TABLE IF NOT EXISTS entry_recipes (
  key TEXT PRIMARY KEY,
  recipe BLOB NOT NULL
);
`;

/** One call of a build, as the journal keeps it. */
export interface JournalCall {
  /** The build: cargo's pid and its start time. */
  build: string;
  /** The build's workspace root (where cargo ran, when it has none). */
  project: string;
  /** A digest of the project's Cargo.lock ("" without one): another checkout of the same graph. */
  lockfile: string;
  /** A warm-up's build, not the user's. */
  warming: boolean;
  /** When the call started, ms since the epoch. */
  started: number;
  ms: number;
  crate: string;
  version: string;
  /** `lib`, `proc-macro`, `bin`, `check`, `build-script`, `build-run` (its run), or `other`. */
  kind: string;
  outcome: "hit" | "miss" | "not-cacheable";
  reason?: string;
  key?: string;
  /** On a hit, the slot that served it (the key, or one of its variants). */
  slot?: string;
  /** The artefacts' file stem (crate name and `-C extra-filename`), how dependents name them. */
  stem?: string;
  rustcMs?: number;
  /** On a hit, the compile time it saved (the entry's compile time less the hit's). */
  savedMs?: number;
  /** On a hit, the bytes written into the build. */
  bytes?: number;
  /** On a miss, the key's inputs (see recipe.ts). */
  recipe?: Recipe;
}

/** A key's inputs: the JSON the key hashes, plus what dependents' artefacts were (by stem). */
export interface Recipe {
  /** What the key hashed. */
  inputs: Record<string, unknown>;
  /** Each `--extern` name's artefact stem, to follow a differing dependency down. */
  externStems?: Record<string, string>;
}

/** Reads and writes the journal's tables on one open index. */
export class JournalTables {
  readonly #db: DatabaseSync;
  /** The index's statement cache (index_db.ts). */
  readonly #prepare: (sql: string) => StatementSync;

  constructor(db: DatabaseSync, prepare: (sql: string) => StatementSync) {
    this.#db = db;
    this.#prepare = prepare;
  }

  /** Appends calls (one transaction), opening their builds and dropping the oldest beyond the limit. */
  recordCalls(calls: readonly JournalCall[]): void {
    if (calls.length === 0) return;
    const insertBuild = this.#prepare(
      `INSERT INTO builds (id, project, lockfile, warming, started, ended) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET started = min(started, excluded.started),
         ended = max(ended, excluded.ended)`,
    );
    const insertCall = this.#prepare(
      `INSERT INTO build_calls (build, started, ms, crate, version, kind, outcome, reason, key,
         slot, stem, rustc_ms, saved_ms, bytes, recipe)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const call of calls) {
        insertBuild.run(
          call.build,
          call.project,
          call.lockfile,
          call.warming ? 1 : 0,
          Math.round(call.started),
          Math.round(call.started + call.ms),
        );
        insertCall.run(
          call.build,
          Math.round(call.started),
          Math.round(call.ms * 10) / 10,
          call.crate,
          call.version,
          call.kind,
          call.outcome,
          call.reason ?? null,
          call.key ?? null,
          call.slot ?? null,
          call.stem ?? null,
          call.rustcMs ?? null,
          call.savedMs ?? null,
          call.bytes ?? null,
          call.recipe ? packRecipe(call.recipe) : null,
        );
      }
      this.#dropOldBuilds();
      this.#db.exec("COMMIT");
    } catch (error) {
      try {
        this.#db.exec("ROLLBACK");
      } catch {
        // SQLite ended the transaction itself
      }
      throw error;
    }
  }

  /** Keeps the last MAX_BUILDS of the user's builds and as many of the warm-ups' apart. */
  #dropOldBuilds(): void {
    const old = this.#prepare(
      `SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY warming ORDER BY started DESC)
         AS newer FROM builds) WHERE newer > ${MAX_BUILDS}`,
    ).all() as Array<{ id: string }>;
    for (const { id } of old) {
      this.#prepare("DELETE FROM build_calls WHERE build = ?").run(id);
      this.#prepare("DELETE FROM builds WHERE id = ?").run(id);
    }
  }

  /** Keeps the recipe of a stored entry. */
  recordEntryRecipe(key: string, recipe: Recipe): void {
    this.#prepare("INSERT OR REPLACE INTO entry_recipes (key, recipe) VALUES (?, ?)")
      .run(key, packRecipe(recipe));
  }

  /** Forgets the recipe of the entry `key`. */
  forgetRecipe(key: string): void {
    this.#prepare("DELETE FROM entry_recipes WHERE key = ?").run(key);
  }

  /** Forgets the recipes of entries no longer in the index. */
  dropOrphanRecipes(): void {
    this.#prepare("DELETE FROM entry_recipes WHERE key NOT IN (SELECT key FROM artefacts)").run();
  }

  /** The kept builds, newest first; only the user's unless `warming`. */
  builds(options: { project?: string; warming?: boolean } = {}): JournalBuild[] {
    const rows = this.#prepare(
      `SELECT id, project, lockfile, warming, started, ended, (SELECT count(*) FROM build_calls
         WHERE build = builds.id) AS calls FROM builds ORDER BY started DESC`,
    ).all() as Array<Omit<JournalBuild, "warming"> & { warming: number }>;
    return rows
      .filter((row) =>
        (options.warming || row.warming === 0) &&
        (options.project === undefined || row.project === options.project)
      )
      .map((row) => ({ ...row, warming: row.warming === 1 }));
  }

  /**
   * The entries the last user build of `build`'s project was served or stored, in the order it
   * asked for them: what this build will probably ask for. A project never built before is
   * predicted from the last build of the same Cargo.lock (a new worktree, a CI checkout).
   */
  entriesOfLastBuild(
    build: Pick<JournalCall, "build" | "project" | "lockfile">,
  ): Array<{ slot: string; key: string }> {
    const last = (this.#prepare(
      `SELECT id FROM builds WHERE warming = 0 AND id != ? AND (project = ? OR lockfile = ?)
       ORDER BY project = ? DESC, started DESC LIMIT 1`,
    ).get(build.build, build.project, build.lockfile || "-", build.project) as
      | { id: string }
      | undefined)?.id;
    if (last === undefined) return [];
    return this.#prepare(
      `SELECT coalesce(slot, key) AS slot, key FROM build_calls WHERE build = ?
       AND outcome IN ('hit', 'miss') AND key IS NOT NULL ORDER BY started, rowid`,
    ).all(last) as Array<{ slot: string; key: string }>;
  }

  /** Every call of `build`, in the order they started. */
  callsOf(build: string): JournalCall[] {
    const rows = this.#prepare(
      `SELECT c.*, b.project, b.lockfile, b.warming FROM build_calls c JOIN builds b ON b.id = c.build
       WHERE c.build = ? ORDER BY c.started, c.rowid`,
    ).all(build) as unknown as CallRow[];
    return rows.map(callOfRow);
  }

  /**
   * Stored entries of one crate, version and kind with their recipes (those whose recipe is
   * kept), newest first.
   */
  entriesLike(
    crate: string,
    version: string,
    kind: string,
  ): Array<{ key: string; recipe: Recipe }> {
    const rows = this.#prepare(
      `SELECT a.key, r.recipe FROM artefacts a JOIN entry_recipes r ON r.key = a.key
       WHERE a.crate = ? AND a.version = ? AND a.kind = ? ORDER BY a.cached_at DESC`,
    ).all(crate, version, kind) as Array<{ key: string; recipe: Uint8Array }>;
    return rows.map((row) => ({ key: row.key, recipe: unpackRecipe(row.recipe) }));
  }

  /** How many entries of a crate (of one version) the index holds. */
  countEntriesOf(crate: string, version?: string): number {
    const names = [crate, crate.replaceAll("-", "_")];
    const row =
      (version === undefined
        ? this.#prepare("SELECT count(*) AS n FROM artefacts WHERE crate IN (?, ?)").get(...names)
        : this.#prepare("SELECT count(*) AS n FROM artefacts WHERE crate IN (?, ?) AND version = ?")
          .get(...names, version)) as { n: number };
    return row.n;
  }

  /** How many entries of one crate, version and kind the index holds, recipe or not. */
  countEntriesLike(crate: string, version: string, kind: string): number {
    const row = this.#prepare(
      "SELECT count(*) AS n FROM artefacts WHERE crate = ? AND version = ? AND kind = ?",
    ).get(crate, version, kind) as { n: number };
    return row.n;
  }
}

/** A kept build. */
export interface JournalBuild {
  id: string;
  project: string;
  lockfile: string;
  warming: boolean;
  started: number;
  ended: number;
  calls: number;
}

interface CallRow {
  build: string;
  project: string;
  lockfile: string;
  warming: number;
  started: number;
  ms: number;
  crate: string;
  version: string;
  kind: string;
  outcome: JournalCall["outcome"];
  reason: string | null;
  key: string | null;
  slot: string | null;
  stem: string | null;
  rustc_ms: number | null;
  saved_ms: number | null;
  bytes: number | null;
  recipe: Uint8Array | null;
}

function callOfRow(row: CallRow): JournalCall {
  const call: JournalCall = {
    build: row.build,
    project: row.project,
    lockfile: row.lockfile,
    warming: row.warming === 1,
    started: row.started,
    ms: row.ms,
    crate: row.crate,
    version: row.version,
    kind: row.kind,
    outcome: row.outcome,
  };
  if (row.reason !== null) call.reason = row.reason;
  if (row.key !== null) call.key = row.key;
  if (row.slot !== null) call.slot = row.slot;
  if (row.stem !== null) call.stem = row.stem;
  if (row.rustc_ms !== null) call.rustcMs = row.rustc_ms;
  if (row.saved_ms !== null) call.savedMs = row.saved_ms;
  if (row.bytes !== null) call.bytes = row.bytes;
  if (row.recipe !== null) call.recipe = unpackRecipe(row.recipe);
  return call;
}

// A recipe is a few kilobytes of JSON (the rustc identity, every extern's digest); compressed it
// is a fraction of that, and it is only written on a miss.
function packRecipe(recipe: Recipe): Uint8Array {
  return zstdCompressSync(new TextEncoder().encode(JSON.stringify(recipe)));
}

function unpackRecipe(bytes: Uint8Array): Recipe {
  return JSON.parse(new TextDecoder().decode(zstdDecompressSync(bytes))) as Recipe;
}
