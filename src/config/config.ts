/**
 * Loads cargo-warmup's settings the way cargo loads its own: the `[warmup]` table of every
 * `.cargo/config.toml` from the current directory up, then `$CARGO_HOME/config.toml`, nearer files
 * winning, and `CARGO_WARMUP_*` environment variables over all of them. Runs on every rustc call:
 * the TOML parser is loaded only when a file found actually has a `[warmup]` table.
 * @module
 */

import { dirname, isAbsolute, join, resolve } from "node:path";
import { parseSize } from "./size.ts";
import { keyLines } from "./_toml_lines.ts";
import { cargoHomeOf } from "./cargo_home.ts";

/** Which store holds the shared level; `local` means no shared level. */
export type Backend = "local" | "redis" | "s3";

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
   * of the bytes of its bundles (see src/size_cap.ts).
   */
  hotSize: number | undefined;
  /** The zstd level bundles are written with. */
  compressionLevel: number;
  /** A file holding the key bundles are signed and checked with. */
  signingKeyFile: string | undefined;
  /** Seconds the daemon stays up without a request. */
  idleTimeoutSeconds: number;
  /**
   * Cache non-incremental compiles of workspace members and path dependencies too (CI's next
   * commit); off by default, since a developer's own crates change between most builds.
   */
  workspace: boolean;
  /** How many recently built projects are remembered for `init --rewarm`. */
  projects: number;
  /** Start `init --rewarm` in the background when a build first uses a new rustc. */
  autoRewarm: boolean;
  redis: RedisSettings;
  s3: S3Settings;
}

/**
 * The effective configuration. {@linkcode loadConfig} refuses a remote backend without the
 * setting it cannot work without, and the type carries that: with `backend: "redis"`,
 * `redis.url` is a string; with `backend: "s3"`, `s3.bucket` is.
 */
export type WarmupConfig =
  | BaseConfig & { backend: "local" }
  | BaseConfig & { backend: "redis"; redis: { url: string } }
  | BaseConfig & { backend: "s3"; s3: { bucket: string } };

/** A configuration before its backend's settings are checked. */
type UncheckedConfig = BaseConfig & { backend: Backend };

/** Where a value came from. */
export type ConfigSource =
  | { kind: "default" }
  | { kind: "file"; path: string; line: number }
  | { kind: "env"; name: string };

/** The configuration with the source of each of its values, keyed as in TOML (`redis.url`). */
export interface LoadedConfig {
  config: WarmupConfig;
  sources: Record<ConfigKey, ConfigSource>;
  /** The configuration files read, nearest first. */
  files: string[];
}

/** A configuration file or variable that cannot be used as written. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type ValueType =
  | "path"
  | "string"
  | "boolean"
  | "size"
  | "level"
  | "seconds"
  | "count"
  | "backend"
  | "redis-url"
  | "http-url";

interface KeySpec {
  env: string;
  type: ValueType;
}

/** Every key of the `[warmup]` table, as written in TOML, with its variable and type. */
const KEYS = {
  "dir": { env: "CARGO_WARMUP_DIR", type: "path" },
  "backend": { env: "CARGO_WARMUP_BACKEND", type: "backend" },
  "read-only": { env: "CARGO_WARMUP_READ_ONLY", type: "boolean" },
  "max-size": { env: "CARGO_WARMUP_MAX_SIZE", type: "size" },
  "hot-size": { env: "CARGO_WARMUP_HOT_SIZE", type: "size" },
  "compression-level": { env: "CARGO_WARMUP_COMPRESSION_LEVEL", type: "level" },
  "signing-key-file": { env: "CARGO_WARMUP_SIGNING_KEY_FILE", type: "path" },
  "idle-timeout": { env: "CARGO_WARMUP_IDLE_TIMEOUT", type: "seconds" },
  "workspace": { env: "CARGO_WARMUP_WORKSPACE", type: "boolean" },
  "projects": { env: "CARGO_WARMUP_PROJECTS", type: "count" },
  "auto-rewarm": { env: "CARGO_WARMUP_AUTO_REWARM", type: "boolean" },
  "redis.url": { env: "CARGO_WARMUP_REDIS_URL", type: "redis-url" },
  "redis.prefix": { env: "CARGO_WARMUP_REDIS_PREFIX", type: "string" },
  "redis.ttl": { env: "CARGO_WARMUP_REDIS_TTL", type: "seconds" },
  "s3.bucket": { env: "CARGO_WARMUP_S3_BUCKET", type: "string" },
  "s3.region": { env: "CARGO_WARMUP_S3_REGION", type: "string" },
  "s3.endpoint": { env: "CARGO_WARMUP_S3_ENDPOINT", type: "http-url" },
  "s3.path-style": { env: "CARGO_WARMUP_S3_PATH_STYLE", type: "boolean" },
  "s3.prefix": { env: "CARGO_WARMUP_S3_PREFIX", type: "string" },
} as const satisfies Record<string, KeySpec>;

/** A key of the `[warmup]` table in dotted form. */
export type ConfigKey = keyof typeof KEYS;

/** The keys in display order, with their environment variables. */
export const CONFIG_KEYS: readonly { key: ConfigKey; env: string }[] = Object.entries(KEYS)
  .map(([key, spec]) => ({ key: key as ConfigKey, env: spec.env }));

const SUBTABLES = new Set(["redis", "s3"]);
const MENTIONS_WARMUP = /^[ \t]*(?:\[[ \t]*["']?warmup\b|["']?warmup["']?[ \t]*[.=])/m;
type Value = string | number | boolean;

/** Options for {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** Default `Deno.cwd()`. */
  cwd?: string;
  /** Default `Deno.env.toObject()`. */
  env?: Record<string, string | undefined>;
}

/**
 * Loads the effective configuration.
 *
 * @throws {ConfigError} For a malformed file, an unknown key, a value of the wrong type or a bad
 * environment variable; the message names the file and line, or the variable, and the key.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * const cwd = await Deno.makeTempDir();
 * const { config, sources } = await loadConfig({
 *   cwd,
 *   env: { CARGO_HOME: cwd, CARGO_WARMUP_BACKEND: "redis", CARGO_WARMUP_REDIS_URL: "redis://cache" },
 * });
 * console.log(config.backend, sources.backend); // "redis" { kind: "env", name: "CARGO_WARMUP_BACKEND" }
 * ```
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const env = options.env ?? Deno.env.toObject();
  const cwd = resolve(options.cwd ?? Deno.cwd());
  const cargoHome = cargoHomeOf(env, cwd);

  const files = findConfigFiles(cwd, cargoHome);
  const values = new Map<ConfigKey, { value: Value; source: ConfigSource }>();
  for (const { path, text } of files) {
    if (!MENTIONS_WARMUP.test(text)) continue;
    for (const [key, found] of await readWarmupTable(path, text)) {
      if (!values.has(key)) values.set(key, found);
    }
  }
  for (const { key, env: name } of CONFIG_KEYS) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    const source: ConfigSource = { kind: "env", name };
    values.set(key, { value: convert(key, raw, source, cwd), source });
  }

  const sources = {} as Record<ConfigKey, ConfigSource>;
  const pick = <T extends Value>(key: ConfigKey, fallback: T): T => {
    const found = values.get(key);
    sources[key] = found?.source ?? { kind: "default" };
    return (found?.value ?? fallback) as T;
  };
  const optional = <T extends Value>(key: ConfigKey): T | undefined => {
    const found = values.get(key);
    sources[key] = found?.source ?? { kind: "default" };
    return found?.value as T | undefined;
  };

  const config: UncheckedConfig = {
    dir: pick("dir", join(cargoHome, "warmup-cache")),
    backend: pick<Backend>("backend", "local"),
    readOnly: pick("read-only", false),
    maxSize: pick("max-size", 10 * 1024 ** 3),
    hotSize: optional("hot-size"),
    compressionLevel: pick("compression-level", 1),
    signingKeyFile: optional("signing-key-file"),
    idleTimeoutSeconds: pick("idle-timeout", 600),
    workspace: pick("workspace", false),
    projects: pick("projects", 20),
    autoRewarm: pick("auto-rewarm", false),
    redis: {
      url: optional("redis.url"),
      prefix: pick("redis.prefix", "cargo-warmup:"),
      ttlSeconds: optional("redis.ttl"),
    },
    s3: {
      bucket: optional("s3.bucket"),
      region: pick("s3.region", env.AWS_REGION || env.AWS_DEFAULT_REGION || "us-east-1"),
      endpoint: optional("s3.endpoint"),
      pathStyle: optional("s3.path-style"),
      prefix: pick("s3.prefix", "cargo-warmup/"),
    },
  };
  if (sources["s3.region"].kind === "default" && (env.AWS_REGION || env.AWS_DEFAULT_REGION)) {
    sources["s3.region"] = {
      kind: "env",
      name: env.AWS_REGION ? "AWS_REGION" : "AWS_DEFAULT_REGION",
    };
  }
  return {
    config: requireBackendSettings(config, sources),
    sources,
    files: files.map((file) => file.path),
  };
}

/** Names a source for messages and `cargo-warmup config`: `/p/.cargo/config.toml:3`, `env X`. */
export function describeSource(source: ConfigSource): string {
  switch (source.kind) {
    case "default":
      return "default";
    case "env":
      return `environment variable ${source.name}`;
    case "file":
      return `${source.path}:${source.line}`;
  }
}

/**
 * The config files cargo would read, nearest first: `.cargo/config` or `.cargo/config.toml` in
 * `cwd` and each parent (cargo prefers the name without extension when both exist), then
 * `$CARGO_HOME/config(.toml)`. One failed stat per directory without `.cargo`.
 */
function findConfigFiles(cwd: string, cargoHome: string): { path: string; text: string }[] {
  const found: { path: string; text: string }[] = [];
  const seen = new Set<string>();
  const readFirst = (dir: string) => {
    for (const name of ["config", "config.toml"]) {
      const path = join(dir, name);
      if (seen.has(path)) return;
      try {
        const text = Deno.readTextFileSync(path);
        seen.add(path);
        found.push({ path, text });
        return;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue;
        // A directory named `config`, or a file we may not read: cargo reports these too.
        throw new ConfigError(`Cannot read configuration file "${path}": ${error}`);
      }
    }
  };
  for (let dir = cwd;; dir = dirname(dir)) {
    const dotCargo = join(dir, ".cargo");
    try {
      if (Deno.statSync(dotCargo).isDirectory) readFirst(dotCargo);
    } catch (error) {
      if (error instanceof ConfigError) throw error;
    }
    if (dirname(dir) === dir) break;
  }
  readFirst(cargoHome);
  return found;
}

/** Parses one file and returns its `[warmup]` values with their lines. */
async function readWarmupTable(
  path: string,
  text: string,
): Promise<Map<ConfigKey, { value: Value; source: ConfigSource }>> {
  const { parse, TomlError } = await import("npm:smol-toml@^1.3.1");
  let document: Record<string, unknown>;
  try {
    document = parse(text);
  } catch (error) {
    if (error instanceof TomlError) {
      const reason = error.message.split("\n")[0]!.replace(/^Invalid TOML document: /, "");
      throw new ConfigError(`Invalid configuration file "${path}" line ${error.line}: ${reason}`);
    }
    throw error;
  }
  const lines = keyLines(text);
  const lineOf = (key: string) =>
    lines.get(key) ?? lines.get(key.split(".").slice(0, -1).join(".")) ?? 1;
  const fail = (key: string, reason: string): never => {
    throw new ConfigError(
      `Invalid configuration file "${path}" line ${lineOf(key)}: key "${key}" ${reason}`,
    );
  };

  const found = new Map<ConfigKey, { value: Value; source: ConfigSource }>();
  const warmup = document.warmup;
  if (warmup === undefined) return found;
  if (!isTable(warmup)) return fail("warmup", "must be a table");
  const base = dirname(dirname(path));
  const visit = (table: Record<string, unknown>, prefix: string) => {
    for (const [name, raw] of Object.entries(table)) {
      const dotted = `${prefix}${name}`;
      if (prefix === "" && SUBTABLES.has(name)) {
        if (!isTable(raw)) fail(`warmup.${dotted}`, "must be a table");
        visit(raw as Record<string, unknown>, `${name}.`);
        continue;
      }
      if (!(dotted in KEYS)) {
        return fail(`warmup.${dotted}`, `is unknown: expected one of ${knownKeys(prefix)}`);
      }
      const key = dotted as ConfigKey;
      const source: ConfigSource = { kind: "file", path, line: lineOf(`warmup.${dotted}`) };
      try {
        found.set(key, { value: convert(key, raw, source, base), source });
      } catch (error) {
        if (error instanceof TypeError || error instanceof RangeError) {
          fail(`warmup.${dotted}`, error.message);
        }
        throw error;
      }
    }
  };
  visit(warmup, "");
  return found;
}

function knownKeys(prefix: string): string {
  const names = Object.keys(KEYS)
    .filter((key) => prefix === "" ? !key.includes(".") : key.startsWith(prefix))
    .map((key) => key.slice(prefix.length));
  if (prefix === "") names.push("redis", "s3");
  return names.map((name) => `"${name}"`).join(", ");
}

/**
 * Checks and converts one value. File values arrive typed by TOML, variables as text; a path is
 * resolved against `base` (a file's project directory, or the current one for a variable).
 * Throws TypeError/RangeError for files, ConfigError for variables.
 */
function convert(key: ConfigKey, raw: unknown, source: ConfigSource, base: string): Value {
  const fromEnv = source.kind === "env";
  const type: ValueType = KEYS[key].type;
  const bad = (expected: string): never => {
    const shown = typeof raw === "string" ? `"${raw}"` : String(raw);
    if (fromEnv) {
      throw new ConfigError(
        `Invalid environment variable ${source.name}=${shown}: key "warmup.${key}" must be ${expected}`,
      );
    }
    throw new TypeError(`must be ${expected}, found ${shown}`);
  };
  switch (type) {
    case "string":
      return typeof raw === "string" && raw !== "" ? raw : bad("a non-empty string");
    case "redis-url":
      return typeof raw === "string" && /^rediss?:\/\/[^/]/.test(raw) && URL.canParse(raw)
        ? raw
        : bad(`a URL such as "redis://user:password@host:6379/0"`);
    case "http-url":
      return typeof raw === "string" && /^https?:\/\/[^/]/.test(raw) && URL.canParse(raw)
        ? raw
        : bad(`a URL such as "https://minio.example.com:9000"`);
    case "path":
      if (typeof raw !== "string" || raw === "") return bad("a path");
      return isAbsolute(raw) ? raw : resolve(base, raw);
    case "backend":
      return raw === "local" || raw === "redis" || raw === "s3"
        ? raw
        : bad(`"local", "redis" or "s3"`);
    case "boolean":
      if (typeof raw === "boolean") return raw;
      if (fromEnv && (raw === "true" || raw === "1")) return true;
      if (fromEnv && (raw === "false" || raw === "0")) return false;
      return bad("true or false");
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
    case "count": {
      const count = typeof raw === "string" && fromEnv && /^\d+$/.test(raw) ? Number(raw) : raw;
      return typeof count === "number" && Number.isSafeInteger(count) && count >= 0
        ? count
        : bad("a whole number");
    }
  }
}

/** `config` as a {@linkcode WarmupConfig}: ConfigError for a remote backend without its setting. */
function requireBackendSettings(
  config: UncheckedConfig,
  sources: Record<ConfigKey, ConfigSource>,
): WarmupConfig {
  const { backend, redis, s3 } = config;
  if (backend === "local") return { ...config, backend };
  if (backend === "redis" && redis.url) {
    return { ...config, backend, redis: { ...redis, url: redis.url } };
  }
  if (backend === "s3" && s3.bucket) {
    return { ...config, backend, s3: { ...s3, bucket: s3.bucket } };
  }
  const needed = backend === "redis" ? "redis.url" : "s3.bucket";
  throw new ConfigError(
    `Invalid configuration: backend "${backend}" (from ${describeSource(sources.backend)}) ` +
      `needs key "warmup.${needed}": set it in [warmup.${backend}] or ${KEYS[needed].env}`,
  );
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}
