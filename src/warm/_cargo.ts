// Running cargo for the warm-up: collected output for short commands (resolution, metadata), and
// the environment every warm-up cargo gets.

/** What a finished cargo left behind. */
export interface CargoText {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cargo args` in `cwd` with exactly `env` and collects its output. */
export async function runCargoText(
  args: string[],
  options: { cwd: string; env: Record<string, string> },
): Promise<CargoText> {
  const cargo = options.env.CARGO || "cargo";
  const output = await new Deno.Command(cargo, {
    args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: true,
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * The environment of the warm-up's cargo: the caller's, minus what would send the build
 * elsewhere (an inherited target dir, another wrapper), with colours off so messages parse.
 */
export function cargoEnv(env: Record<string, string>): Record<string, string> {
  const clean = { ...env };
  for (const name of ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER"]) {
    delete clean[name];
  }
  // Set by cargo for a build script or rustc; an init run from inside one must not inherit them.
  for (const name of Object.keys(clean)) {
    if (/^CARGO_(PKG|CRATE|MANIFEST|PRIMARY|BIN|CFG)_|^OUT_DIR$/.test(name)) delete clean[name];
  }
  clean.CARGO_TERM_COLOR = "never";
  clean.CARGO_TERM_PROGRESS_WHEN = "never";
  return clean;
}
