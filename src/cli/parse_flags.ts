/**
 * Command-line flags for the manager's commands: node:util's parseArgs in strict mode, with its
 * errors turned into {@linkcode UsageError}s that name the command.
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./usage_error.ts";
import { errorMessage } from "../error_message.ts";

/** Parses `argv` for `command` with the given options; unknown flags become a UsageError. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  argv: string[],
  options: T,
) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (error) {
    const detail = errorMessage(error).replace(/\. To specify a positional argument.*$/s, "");
    throw new UsageError(`${command}: ${detail}`);
  }
}
