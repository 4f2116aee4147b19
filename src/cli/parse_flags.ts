/**
 * Command-line flags for the manager's commands: node:util's parseArgs in strict mode, with its
 * errors turned into {@linkcode UsageError}s that name the command.
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./usage_error.ts";
import { errorMessage } from "../error_message.ts";

/**
 * Parses `argv` for `command` with the given options; unknown flags (and arguments, unless
 * `allowPositionals`) become a UsageError.
 */
export function parseFlags<
  T extends NonNullable<ParseArgsConfig["options"]>,
  P extends boolean = false,
>(
  command: string,
  argv: string[],
  options: T,
  allowPositionals?: P,
) {
  try {
    return parseArgs({
      args: argv,
      options,
      strict: true,
      allowPositionals: (allowPositionals ?? false) as P,
    });
  } catch (error) {
    const detail = errorMessage(error).replace(/\. To specify a positional argument.*$/s, "");
    throw new UsageError(`${command}: ${detail}`);
  }
}
