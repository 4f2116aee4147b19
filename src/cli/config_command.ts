/**
 * `cargo-warmup config`: prints the effective configuration and where each value came from
 * (a file and line, an environment variable, or the default).
 * @module
 */

import {
  CONFIG_KEYS,
  type ConfigKey,
  type ConfigSource,
  describeSource,
  loadConfig,
  type WarmupConfig,
} from "../config/config.ts";
import { formatSize } from "../config/size.ts";
import { UsageError } from "./usage_error.ts";
import { redactUrl } from "../redact_url.ts";

const HELP = `Print the effective cargo-warmup configuration and where each value came from.

Usage: cargo-warmup config [--json]

Values come from the [warmup] table of .cargo/config.toml in the current directory and each
parent (nearer files win), then $CARGO_HOME/config.toml; CARGO_WARMUP_* variables override all.

Options:
  --json      Print {"files": [...], "values": {key: {value, source}}} as JSON
  -h, --help  Print this help
`;

/**
 * Runs `cargo-warmup config`; returns the exit code.
 *
 * @throws {UsageError} For an unknown flag.
 * @throws {ConfigError} When the configuration cannot be loaded.
 *
 * @example
 * ```ts ignore
 * import { runConfigCommand } from "./config_command.ts";
 * Deno.exit(await runConfigCommand(["--json"]));
 * ```
 */
export async function runConfigCommand(argv: string[]): Promise<number> {
  let json = false;
  for (const arg of argv) {
    if (arg === "--json") json = true;
    else if (arg === "-h" || arg === "--help") {
      console.log(HELP);
      return 0;
    } else throw new UsageError(`Unknown argument "${arg}" for "cargo-warmup config"`);
  }
  const { config, sources, files } = await loadConfig();
  const rows = CONFIG_KEYS.map(({ key, env }) => ({
    key,
    env,
    value: displayValue(key, valueOf(config, key)),
    source: sources[key],
  }));

  if (json) {
    const values: Record<string, { value: unknown; source: ConfigSource }> = {};
    for (const row of rows) values[row.key] = { value: row.value ?? null, source: row.source };
    console.log(JSON.stringify({ files, values }, null, 2));
    return 0;
  }

  const shown = rows.map((row) => ({
    left: `${row.key} = ${row.value === undefined ? "(not set)" : JSON.stringify(row.value)}`,
    right: describeSource(row.source),
  }));
  const width = Math.max(...shown.map((row) => row.left.length));
  console.log("[warmup]");
  for (const row of shown) console.log(`${row.left.padEnd(width)}  # ${row.right}`);
  console.log(
    files.length === 0
      ? "\n# no configuration files found"
      : `\n# files read, nearest first:\n${files.map((file) => `#   ${file}`).join("\n")}`,
  );
  return 0;
}

function valueOf(config: WarmupConfig, key: ConfigKey): string | number | boolean | undefined {
  switch (key) {
    case "dir":
      return config.dir;
    case "backend":
      return config.backend;
    case "read-only":
      return config.readOnly;
    case "max-size":
      return config.maxSize;
    case "compression-level":
      return config.compressionLevel;
    case "signing-key-file":
      return config.signingKeyFile;
    case "redis.url":
      return config.redis.url;
    case "redis.prefix":
      return config.redis.prefix;
    case "redis.ttl":
      return config.redis.ttlSeconds;
    case "s3.bucket":
      return config.s3.bucket;
    case "s3.region":
      return config.s3.region;
    case "s3.endpoint":
      return config.s3.endpoint;
    case "s3.path-style":
      return config.s3.pathStyle;
    case "s3.prefix":
      return config.s3.prefix;
  }
}

/** Sizes as people write them; a Redis password is never printed. */
function displayValue(key: ConfigKey, value: string | number | boolean | undefined) {
  if (key === "max-size" && typeof value === "number") return formatSize(value);
  if (key === "redis.url" && typeof value === "string") {
    return redactUrl(value, "***");
  }
  return value;
}
