/**
 * `cargo-warmup config`: prints the effective configuration and where each value came from
 * (a file and line, an environment variable, or the default).
 * @module
 */

import { type ConfigSource, describeSource, loadConfig } from "../config/config.ts";
import { readField, type Setting, SETTINGS, type SettingValue } from "../config/settings.ts";
import { formatSize } from "../config/size.ts";
import { ENVIRONMENT_VARIABLES } from "../config/environment.ts";
import { UsageError } from "./usage_error.ts";
import { redactUrl } from "../redact_url.ts";

/** The help text, with every key of the settings table. */
function help(): string {
  const width = Math.max(...SETTINGS.map(({ key }) => key.length));
  const keys = SETTINGS.map(({ key, description }) => `  ${key.padEnd(width)}  ${description}`);
  const yours = ENVIRONMENT_VARIABLES.filter(({ setBy }) => setBy === "you");
  const nameWidth = Math.max(...yours.map(({ name }) => name.length));
  const variables = yours.map(({ name, meaning }) => `  ${name.padEnd(nameWidth)}  ${meaning}`);
  return `Print the effective cargo-warmup configuration and where each value came from.

Usage: cargo-warmup config [--json]

Values come from the [warmup] table of .cargo/config.toml in the current directory and each
parent (nearer files win), then $CARGO_HOME/config.toml; CARGO_WARMUP_* variables override all.

Options:
  --json      Print {"files": [...], "values": {key: {value, source}}} as JSON
  -h, --help  Print this help

Keys of [warmup], each also set by CARGO_WARMUP_ and the key in capitals with _ for . and -
(max-size: CARGO_WARMUP_MAX_SIZE, redis.url: CARGO_WARMUP_REDIS_URL):
${keys.join("\n")}

Environment only (no key sets them):
${variables.join("\n")}
`;
}

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
      console.log(help());
      return 0;
    } else throw new UsageError(`Unknown argument "${arg}" for "cargo-warmup config"`);
  }
  const { config, sources, files } = await loadConfig();
  const rows = SETTINGS.map((setting) => ({
    key: setting.key,
    value: displayValue(setting, readField(config, setting.field)),
    source: sources[setting.key],
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

/** Sizes as people write them; a password in a URL (Redis, HTTP) is never printed. */
function displayValue(setting: Setting, value: SettingValue | undefined) {
  if (setting.type === "size" && typeof value === "number") return formatSize(value);
  if ((setting.type === "redis-url" || setting.type === "http-url") && typeof value === "string") {
    return redactUrl(value, "***");
  }
  return value;
}
