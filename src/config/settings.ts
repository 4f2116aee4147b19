/**
 * The one table of cargo-warmup's settings: each key of the `[warmup]` table with its type,
 * default, meaning and the field of {@linkcode WarmupConfig} it fills. Loading (config.ts), the
 * environment variables' names, `cargo-warmup config` and docs/configuration.md's table follow
 * from it (tests/configuration_doc_test.ts holds the docs to it).
 * @module
 */

import { isAbsolute, join, resolve } from "node:path";
import { parseSize } from "./size.ts";
import { isPublicKeyText } from "../bundle/keys.ts";
import type {
  BaseConfig,
  HttpSettings,
  RedisSettings,
  S3Settings,
  WarmupConfig,
} from "./warmup_config.ts";

/** A value as the configuration holds it. */
export type SettingValue = string | number | boolean | readonly string[];

/** How a value is written and checked; see {@linkcode parseSetting}. */
export type ValueType =
  | "path"
  | "string"
  | "boolean"
  | "workspace"
  | "size"
  | "level"
  | "seconds"
  | "count"
  | "backend"
  | "redis-url"
  | "http-url"
  | "public-keys";

/** Where a value lands in the configuration: a field, or a sub-table's field (`redis.ttlSeconds`). */
export type ConfigField =
  | Exclude<keyof BaseConfig, "redis" | "s3" | "http">
  | "backend"
  | `redis.${keyof RedisSettings}`
  | `s3.${keyof S3Settings}`
  | `http.${keyof HttpSettings}`;

interface SettingSpec {
  /** The key in `[warmup]`, dotted for a sub-table's (`redis.url`). */
  key: string;
  type: ValueType;
  field: ConfigField;
  /** The value when nothing sets it, from cargo's home when it depends on it; absent: not set. */
  default?: SettingValue | ((cargoHome: string) => SettingValue);
  /**
   * Variables of other tools read, in order, when neither a file nor the setting's own variable
   * sets it: the AWS SDKs' region.
   */
  defaultVariables?: readonly string[];
  /** One line for `cargo-warmup config --help`. */
  description: string;
}

const TABLE = [
  {
    key: "dir",
    type: "path",
    field: "dir",
    default: (cargoHome) => join(cargoHome, "warmup-cache"),
    description: "The local cache directory",
  },
  {
    key: "backend",
    type: "backend",
    field: "backend",
    default: "local",
    description: "The shared level behind local disk: local (none), redis, s3 or http",
  },
  {
    key: "read-only",
    type: "boolean",
    field: "readOnly",
    default: false,
    description: "Read the shared level, never write to it",
  },
  {
    key: "max-size",
    type: "size",
    field: "maxSize",
    default: 10 * 1024 ** 3,
    description: "The local level's size cap (K, M, G or T), kept by the daemon",
  },
  {
    key: "hot-size",
    type: "size",
    field: "hotSize",
    description: "The hot copies' budget within max-size (default: 0.6 x the bundles' bytes)",
  },
  {
    key: "compression-level",
    type: "level",
    field: "compressionLevel",
    default: 1,
    description: "The zstd level bundles are written with (1-22)",
  },
  {
    key: "signing-key-file",
    type: "path",
    field: "signingKeyFile",
    description:
      "A file holding the key bundles are signed with: an Ed25519 private key or an HMAC secret",
  },
  {
    key: "trusted-keys",
    type: "public-keys",
    field: "trustedKeys",
    description: "Ed25519 public keys (base64, or files) whose bundles the shared level may serve",
  },
  {
    key: "idle-timeout",
    type: "seconds",
    field: "idleTimeoutSeconds",
    default: 600,
    description: "Seconds the daemon stays up without a request",
  },
  {
    key: "workspace",
    type: "workspace",
    field: "workspace",
    // A developer's incremental builds on local disk only: the same trust as target/, and a new
    // worktree starts warm. CI's non-incremental builds and the shared levels only when asked.
    default: "incremental",
    description:
      'Cache workspace and path libraries: "incremental" (dev builds, local disk only), true, false',
  },
  {
    key: "projects",
    type: "count",
    field: "projects",
    default: 20,
    description: "Recent projects remembered for init --rewarm (0: none)",
  },
  {
    key: "auto-rewarm",
    type: "boolean",
    field: "autoRewarm",
    default: false,
    description: "Start init --rewarm when a build first uses a new rustc",
  },
  {
    key: "place",
    type: "boolean",
    field: "place",
    default: true,
    description: "Place the dependencies a build of the same Cargo.lock used in a new target dir",
  },
  {
    key: "redis.url",
    type: "redis-url",
    field: "redis.url",
    description: "The Redis server (redis:// or rediss://); needed by backend redis",
  },
  {
    key: "redis.prefix",
    type: "string",
    field: "redis.prefix",
    default: "cargo-warmup:",
    description: "What every Redis key starts with",
  },
  {
    key: "redis.ttl",
    type: "seconds",
    field: "redis.ttlSeconds",
    description: "Seconds a bundle lives after its last use (default: no expiry)",
  },
  {
    key: "s3.bucket",
    type: "string",
    field: "s3.bucket",
    description: "The bucket; needed by backend s3",
  },
  {
    key: "s3.region",
    type: "string",
    field: "s3.region",
    default: "us-east-1",
    defaultVariables: ["AWS_REGION", "AWS_DEFAULT_REGION"],
    description: "The bucket's region (default: AWS_REGION, AWS_DEFAULT_REGION or us-east-1)",
  },
  {
    key: "s3.endpoint",
    type: "http-url",
    field: "s3.endpoint",
    description: "An S3-compatible server (MinIO, R2, Ceph) instead of AWS",
  },
  {
    key: "s3.path-style",
    type: "boolean",
    field: "s3.pathStyle",
    description: "Path-style URLs (default: on with an endpoint, off on AWS)",
  },
  {
    key: "s3.prefix",
    type: "string",
    field: "s3.prefix",
    default: "cargo-warmup/",
    description: "What every object key starts with",
  },
  {
    key: "http.url",
    type: "http-url",
    field: "http.url",
    description: "The HTTP cache's directory URL (GET/HEAD/PUT/DELETE); needed by backend http",
  },
] as const satisfies readonly SettingSpec[];

/** A key of the `[warmup]` table in dotted form. */
export type ConfigKey = typeof TABLE[number]["key"];

/** One setting: its row of the table and the environment variable that sets it. */
export interface Setting extends Omit<SettingSpec, "key"> {
  key: ConfigKey;
  env: string;
}

// A field of the configuration no setting fills would stay undefined: such a field fails to
// compile here, by name ("Property 'redis.prefix' is missing").
const _everyFieldHasASetting: Record<Exclude<ConfigField, typeof TABLE[number]["field"]>, never> =
  {};

/**
 * The environment variable of a key: `CARGO_WARMUP_` and the key in capitals, `.` and `-`
 * becoming `_`.
 *
 * @example
 * ```ts
 * import { envVariableOf } from "./settings.ts";
 * console.log(envVariableOf("s3.path-style")); // "CARGO_WARMUP_S3_PATH_STYLE"
 * ```
 */
export function envVariableOf(key: ConfigKey): string {
  return `CARGO_WARMUP_${key.toUpperCase().replace(/[.-]/g, "_")}`;
}

/**
 * Every setting, in the order `cargo-warmup config` and docs/configuration.md list them.
 *
 * @example
 * ```ts
 * import { SETTINGS } from "./settings.ts";
 * const maxSize = SETTINGS.find((setting) => setting.key === "max-size")!;
 * console.log(maxSize.env, maxSize.field, maxSize.default); // "CARGO_WARMUP_MAX_SIZE" "maxSize" 10737418240
 * ```
 */
export const SETTINGS: readonly Setting[] = TABLE.map((spec) => ({
  ...spec,
  env: envVariableOf(spec.key),
}));

/**
 * Checks and converts one value. A file's value arrives typed by TOML, a variable's as text
 * (`fromEnv`), which is why only a variable may spell a boolean `1` or a number `"9"`. A relative
 * path is resolved against `base`: a file's project directory, or the current one for a variable.
 *
 * @throws {TypeError} With the reason alone (`must be true or false`): the caller knows whether
 * to name a file and line or a variable.
 *
 * @example
 * ```ts
 * import { parseSetting, SETTINGS } from "./settings.ts";
 * const readOnly = SETTINGS.find((setting) => setting.key === "read-only")!;
 * console.log(parseSetting(readOnly, "1", { fromEnv: true, base: "/" })); // true
 * ```
 */
export function parseSetting(
  setting: Setting,
  raw: unknown,
  { fromEnv, base }: { fromEnv: boolean; base: string },
): SettingValue {
  const bad = (expected: string): never => {
    throw new TypeError(`must be ${expected}`);
  };
  // A variable says yes or no as every switch of the environment does (envFlag).
  const flag = fromEnv && typeof raw === "string" ? envFlag(raw) : undefined;
  switch (setting.type) {
    case "string":
      return typeof raw === "string" && raw !== "" ? raw : bad("a non-empty string");
    case "redis-url":
      return typeof raw === "string" && /^rediss?:\/\/[^/]/.test(raw) && URL.canParse(raw)
        ? raw
        : bad(`a URL such as "redis://user:password@host:6379/0"`);
    case "http-url":
      return typeof raw === "string" && /^https?:\/\/[^/]/.test(raw) && URL.canParse(raw)
        ? raw
        : bad(`an http:// or https:// URL such as "https://cache.example.com:9000/rust/"`);
    case "path":
      if (typeof raw !== "string" || raw === "") return bad("a path");
      return isAbsolute(raw) ? raw : resolve(base, raw);
    case "backend":
      return raw === "local" || raw === "redis" || raw === "s3" || raw === "http"
        ? raw
        : bad(`"local", "redis", "s3" or "http"`);
    case "boolean":
      if (typeof raw === "boolean") return raw;
      return flag ?? bad("true or false");
    case "workspace":
      if (typeof raw === "boolean" || raw === "incremental") return raw;
      if (flag !== undefined) return flag;
      return bad(`true, false or "incremental"`);
    case "size":
      if (typeof raw === "number" && Number.isSafeInteger(raw) && raw > 0) return raw;
      if (typeof raw !== "string") return bad(`a size such as "10G"`);
      try {
        return parseSize(raw);
      } catch {
        return bad(`a size such as "10G"`);
      }
    case "level": {
      const level = typeof raw === "string" && fromEnv && /^-?\d+$/.test(raw) ? Number(raw) : raw;
      return typeof level === "number" && Number.isInteger(level) && level >= 1 && level <= 22
        ? level
        : bad("a zstd level from 1 to 22");
    }
    case "seconds": {
      const seconds = typeof raw === "string" && fromEnv && /^\d+$/.test(raw) ? Number(raw) : raw;
      return typeof seconds === "number" && Number.isSafeInteger(seconds) && seconds > 0
        ? seconds
        : bad("a whole number of seconds above 0");
    }
    case "public-keys": {
      // A variable lists them separated by commas; TOML writes an array.
      const entries = typeof raw === "string" && fromEnv
        ? raw.split(",").map((entry) => entry.trim())
        : raw;
      if (
        !Array.isArray(entries) || entries.length === 0 ||
        !entries.every((entry) => typeof entry === "string" && entry !== "")
      ) {
        return bad(`a list of public keys (base64) or key files, such as ["ci.pub"]`);
      }
      return entries.map((entry: string) =>
        isPublicKeyText(entry) || isAbsolute(entry) ? entry : resolve(base, entry)
      );
    }
    case "count": {
      const count = typeof raw === "string" && fromEnv && /^\d+$/.test(raw) ? Number(raw) : raw;
      return typeof count === "number" && Number.isSafeInteger(count) && count >= 0
        ? count
        : bad("a whole number");
    }
  }
}

/**
 * Puts `value` at `field` of a configuration being built, making the sub-table's object when it
 * is the first of its fields.
 *
 * @example
 * ```ts
 * import { writeField } from "./settings.ts";
 * const config = {};
 * writeField(config, "redis.ttlSeconds", 60);
 * console.log(config); // { redis: { ttlSeconds: 60 } }
 * ```
 */
export function writeField(
  config: Record<string, unknown>,
  field: ConfigField,
  value: SettingValue | undefined,
): void {
  const path = field.split(".");
  let holder = config;
  for (const name of path.slice(0, -1)) holder = (holder[name] ??= {}) as Record<string, unknown>;
  holder[path.at(-1)!] = value;
}

/**
 * The value at `field` of a configuration.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * import { readField } from "./settings.ts";
 * const cwd = await Deno.makeTempDir();
 * const { config } = await loadConfig({ cwd, env: { CARGO_HOME: cwd } });
 * console.log(readField(config, "redis.prefix")); // "cargo-warmup:"
 * ```
 */
export function readField(config: WarmupConfig, field: ConfigField): SettingValue | undefined {
  const path = field.split(".");
  let holder = config as unknown as Record<string, unknown>;
  for (const name of path.slice(0, -1)) holder = holder[name] as Record<string, unknown>;
  return holder[path.at(-1)!] as SettingValue | undefined;
}

// How an environment variable says yes or no: one rule for every switch, the settings' booleans
// set through the environment (`CARGO_WARMUP_READ_ONLY=1`), `CARGO_WARMUP_DISABLE` and
// `CARGO_WARMUP_DAEMON`. The front door (src/frontdoor/cargo_warmup.rs) and the launcher
// (bin/cargo-warmup) read `CARGO_WARMUP_DAEMON` by the same words.

const FLAG_YES = new Set(["1", "true", "yes", "on"]);
const FLAG_NO = new Set(["0", "false", "no", "off"]);

/**
 * True or false when `value` says so, undefined when it says neither (unset, empty, other words).
 *
 * @example
 * ```ts
 * import { envFlag } from "./settings.ts";
 * console.log(envFlag("1"), envFlag("off"), envFlag(undefined)); // true false undefined
 * ```
 */
export function envFlag(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (FLAG_YES.has(value)) return true;
  if (FLAG_NO.has(value)) return false;
  return undefined;
}

/** Whether `CARGO_WARMUP_DAEMON` turns the daemon off: every call then serves itself. */
export function daemonOff(env: Record<string, string | undefined>): boolean {
  return envFlag(env.CARGO_WARMUP_DAEMON) === false;
}

/** Whether `CARGO_WARMUP_DISABLE` turns the cache off for this build. */
export function cacheDisabled(env: Record<string, string | undefined>): boolean {
  return envFlag(env.CARGO_WARMUP_DISABLE) === true;
}
