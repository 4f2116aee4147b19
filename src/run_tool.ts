/**
 * Running a tool to ask it something (`rustc -vV`, `cc --version`, `getconf`): with exactly the
 * environment given, no input, and a time limit: a tool that hangs is a fault that costs the
 * call its cache, never the build its progress.
 * @module
 */

/** A tool that does not answer in this long is a fault (the call compiles without the cache). */
const TOOL_TIMEOUT_MS = 20_000;

/** What a tool printed, and whether it succeeded. */
export interface ToolOutput {
  success: boolean;
  stdout: string;
  stderr: string;
}

/**
 * Runs `program` with exactly `env` and no input, from `cwd` (default: this process's); rejects
 * when it cannot be run at all or does not answer in time.
 */
export async function runTool(
  program: string,
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<ToolOutput> {
  const output = await new Deno.Command(program, {
    args,
    env,
    clearEnv: true,
    ...(cwd === undefined ? {} : { cwd }),
    stdin: "null",
    signal: AbortSignal.timeout(TOOL_TIMEOUT_MS),
  }).output();
  const decoder = new TextDecoder();
  return {
    success: output.success,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
