/**
 * The Redis store: each bundle is one string value under `<prefix><key>`, and a sorted set
 * `<prefix>lru` scores every key by its last use so that gc can evict the oldest first. A reserved
 * name's value lives under `<prefix><name>` too, outside the sorted set.
 * Imported only when the Redis backend is configured.
 * @module
 */

import type { Store, StoredEntry, StoreHealth } from "./store.ts";
import { StoreUnavailableError } from "./store.ts";
import {
  replyText,
  RespConnection,
  RespConnectionError,
  RespServerError,
  type RespValue,
} from "./_resp.ts";
import { errorMessage } from "../src/error_message.ts";
import { assertStoreName, isCacheKey, isReservedName } from "./local_layout.ts";
import { redactUrl } from "../src/redact_url.ts";

/** Options for {@linkcode createRedisStore}. */
export interface RedisStoreOptions {
  /** `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS. */
  url: string;
  /** Prepended to every Redis key; default `"cargo-warmup:"`. */
  prefix?: string;
  /** When set, bundles expire this many seconds after their last use. */
  ttlSeconds?: number;
  /** Record each read's time for LRU gc; read-only clients turn this off. Default true. */
  recordUse?: boolean;
  /** Default 1500 ms. */
  connectTimeoutMs?: number;
  /** Milliseconds without a byte from the server before a command fails; default 10000. */
  idleTimeoutMs?: number;
}

const SCAN_COUNT = 1000;

/**
 * A store in Redis. The connection opens on first use; `close()` releases it.
 *
 * @example
 * ```ts ignore
 * import { createRedisStore } from "./redis.ts";
 * const store = createRedisStore({ url: "redis://127.0.0.1:6379/0", ttlSeconds: 7 * 86400 });
 * await store.put("a".repeat(64), new Uint8Array([1, 2, 3]));
 * console.log((await store.get("a".repeat(64)))?.length); // 3
 * await store.close();
 * ```
 */
export function createRedisStore(options: RedisStoreOptions): Store {
  const url = new URL(options.url);
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new TypeError(
      `Invalid Redis URL "${redactUrl(options.url)}": expected redis:// or rediss://`,
    );
  }
  const location = redactUrl(options.url);
  const prefix = options.prefix ?? "cargo-warmup:";
  const lruKey = `${prefix}lru`;
  const recordUse = options.recordUse ?? true;
  const db = url.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db)) {
    throw new TypeError(`Invalid Redis URL "${location}": the database must be a number`);
  }
  let connecting: Promise<RespConnection> | undefined;

  const redisKey = (key: string) => {
    assertStoreName(key);
    return `${prefix}${key}`;
  };
  /** Only bundles are scored by last use: gc evicts bundles. */
  const scored = (key: string) => isCacheKey(key);

  /** Opens the connection and pipelines AUTH and SELECT in front of the first command. */
  function connection(): Promise<RespConnection> {
    connecting ??= (async () => {
      const conn = await RespConnection.open({
        hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: Number(url.port || 6379),
        tls: url.protocol === "rediss:",
        connectTimeoutMs: options.connectTimeoutMs ?? 1500,
        idleTimeoutMs: options.idleTimeoutMs ?? 10_000,
      });
      const handshake: Promise<RespValue>[] = [];
      const password = decodeURIComponent(url.password);
      const username = decodeURIComponent(url.username);
      if (password !== "" || username !== "") {
        handshake.push(
          conn.command(username !== "" ? ["AUTH", username, password] : ["AUTH", password]),
        );
      }
      if (db !== "" && db !== "0") handshake.push(conn.command(["SELECT", db]));
      try {
        await Promise.all(handshake);
      } catch (error) {
        conn.close();
        throw error;
      }
      return conn;
    })();
    return connecting;
  }

  /** Runs commands pipelined, mapping failures to StoreUnavailableError. */
  async function run(commands: (string | number | Uint8Array)[][]): Promise<RespValue[]> {
    try {
      let conn = await connection();
      // A long-lived process (the daemon) outlives connections: the idle timeout or a restarted
      // server closes them. Reconnect once; a failure then is an outage.
      if (conn.closed) {
        connecting = undefined;
        conn = await connection();
      }
      return await Promise.all(commands.map((args) => conn.command(args)));
    } catch (error) {
      // The next call (the tiered store skips the rest of this build) connects afresh.
      connecting = undefined;
      throw unavailable(error);
    }
  }

  function unavailable(error: unknown): StoreUnavailableError {
    if (error instanceof RespServerError) {
      const detail = /^(WRONGPASS|NOAUTH|NOPERM)/.test(error.message)
        ? `authentication failed: ${error.message.replace(/\.$/, "")}`
        : error.message;
      return new StoreUnavailableError(location, detail, { cause: error });
    }
    if (error instanceof RespConnectionError) {
      return new StoreUnavailableError(location, error.message, { cause: error });
    }
    return new StoreUnavailableError(location, String(error), { cause: error });
  }

  const expiry = options.ttlSeconds ? ["EX", options.ttlSeconds] : [];

  return {
    kind: "redis",
    location,

    async get(key) {
      const name = redisKey(key);
      const commands: (string | number)[][] = [["GET", name]];
      if (recordUse) {
        // XX: a miss must not leave a member behind for a key that does not exist.
        if (scored(key)) commands.push(["ZADD", lruKey, "XX", Date.now(), key]);
        if (options.ttlSeconds) commands.push(["EXPIRE", name, options.ttlSeconds]);
      }
      const [value] = await run(commands);
      return value instanceof Uint8Array ? value : undefined;
    },

    async put(key, bundle) {
      const name = redisKey(key);
      const set = ["SET", name, bundle, ...expiry];
      await run(scored(key) ? [set, ["ZADD", lruKey, Date.now(), key]] : [set]);
    },

    async has(key) {
      const [count] = await run([["EXISTS", redisKey(key)]]);
      return count === 1;
    },

    async delete(key) {
      await run([["DEL", redisKey(key)], ["ZREM", lruKey, key]]);
    },

    async list() {
      const startedAt = Date.now();
      const unique = await scanNames(isCacheKey, "");
      const replies = await run(
        unique.flatMap((key) => [["STRLEN", `${prefix}${key}`], ["ZSCORE", lruKey, key]]),
      );
      const entries: StoredEntry[] = [];
      unique.forEach((key, i) => {
        const size = replies[2 * i];
        const score = replyText(replies[2 * i + 1] ?? null);
        // A key that expired between SCAN and STRLEN reads as length 0.
        if (typeof size === "number" && size > 0) {
          entries.push({ key, size, lastUsed: score === undefined ? 0 : Number(score) });
        }
      });
      await pruneExpiredMembers(new Set(entries.map((entry) => entry.key)), startedAt);
      return entries;
    },

    async listReserved(word) {
      const names = await scanNames(
        (name) => isReservedName(name) && name.startsWith(`${word}-`),
        `${word}-`,
      );
      const sizes = await run(names.map((name) => ["STRLEN", `${prefix}${name}`]));
      // Redis keeps no write time: a reserved name's is unknown (0), its size is what counts.
      return names.flatMap((key, i) => {
        const size = sizes[i];
        return typeof size === "number" && size > 0 ? [{ key, size, lastUsed: 0 }] : [];
      });
    },

    async health(): Promise<StoreHealth> {
      const started = performance.now();
      try {
        await run([["PING"]]);
        return { ok: true, detail: `reachable, ${Math.round(performance.now() - started)} ms` };
      } catch (error) {
        return { ok: false, detail: errorMessage(error) };
      }
    },

    async close() {
      const pending = connecting;
      connecting = undefined;
      if (pending) (await pending.catch(() => undefined))?.close();
    },
  };

  /**
   * The names under the prefix and then `start` that `wanted` accepts (without the prefix), each
   * once.
   */
  async function scanNames(wanted: (name: string) => boolean, start: string): Promise<string[]> {
    const names: string[] = [];
    let cursor = "0";
    const match = `${escapeGlob(prefix + start)}*`;
    do {
      const [reply] = await run([["SCAN", cursor, "MATCH", match, "COUNT", SCAN_COUNT]]);
      const [next, batch] = Array.isArray(reply) ? reply : [];
      cursor = replyText(next ?? null) ?? "0";
      for (const item of Array.isArray(batch) ? batch : []) {
        const name = replyText(item)?.slice(prefix.length);
        if (name !== undefined && wanted(name)) names.push(name);
      }
    } while (cursor !== "0");
    return [...new Set(names)];
  }

  /** Keys that expired by TTL leave their LRU member behind; drop those. */
  async function pruneExpiredMembers(live: Set<string>, before: number): Promise<void> {
    const [count] = await run([["ZCARD", lruKey]]);
    if (typeof count !== "number" || count <= live.size) return;
    // Members scored after the scan began may belong to keys written since: keep those.
    const [members] = await run([["ZRANGEBYSCORE", lruKey, "-inf", before]]);
    const stale = (Array.isArray(members) ? members : [])
      .map((member) => replyText(member) ?? "")
      .filter((member) => !live.has(member));
    for (let i = 0; i < stale.length; i += SCAN_COUNT) {
      await run([["ZREM", lruKey, ...stale.slice(i, i + SCAN_COUNT)]]);
    }
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}
