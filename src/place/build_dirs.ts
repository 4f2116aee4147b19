/**
 * Where a cargo build with given flags keeps its units: the build dir (`build.build-dir`, else
 * the target dir: `--target-dir`, `CARGO_TARGET_DIR`, `build.target-dir`, `<workspace>/target`),
 * as `cargo metadata` reports it, and the profile dirs under it (`debug`, `release`, a custom
 * profile's name; under `<triple>/` too with `--target`).
 * @module
 */

import { resolve } from "node:path";

const METADATA_TIMEOUT_MS = 5_000;

/** A build's directories as cargo resolves them. */
export interface BuildDirs {
  workspaceRoot: string;
  /** Where `.fingerprint/`, `deps/` and `build/` go (cargo's build dir). */
  buildDir: string;
  /** Profile dirs relative to the build dir that the build's units may go to. */
  profiles: string[];
}

/** The value of cargo flag `name` in `flags` (`--name V` or `--name=V`), the last one given. */
export function flagValue(flags: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i] ?? "";
    if (flag === name) value = flags[i + 1];
    else if (flag.startsWith(`${name}=`)) value = flag.slice(name.length + 1);
  }
  return value;
}

/** The profile dir's name of a build with `flags`. */
export function profileDirOf(flags: readonly string[]): string {
  const profile = flagValue(flags, "--profile") ??
    (flags.includes("--release") ? "release" : "dev");
  if (profile === "dev" || profile === "test") return "debug";
  if (profile === "bench") return "release";
  return profile;
}

/** Asks cargo where a build with `flags` run in `cwd` keeps its units. */
export async function buildDirsOf(
  cargo: string,
  flags: readonly string[],
  cwd: string,
  env: Record<string, string>,
): Promise<BuildDirs> {
  const manifest = flagValue(flags, "--manifest-path");
  const args = ["metadata", "--format-version", "1", "--no-deps", "--offline"];
  if (manifest) args.push("--manifest-path", manifest);
  const out = await new Deno.Command(cargo, {
    args,
    cwd,
    env,
    stdout: "piped",
    stderr: "piped",
    // A cargo waiting for a lock the build that asked holds would hold that build forever.
    signal: AbortSignal.timeout(METADATA_TIMEOUT_MS),
  }).output();
  if (!out.success) {
    throw new Error(`cargo metadata failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const metadata = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    workspace_root: string;
    target_directory: string;
    build_directory?: string;
  };
  const targetDir = flagValue(flags, "--target-dir");
  const buildDir = targetDir !== undefined
    ? resolve(cwd, targetDir)
    : metadata.build_directory ?? metadata.target_directory;
  const profile = profileDirOf(flags);
  const triple = flagValue(flags, "--target");
  return {
    workspaceRoot: metadata.workspace_root,
    buildDir,
    profiles: triple ? [profile, `${triple}/${profile}`] : [profile],
  };
}
