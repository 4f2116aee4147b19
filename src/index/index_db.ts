/**
 * The SQLite index beside the bundles (`index.db`): what is cached (table `artefacts`, queryable
 * with the sqlite3 CLI), counters for `status`, and memos that keep hashing off the hit path.
 * Many dispatchers open it at once under `cargo -j`, so it runs in WAL mode with a busy timeout.
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { join } from "node:path";
import { JOURNAL_SCHEMA, JournalTables, type Recipe } from "./journal_tables.ts";

// 2: the build journal's tables (journal_tables.ts).
const SCHEMA_VERSION = 2;
// Long enough for the short transactions of a parallel build, short enough that a lock held by
// something else costs a build seconds, once (see session.ts), not minutes.
const BUSY_TIMEOUT_MS = 3_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS artefacts (
  key TEXT PRIMARY KEY,
  crate TEXT NOT NULL,
  version TEXT NOT NULL,
  kind TEXT NOT NULL,
  crate_types TEXT NOT NULL,
  source TEXT NOT NULL,
  features TEXT NOT NULL,
  profile TEXT NOT NULL,
  target TEXT NOT NULL,
  rustc TEXT NOT NULL,
  size INTEGER NOT NULL,
  compile_ms INTEGER NOT NULL,
  cached_at TEXT NOT NULL,
  last_used TEXT NOT NULL,
  hits INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS artefacts_last_used ON artefacts(last_used);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS file_digests (
  path TEXT PRIMARY KEY,
  stat TEXT NOT NULL,
  digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rustc_identities (
  probe TEXT PRIMARY KEY,
  identity TEXT NOT NULL,
  host TEXT NOT NULL,
  release TEXT NOT NULL,
  recorded_at TEXT NOT NULL
);
`;

/** One row of `artefacts`, as the dispatcher records it. */
export interface ArtefactRow {
  key: string;
  crate: string;
  version: string;
  kind: string;
  crateTypes: string;
  source: string;
  features: string;
  profile: string;
  target: string;
  rustc: string;
  size: number;
  compileMs: number;
  /** The key's inputs, kept for `explain` while the entry is. */
  recipe?: Recipe;
}

/** A remembered `rustc -vV` identity. */
export interface RustcIdentityRow {
  identity: string;
  host: string;
  release: string;
}

/** Where identities are remembered between dispatcher runs: the index, and a long-lived cache's memory. */
export interface RustcIdentityMemo {
  lookup(probe: string): RustcIdentityRow | undefined;
  remember(probe: string, row: RustcIdentityRow): void;
}

/** How SQLite describes a file that is not a database, or a damaged one. */
const BROKEN = /not a database|malformed|corrupt/i;

/** Whether `error` says the index file itself is unreadable (rather than locked or full). */
export function isBrokenIndexError(error: unknown): boolean {
  return BROKEN.test(String(error));
}

/**
 * Opens the index of `cacheDir`. An index SQLite cannot read (garbage, a damaged file) is set
 * aside with {@linkcode setAsideIndex} and a new one created; `told` hears which file it was and
 * where it went. Other faults (a lock, a full disk) throw.
 *
 * @example
 * ```ts
 * import { openIndex } from "./index_db.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/index.db`, "not a database, really: garbage".repeat(100));
 * const index = openIndex(dir, (message) => console.log(message.startsWith("cache index")));
 * index.close(); // a new index; the garbage is kept beside it as index.db.broken-…
 * ```
 */
export function openIndex(cacheDir: string, told?: (message: string) => void): IndexDb {
  try {
    return new IndexDb(cacheDir);
  } catch (error) {
    if (!isBrokenIndexError(error)) {
      const path = join(cacheDir, "index.db");
      throw new Error(`Cannot open cache index "${path}": ${String(error)}`, { cause: error });
    }
    const aside = setAsideIndex(cacheDir);
    told?.(
      `cache index ${join(cacheDir, "index.db")} is unreadable (${String(error)}); ` +
        `set aside as ${aside}, starting a new one`,
    );
    return new IndexDb(cacheDir);
  }
}

/**
 * Renames an unreadable `index.db` (with its `-wal` and `-shm`) to `index.db.broken-<time>`, kept
 * for a look, never read again; resolves to the new name. Another process may have moved it first.
 */
export function setAsideIndex(cacheDir: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const aside = join(cacheDir, `index.db.broken-${stamp}`);
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      Deno.renameSync(join(cacheDir, `index.db${suffix}`), `${aside}${suffix}`);
    } catch {
      // not there, or set aside by another process already
    }
  }
  return aside;
}

/**
 * The open index. Every method may throw (a locked or broken database); the dispatcher wraps it
 * so that such a failure costs the cache, never the build.
 */
export class IndexDb {
  readonly #db: DatabaseSync;
  /** Prepared once per process: a hit looks up a digest for every source file of its crate. */
  readonly #statements = new Map<string, StatementSync>();
  /** The last builds' calls and the stored entries' recipes (for `explain` and `report`). */
  readonly journal: JournalTables;

  constructor(cacheDir: string) {
    Deno.mkdirSync(cacheDir, { recursive: true });
    this.#db = new DatabaseSync(join(cacheDir, "index.db"), { timeout: BUSY_TIMEOUT_MS });
    this.journal = new JournalTables(this.#db, (sql) => this.#prepare(sql));
    // On a fresh cache every dispatcher of a parallel build opens the index at once; creating
    // it, switching it to WAL and WAL recovery take locks the busy timeout does not always wait
    // for. The losers retry briefly instead of giving up the index for the build, within one
    // busy timeout in all: a lock that outlasts it is a fault, not a race.
    const deadline = Date.now() + BUSY_TIMEOUT_MS;
    for (;;) {
      try {
        this.#prepareConnection();
        return;
      } catch (error) {
        if (Date.now() >= deadline || !/locked|busy/i.test(String(error))) {
          this.#db.close();
          throw error;
        }
        sleepSync(10 + Math.random() * 20);
      }
    }
  }

  #prepareConnection(): void {
    this.#db.exec("PRAGMA busy_timeout = " + BUSY_TIMEOUT_MS);
    const version = this.#db.prepare("PRAGMA user_version").get() as { user_version: number };
    if (version.user_version !== SCHEMA_VERSION) {
      this.#db.exec("PRAGMA journal_mode = WAL");
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        this.#db.exec(SCHEMA + JOURNAL_SCHEMA);
        this.#db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
        this.#db.exec("COMMIT");
      } catch (error) {
        this.#rollback();
        throw error;
      }
    }
    // Losing the last transactions on power loss only costs cache entries, never correctness.
    this.#db.exec("PRAGMA synchronous = NORMAL");
  }

  close(): void {
    this.#db.close();
  }

  /** Rolls back, unless SQLite already did (a full disk ends the transaction itself). */
  #rollback(): void {
    try {
      this.#db.exec("ROLLBACK");
    } catch {
      // no transaction left: the error that ended it is the one worth reporting
    }
  }

  #prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Records a stored bundle (replacing an older row with the same key). */
  recordArtefact(row: ArtefactRow): void {
    this.#db.prepare(
      `INSERT OR REPLACE INTO artefacts (key, crate, version, kind, crate_types, source, features,
         profile, target, rustc, size, compile_ms, cached_at, last_used, hits)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, datetime('now'), datetime('now'),
         COALESCE((SELECT hits FROM artefacts WHERE key = ?), 0))`,
    ).run(
      row.key,
      row.crate,
      row.version,
      row.kind,
      row.crateTypes,
      row.source,
      row.features,
      row.profile,
      row.target,
      row.rustc,
      row.size,
      row.compileMs,
      row.key,
    );
    if (row.recipe) this.journal.recordEntryRecipe(row.key, row.recipe);
  }

  /** Counts a served hit on an artefact; returns its recorded compile time, if known. */
  recordHit(key: string): number | undefined {
    const row = this.#db.prepare(
      `UPDATE artefacts SET hits = hits + 1, last_used = datetime('now') WHERE key = ?
       RETURNING compile_ms`,
    ).get(key) as { compile_ms: number } | undefined;
    return row?.compile_ms;
  }

  /** Counts many served hits in one transaction (the daemon writes them in batches). */
  recordHits(keys: readonly string[]): void {
    if (keys.length === 0) return;
    const statement = this.#prepare(
      "UPDATE artefacts SET hits = hits + 1, last_used = datetime('now') WHERE key = ?",
    );
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const key of keys) statement.run(key);
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#rollback();
      throw error;
    }
  }

  forgetArtefact(key: string): void {
    this.#db.prepare("DELETE FROM artefacts WHERE key = ?").run(key);
    this.journal.forgetRecipe(key);
  }

  /** Adds to named counters in one transaction. */
  addCounters(deltas: Record<string, number>): void {
    const statement = this.#db.prepare(
      `INSERT INTO counters (name, value) VALUES (?, ?)
       ON CONFLICT(name) DO UPDATE SET value = value + excluded.value`,
    );
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const [name, delta] of Object.entries(deltas)) statement.run(name, delta);
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#rollback();
      throw error;
    }
  }

  counters(): Record<string, number> {
    const rows = this.#db.prepare("SELECT name, value FROM counters").all() as Array<
      { name: string; value: number }
    >;
    return Object.fromEntries(rows.map((row) => [row.name, row.value]));
  }

  /** A memoised digest of the file at `path`, valid only while its stat signature is `stat`. */
  fileDigest(path: string, stat: string): string | undefined {
    const row = this.#prepare("SELECT stat, digest FROM file_digests WHERE path = ?").get(
      path,
    ) as { stat: string; digest: string } | undefined;
    return row?.stat === stat ? row.digest : undefined;
  }

  /** Records many digests in one transaction (one WAL commit instead of one per file). */
  rememberFileDigests(
    rows: ReadonlyArray<readonly [path: string, stat: string, digest: string]>,
  ): void {
    if (rows.length === 0) return;
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const [path, stat, digest] of rows) this.rememberFileDigest(path, stat, digest);
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#rollback();
      throw error;
    }
  }

  rememberFileDigest(path: string, stat: string, digest: string): void {
    this.#prepare("INSERT OR REPLACE INTO file_digests (path, stat, digest) VALUES (?, ?, ?)")
      .run(path, stat, digest);
  }

  rustcIdentity(probe: string): RustcIdentityRow | undefined {
    return this.#prepare(
      "SELECT identity, host, release FROM rustc_identities WHERE probe = ?",
    ).get(probe) as RustcIdentityRow | undefined;
  }

  rememberRustcIdentity(probe: string, row: RustcIdentityRow): void {
    this.#db.prepare(
      `INSERT OR REPLACE INTO rustc_identities (probe, identity, host, release, recorded_at)
       VALUES (?, ?, ?, ?, datetime('now'))`,
    ).run(probe, row.identity, row.host, row.release);
  }

  /** Rows for `status` and re-warming, most recently used first. */
  artefacts(limit = -1): Array<Record<string, string | number>> {
    return this.#db.prepare(
      `SELECT key, crate, version, kind, crate_types, source, features, profile, target, rustc,
         size, compile_ms, cached_at, last_used, hits
       FROM artefacts ORDER BY last_used DESC LIMIT ?`,
    ).all(limit) as Array<Record<string, string | number>>;
  }

  /** Keeps only the rows whose keys are in `present` (after gc or a store wiped by hand). */
  retainArtefacts(present: ReadonlySet<string>): number {
    const keys = this.#db.prepare("SELECT key FROM artefacts").all() as Array<{ key: string }>;
    const remove = this.#db.prepare("DELETE FROM artefacts WHERE key = ?");
    let removed = 0;
    for (const { key } of keys) {
      if (!present.has(key)) {
        remove.run(key);
        removed++;
      }
    }
    if (removed > 0) this.journal.dropOrphanRecipes();
    return removed;
  }
}

/**
 * Milliseconds since the epoch of a time the index wrote (`datetime('now')`: UTC without a zone
 * marker); 0 for text that is not a time.
 */
export function parseIndexTime(text: string): number {
  const iso = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(text) ? `${text.replace(" ", "T")}Z` : text;
  const time = Date.parse(iso);
  return Number.isNaN(time) ? 0 : time;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
