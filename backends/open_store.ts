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
import { redactUrl } from "../src/redact_url.ts";

/**
 * The environment variable of the HTTP cache's bearer token. Like AWS credentials it is not a
 * setting: a token never belongs in a `.cargo/config.toml` that may be committed.
 */
export const HTTP_TOKEN_VARIABLE = "CARGO_WARMUP_HTTP_TOKEN";

/**
 * What the levels are built from: the configuration's store settings, handed down by whoever
 * read the configuration (src/config/), with the remote's own settings where it has one.
 */
export type StoreSettings =
  & {
    /** The local cache directory. */
    dir: string;
    /** Read from the remote, never write to it. */
    readOnly: boolean;
  }
  & (
    | { backend: "local" }
    | { backend: "redis"; redis: { url: string; prefix: string; ttlSeconds?: number | undefined } }
    | {
      backend: "s3";
      s3: {
        bucket: string;
        region: string;
        endpoint?: string | undefined;
        pathStyle?: boolean | undefined;
        prefix: string;
      };
    }
    | { backend: "http"; http: { url: string } }
  );

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
 * The levels `settings` ask for: local disk, with the configured remote (if any) behind it. Close
 * them when done: that waits for remote writes still running.
 *
 * @example
 * ```ts
 * import { openStore } from "./open_store.ts";
 * const dir = await Deno.makeTempDir();
 * const store = openStore({ backend: "local", dir, readOnly: false });
 * console.log(store.kind); // "local"
 * await store.close();
 * ```
 */
export function openStore(
  settings: StoreSettings,
  options: OpenStoreOptions = {},
): StoreLevels {
  const local = createLocalStore({ dir: settings.dir });
  return createStoreLevels(local, remoteOf(settings, options), {
    readOnly: settings.readOnly,
    outageFile: join(settings.dir, "remote-outage.json"),
    ...(options.warn ? { warn: options.warn } : {}),
    ...(options.admitRemote ? { admitRemote: options.admitRemote } : {}),
  });
}

/** The configured remote as a lazy store, or `undefined` for the local backend. */
function remoteOf(
  settings: StoreSettings,
  options: OpenStoreOptions = {},
): LazyStore | undefined {
  const recordUse = !settings.readOnly;
  switch (settings.backend) {
    case "local":
      return undefined;
    case "redis": {
      const { url, prefix, ttlSeconds } = settings.redis;
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
      const { bucket, region, endpoint, pathStyle, prefix } = settings.s3;
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
      const { url } = settings.http;
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
