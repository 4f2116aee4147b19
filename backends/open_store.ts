/**
 * Builds the configured store levels: local disk alone, or local disk in front of Redis, S3 or a
 * plain HTTP cache. A remote's module is imported only when it is configured, and only when the
 * local level first misses, so a local hit loads nothing else.
 * @module
 */

import { join } from "node:path";
import { createLocalStore } from "./local.ts";
import {
  createStoreLevels,
  type LazyStore,
  type StoreLevels,
  type StoreLevelsOptions,
} from "./levels.ts";
import { HTTP_TOKEN_VARIABLE, type WarmupConfig } from "../src/config/config.ts";
import { redactUrl } from "../src/redact_url.ts";

/** Options for {@linkcode openStore}. */
export interface OpenStoreOptions {
  /** Where the one warning about a failed remote goes; default stderr. */
  warn?: (message: string) => void;
  /** Environment for S3 credentials and the HTTP token; default `Deno.env.toObject()`. */
  env?: Record<string, string | undefined>;
  /** Checks what the remote serves before it is used or kept (see levels.ts). */
  admitRemote?: StoreLevelsOptions["admitRemote"];
}

/**
 * The levels `config` asks for: local disk, with the configured remote (if any) behind it. Close
 * them when done: that waits for remote writes still running.
 *
 * @example
 * ```ts
 * import { openStore } from "./open_store.ts";
 * import { loadConfig } from "../src/config/config.ts";
 * const dir = await Deno.makeTempDir();
 * const { config } = await loadConfig({ cwd: dir, env: { CARGO_HOME: dir, CARGO_WARMUP_DIR: dir } });
 * const store = openStore(config);
 * console.log(store.kind); // "local"
 * await store.close();
 * ```
 */
export function openStore(
  config: WarmupConfig,
  options: OpenStoreOptions = {},
): StoreLevels {
  const local = createLocalStore({ dir: config.dir });
  return createStoreLevels(local, remoteOf(config, options), {
    readOnly: config.readOnly,
    outageFile: join(config.dir, "remote-outage.json"),
    ...(options.warn ? { warn: options.warn } : {}),
    ...(options.admitRemote ? { admitRemote: options.admitRemote } : {}),
  });
}

/**
 * The configured remote as a lazy store, or `undefined` for the local backend. `config` came from
 * loadConfig, which already refused a remote backend without its URL or bucket.
 */
function remoteOf(
  config: WarmupConfig,
  options: OpenStoreOptions = {},
): LazyStore | undefined {
  const recordUse = !config.readOnly;
  switch (config.backend) {
    case "local":
      return undefined;
    case "redis": {
      const { url, prefix, ttlSeconds } = config.redis;
      return {
        kind: "redis",
        location: redactUrl(url),
        async open() {
          const { createRedisStore } = await import("./redis.ts");
          return createRedisStore({
            url,
            prefix,
            recordUse,
            ...(ttlSeconds ? { ttlSeconds } : {}),
          });
        },
      };
    }
    case "s3": {
      const { bucket, region, endpoint, pathStyle, prefix } = config.s3;
      return {
        kind: "s3",
        location: `s3://${bucket}/${prefix}` + (endpoint ? ` at ${new URL(endpoint).origin}` : ""),
        async open() {
          const { createS3Store } = await import("./s3.ts");
          return createS3Store({
            bucket,
            region,
            prefix,
            recordUse,
            ...(endpoint ? { endpoint } : {}),
            ...(pathStyle !== undefined ? { pathStyle } : {}),
            ...(options.env ? { env: options.env } : {}),
          });
        },
      };
    }
    case "http": {
      const { url } = config.http;
      const token = (options.env ?? Deno.env.toObject())[HTTP_TOKEN_VARIABLE];
      return {
        kind: "http",
        location: redactUrl(url),
        async open() {
          const { createHttpStore } = await import("./http.ts");
          return createHttpStore({ url, recordUse, ...(token ? { token } : {}) });
        },
      };
    }
  }
}
