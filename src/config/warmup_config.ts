/**
 * What a configuration holds: the effective `[warmup]` settings as `loadConfig` (config.ts)
 * makes them from the table of settings (settings.ts), which fills these fields.
 * @module
 */

/** Which store holds the shared level; `local` means no shared level. */
export type Backend = "local" | "redis" | "s3" | "http";

/** The settings of `[warmup.redis]`. */
export interface RedisSettings {
  url: string | undefined;
  prefix: string;
  /** Seconds a bundle lives after its last use. */
  ttlSeconds: number | undefined;
}

/** The settings of `[warmup.s3]`. */
export interface S3Settings {
  bucket: string | undefined;
  region: string;
  endpoint: string | undefined;
  /** `undefined`: path style when an endpoint is set, virtual-hosted otherwise. */
  pathStyle: boolean | undefined;
  prefix: string;
}

/** The settings of `[warmup.http]`. */
export interface HttpSettings {
  /** The directory URL bundles are kept under, possibly with basic credentials. */
  url: string | undefined;
}

/** What the configuration holds whichever backend it names. */
export interface BaseConfig {
  /** The local cache directory. */
  dir: string;
  /** Read from the remote, never write to it. */
  readOnly: boolean;
  /** The local level's size cap in bytes. */
  maxSize: number;
  /**
   * Bytes the local level's unpacked hot copies may take (within `maxSize`); undefined: a share
   * of the bytes of its bundles (see src/cache/size_cap.ts).
   */
  hotSize: number | undefined;
  /** The zstd level bundles are written with. */
  compressionLevel: number;
  /**
   * A file holding the key bundles are signed with: an Ed25519 private key (src/bundle/keys.ts),
   * or a shared HMAC secret that also checks them.
   */
  signingKeyFile: string | undefined;
  /**
   * Ed25519 public keys, each inline (base64) or a file's absolute path: bundles from the shared
   * level must be signed by one of them (or by `signingKeyFile`'s key).
   */
  trustedKeys: readonly string[] | undefined;
  /** Seconds the daemon stays up without a request. */
  idleTimeoutSeconds: number;
  /**
   * Which compiles of workspace members' and path dependencies' libraries are cached:
   * `"incremental"` (the default) a developer's incremental ones, on local disk only, so that a new
   * worktree starts warm; `true` every one, on every level (CI's next commit); `false` none.
   */
  workspace: boolean | "incremental";
  /** How many recently built projects are remembered for `init --rewarm`. */
  projects: number;
  /** Start `init --rewarm` in the background when a build first uses a new rustc. */
  autoRewarm: boolean;
  /**
   * Place registry units an earlier build of the same Cargo.lock left in target/ into a new
   * target dir before cargo looks (src/place/), so that cargo finds them fresh.
   */
  place: boolean;
  redis: RedisSettings;
  s3: S3Settings;
  http: HttpSettings;
}

/**
 * The effective configuration. `loadConfig` refuses a remote backend without the
 * setting it cannot work without, and the type carries that: with `backend: "redis"`,
 * `redis.url` is a string; with `backend: "s3"`, `s3.bucket` is; with `backend: "http"`,
 * `http.url` is.
 */
export type WarmupConfig =
  | BaseConfig & { backend: "local" }
  | BaseConfig & { backend: "redis"; redis: { url: string } }
  | BaseConfig & { backend: "s3"; s3: { bucket: string } }
  | BaseConfig & { backend: "http"; http: { url: string } };
