/**
 * Loads cargo-warmup's settings the way cargo loads its own: the `[warmup]` table of every
 * `.cargo/config.toml` from the current directory up, then `$CARGO_HOME/config.toml`, nearer files
 * winning, and `CARGO_WARMUP_*` environment variables over all of them. Which keys there are, and
 * what each one holds, is the table in settings.ts. Runs on every rustc call: the TOML parser is
 * loaded only when a file found actually has a `[warmup]` table.
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { keyLines } from "./_toml_lines.ts";
import { cargoHomeOf } from "./cargo_home.ts";
import {
  type ConfigKey,
  envVariableOf,
  parseSetting,
  type Setting,
  SETTINGS,
  type SettingValue,
  writeField,
} from "./settings.ts";
import type { Backend, BaseConfig, WarmupConfig } from "./warmup_config.ts";

/**
 * Set in the environment of the warm-up's own builds: their scratch projects are not recorded,
 * their calls count apart and are not staged for.
 */
export const WARMING_ENV = "CARGO_WARMUP_WARMING";

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

/** A value found for a key, and where. */
interface Found {
  value: SettingValue | undefined;
  source: ConfigSource;
}

const SETTING_OF_KEY: ReadonlyMap<string, Setting> = new Map(
  SETTINGS.map((setting) => [setting.key, setting]),
);
/** The sub-tables of `[warmup]`: the first part of every dotted key. */
const SUBTABLES = new Set(
  SETTINGS.filter(({ key }) => key.includes(".")).map(({ key }) => key.split(".")[0]!),
);
const MENTIONS_WARMUP = /^[ \t]*(?:\[[ \t]*["']?warmup\b|["']?warmup["']?[ \t]*[.=])/m;

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
  const values = new Map<ConfigKey, Found>();
  for (const { path, text } of files) {
    if (!MENTIONS_WARMUP.test(text)) continue;
    for (const [key, found] of await readWarmupTable(path, text)) {
      if (!values.has(key)) values.set(key, found);
    }
  }
  for (const setting of SETTINGS) {
    const raw = env[setting.env];
    if (raw !== undefined && raw !== "") {
      values.set(setting.key, fromVariable(setting, setting.env, raw, cwd));
    }
  }

  const fields: Record<string, unknown> = {};
  const sources = {} as Record<ConfigKey, ConfigSource>;
  for (const setting of SETTINGS) {
    const found = values.get(setting.key) ?? defaultOf(setting, env, cwd, cargoHome);
    writeField(fields, setting.field, found.value);
    sources[setting.key] = found.source;
  }
  // Every field is filled (settings.ts checks that when compiling); that each value suits its
  // field's type, tests/config_test.ts checks key by key.
  const config = fields as unknown as UncheckedConfig;
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

/** A variable's value for `setting`; ConfigError naming the variable when it cannot be used. */
function fromVariable(setting: Setting, name: string, raw: string, cwd: string): Found {
  try {
    const value = parseSetting(setting, raw, { fromEnv: true, base: cwd });
    return { value, source: { kind: "env", name } };
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new ConfigError(
      `Invalid environment variable ${name}=${shown(raw)}: ` +
        `key "warmup.${setting.key}" ${error.message}`,
    );
  }
}

/** What a key holds when neither a file nor its own variable sets it. */
function defaultOf(
  setting: Setting,
  env: Record<string, string | undefined>,
  cwd: string,
  cargoHome: string,
): Found {
  for (const name of setting.defaultVariables ?? []) {
    const raw = env[name];
    if (raw !== undefined && raw !== "") return fromVariable(setting, name, raw, cwd);
  }
  const value = typeof setting.default === "function"
    ? setting.default(cargoHome)
    : setting.default;
  return { value, source: { kind: "default" } };
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
): Promise<Map<ConfigKey, Found>> {
  const { parse, TomlError } = await import("smol-toml");
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

  const found = new Map<ConfigKey, Found>();
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
      const setting = SETTING_OF_KEY.get(dotted);
      if (setting === undefined) {
        return fail(`warmup.${dotted}`, `is unknown: expected one of ${knownKeys(prefix)}`);
      }
      const source: ConfigSource = { kind: "file", path, line: lineOf(`warmup.${dotted}`) };
      try {
        found.set(setting.key, {
          value: parseSetting(setting, raw, { fromEnv: false, base }),
          source,
        });
      } catch (error) {
        if (!(error instanceof TypeError)) throw error;
        fail(`warmup.${dotted}`, `${error.message}, found ${shown(raw)}`);
      }
    }
  };
  visit(warmup, "");
  return found;
}

/** The keys a table may hold, for an unknown key's message: `"url", "prefix", "ttl"`. */
function knownKeys(prefix: string): string {
  const names = SETTINGS.map(({ key }) => key)
    .filter((key) => prefix === "" ? !key.includes(".") : key.startsWith(prefix))
    .map((key) => key.slice(prefix.length));
  if (prefix === "") names.push(...SUBTABLES);
  return names.map((name) => `"${name}"`).join(", ");
}

/** A value as a message quotes it: text in quotes, anything else as it prints. */
function shown(raw: unknown): string {
  return typeof raw === "string" ? `"${raw}"` : String(raw);
}

/** `config` as a {@linkcode WarmupConfig}: ConfigError for a remote backend without its setting. */
function requireBackendSettings(
  config: UncheckedConfig,
  sources: Record<ConfigKey, ConfigSource>,
): WarmupConfig {
  const { backend, redis, s3, http } = config;
  if (backend === "local") return { ...config, backend };
  if (backend === "redis" && redis.url) {
    return { ...config, backend, redis: { ...redis, url: redis.url } };
  }
  if (backend === "s3" && s3.bucket) {
    return { ...config, backend, s3: { ...s3, bucket: s3.bucket } };
  }
  if (backend === "http" && http.url) {
    return { ...config, backend, http: { ...http, url: http.url } };
  }
  const needed = ({ redis: "redis.url", s3: "s3.bucket", http: "http.url" } as const)[backend];
  throw new ConfigError(
    `Invalid configuration: backend "${backend}" (from ${describeSource(sources.backend)}) ` +
      `needs key "warmup.${needed}": set it in [warmup.${backend}] or ${envVariableOf(needed)}`,
  );
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}
