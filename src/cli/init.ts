/**
 * `cargo-warmup init`: pre-warm the cache with a tier of common crates, one project's registry
 * dependencies, or the recently used set rebuilt for the current toolchain; in the foreground
 * with a progress line, or detached with `--background`.
 * @module
 */

import { UsageError } from "./usage_error.ts";
import { parseFlags } from "./parse_flags.ts";
import { loadConfig } from "../config/config.ts";
import { TIER_COUNT } from "../warm/tiers.ts";
import { BACKGROUND_LOG_ENV, startBackgroundWarmUp } from "../warm/background.ts";
import { warmUp } from "../warm/warm_up.ts";

export const INIT_HELP =
  `Pre-warm the cache: compile registry crates now, so later builds are served.

Usage: cargo-warmup init [--tier N] [--manifest PATH] [--lockfile PATH] [--rewarm] [options]

What to warm (any combination):
  --tier N            Tiers 1 to N of common crates (1: ~12 core crates, 2: ~60 more,
                      3: several hundred of the most downloaded)
  --tier-file PATH    A crate list of your own, in the format of the shipped tiers/*.toml
  --manifest PATH     Exactly the registry dependencies of the project at PATH (a Cargo.toml),
                      without building the project's own crates
  --lockfile PATH     The same for the project whose Cargo.lock is PATH (its Cargo.toml beside
                      it gives the features; a lone lockfile warms default features)
  --rewarm            The dependency graphs of the projects built most recently (their
                      lockfiles, manifests, features and profiles, remembered by the cache),
                      rebuilt with the current toolchain (run after a rustc upgrade)

Options:
  --profile LIST      Cargo profiles to build, comma-separated or repeated (default dev,release)
  --background        Detach, log to the cache dir and return at once; 'status' shows progress
  --quiet             No progress line (warnings and the summary still print)
  -h, --help          Print this help

Crates the registry cannot supply (offline, yanked, not vendored) are skipped with a warning.
Running the same warm-up again when everything is cached finishes in seconds.

Examples:
  cargo-warmup init --tier=1
  cargo-warmup init --lockfile template/Cargo.lock --profile dev
  cargo-warmup init --rewarm --background`;

/** Runs `init`; resolves to the exit code. */
export async function runInit(argv: string[]): Promise<number> {
  const { values } = parseFlags("init", argv, {
    tier: { type: "string" },
    "tier-file": { type: "string", multiple: true },
    manifest: { type: "string" },
    lockfile: { type: "string" },
    rewarm: { type: "boolean" },
    profile: { type: "string", multiple: true },
    background: { type: "boolean" },
    quiet: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(INIT_HELP);
    return 0;
  }
  const tier = values.tier === undefined ? undefined : Number(values.tier);
  if (tier !== undefined && !(Number.isInteger(tier) && tier >= 1 && tier <= TIER_COUNT)) {
    throw new UsageError(`init: --tier must be 1 to ${TIER_COUNT}, not "${values.tier}"`);
  }
  const tierFiles = values["tier-file"] ?? [];
  if (
    tier === undefined && tierFiles.length === 0 && !values.manifest && !values.lockfile &&
    !values.rewarm
  ) {
    throw new UsageError("init: say what to warm: --tier N, --manifest, --lockfile or --rewarm");
  }
  const profiles = (values.profile ?? ["dev,release"]).flatMap((item) => item.split(","))
    .map((item) => item.trim()).filter((item) => item !== "");
  if (profiles.length === 0) throw new UsageError("init: --profile needs at least one profile");

  const env = Deno.env.toObject();
  // The local level, where builds are served from: what init fills and checks.
  const cacheDir = (await loadConfig({ env })).config.dir;
  const exe = env.CARGO_WARMUP_EXE || Deno.execPath();
  const childArgs = argv.filter((arg) => arg !== "--background");

  if (values.background && !env[BACKGROUND_LOG_ENV]) {
    const child = await startBackgroundWarmUp(exe, childArgs, cacheDir, env);
    console.log(
      `warm-up started in the background (pid ${child.pid})` +
        (child.waitsFor !== undefined
          ? `; it starts when the one running now (pid ${child.waitsFor}) finishes`
          : "") +
        `\nlog: ${child.log}\nprogress: cargo-warmup status`,
    );
    return 0;
  }

  const outcome = await warmUp({
    tier,
    tierFiles,
    manifest: values.manifest,
    lockfile: values.lockfile,
    rewarm: values.rewarm ?? false,
    profiles,
    cacheDir,
    exe,
    env,
    command: `init ${childArgs.join(" ")}`.trim(),
    quiet: values.quiet ?? false,
    onWait: (holder) =>
      console.error(
        `waiting for the warm-up already running${
          holder ? ` (pid ${holder.pid}, ${holder.command})` : ""
        }…`,
      ),
  });
  console.log(
    outcome.alreadyWarm && outcome.skipped
      ? `${outcome.summary} (${outcome.skipped} skipped)`
      : outcome.summary,
  );
  // A project named on the command line that does not build is the caller's to fix.
  return outcome.projectFailed ? 1 : 0;
}
