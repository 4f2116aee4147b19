/**
 * `cargo-warmup init`: pre-warm the cache with a tier of common crates, one project's registry
 * dependencies, or the recently used set rebuilt for the current toolchain; in the foreground
 * with a progress line, or detached with `--background`.
 * @module
 */

import { UsageError } from "./usage_error.ts";
import { parseFlags } from "./parse_flags.ts";
import { formatDuration } from "../units.ts";
import { loadConfig } from "../config/config.ts";
import { IndexDb } from "../index/index_db.ts";
import { createLocalStore } from "../../backends/local.ts";
import { cargoEnv } from "../warm/_cargo.ts";
import { loadTierFile, loadTiers, TIER_COUNT } from "../warm/tiers.ts";
import { membersOfTiers, resolveMembers, type WarmGroup, type WarmMember } from "../warm/plan.ts";
import { membersOfLockfile, stubProject } from "../warm/project.ts";
import { membersOfRecent, type RecentRow } from "../warm/rewarm.ts";
import { type RecordedProject, recordedProjects } from "../warm/project_graphs.ts";
import { markWarmFor } from "../warm/warm_for.ts";
import { buildGroups } from "../warm/build.ts";
import { ProgressReporter } from "../warm/progress.ts";
import { recordedKeys, recordWarmup, toolchainText, warmFingerprint } from "../warm/warm_record.ts";
import { BACKGROUND_LOG_ENV, isRunning, lockWarmup, spawnBackground } from "../warm/background.ts";
import { readWarmState } from "../warm/progress.ts";
import { dirname, join, resolve } from "node:path";
import { parseRustcVersion } from "../rustc_version.ts";
import { errorMessage } from "../error_message.ts";

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

  if (values.background && !env[BACKGROUND_LOG_ENV]) {
    const running = await readWarmState(cacheDir);
    const childArgs = argv.filter((arg) => arg !== "--background");
    const busy = running && (running.phase === "resolving" || running.phase === "building") &&
      isRunning(running.pid);
    const child = await spawnBackground(exe, childArgs, cacheDir, cleanChildEnv(env), !busy);
    console.log(
      `warm-up started in the background (pid ${child.pid})` +
        (busy ? `; it starts when the one running now (pid ${running!.pid}) finishes` : "") +
        `\nlog: ${child.log}\nprogress: cargo-warmup status`,
    );
    return 0;
  }

  const command = `init ${argv.filter((arg) => arg !== "--background").join(" ")}`.trim();
  const lock = await lockWarmup(cacheDir, (holder) => {
    console.error(
      `waiting for the warm-up already running${
        holder ? ` (pid ${holder.pid}, ${holder.command})` : ""
      }…`,
    );
  });
  const progress = new ProgressReporter(cacheDir, {
    command,
    phase: "resolving",
    ...(env[BACKGROUND_LOG_ENV] ? { log: env[BACKGROUND_LOG_ENV] } : {}),
  }, { quiet: values.quiet ?? false });
  const scratch = await Deno.makeTempDir({ prefix: "cargo-warmup-init-" });
  try {
    return await warm({
      tier,
      tierFiles,
      manifest: values.manifest,
      lockfile: values.lockfile,
      rewarm: values.rewarm ?? false,
      profiles,
      cacheDir,
      exe,
      env: cargoEnv(env),
      scratch,
      progress,
    });
  } catch (error) {
    progress.finish("failed", errorMessage(error));
    throw error;
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
    lock.close();
  }
}

interface WarmOptions {
  tier: number | undefined;
  tierFiles: string[];
  manifest: string | undefined;
  lockfile: string | undefined;
  rewarm: boolean;
  profiles: string[];
  cacheDir: string;
  exe: string;
  env: Record<string, string>;
  scratch: string;
  progress: ProgressReporter;
}

async function warm(options: WarmOptions): Promise<number> {
  const { progress, env, cacheDir } = options;
  const toolchain = await toolchainText(options.scratch, env);
  const { release, host } = parseRustcVersion(toolchain);
  progress.update({ phase: "resolving", rustc: release, current: "resolving crates" });

  const members: WarmMember[] = [];
  if (options.tier !== undefined) members.push(...membersOfTiers(await loadTiers(options.tier)));
  for (const file of options.tierFiles) {
    members.push(...membersOfTiers([await loadTierFile(file)]));
  }
  const groups: WarmGroup[] = [];
  const profiles = [...options.profiles];
  const rewarmed: Array<{ root: string; label: string }> = [];
  let skipped = 0;
  if (options.rewarm) {
    const projects = recordedProjects(cacheDir);
    if (projects.length > 0) {
      for (const [index, project] of projects.entries()) {
        progress.update({ current: `reading ${project.root}` });
        try {
          const group = await rewarmGroup(project, join(options.scratch, `rewarm-${index}`), env);
          groups.push(group);
          rewarmed.push({ root: project.root, label: group.builds[0]!.label });
          if (!profiles.includes(project.profile)) profiles.push(project.profile);
        } catch (error) {
          skipped++;
          progress.note(`warning: skipping ${project.root}: ${errorMessage(error)}`);
        }
      }
    } else {
      // A cache filled before projects were recorded: rebuild guesses of the units it holds.
      const recent = membersOfRecent(recentRows(cacheDir), host);
      if (recent.length === 0) {
        progress.note("note: the index has no recently used crates to re-warm");
      }
      members.push(...recent);
    }
  }
  // A lockfile with its manifest beside it is that project; a lone one warms its versions.
  let manifest = options.manifest;
  if (options.lockfile !== undefined && manifest === undefined) {
    const beside = join(dirname(resolve(options.lockfile)), "Cargo.toml");
    if (await Deno.stat(beside).then(() => true, () => false)) manifest = beside;
    else members.push(...await membersOfLockfile(options.lockfile));
  }

  if (members.length > 0) {
    const resolved = await resolveMembers(
      join(options.scratch, "tiers"),
      members,
      env,
      (done, total) =>
        progress.update({ current: `checking which crates the registry has: ${done}/${total}` }),
    );
    groups.push(...resolved.groups);
    skipped = resolved.skipped.length;
    for (const skip of resolved.skipped) {
      progress.note(`warning: skipping ${skip.label}: ${skip.reason}`);
    }
  }
  if (manifest !== undefined) {
    groups.push(
      await stubProject(manifest, options.lockfile, join(options.scratch, "project"), env),
    );
  }

  const started = performance.now();
  const fingerprint = await warmFingerprint(groups, profiles, env);
  const known = await recordedKeys(cacheDir, fingerprint);
  const warmed = (failed: Array<{ label: string }>) =>
    markWarmFor(cacheDir, release, {
      tiers: Array.from({ length: options.tier ?? 0 }, (_, tier) => tier + 1),
      projects: rewarmed.filter((project) => !failed.some((fail) => fail.label === project.label))
        .map((project) => project.root),
    });
  if (known !== undefined && await allStored(cacheDir, known)) {
    warmed([]);
    const summary =
      `already warm: ${known.length} units cached for rustc ${release}, nothing to build`;
    progress.finish("done", summary);
    console.log(summary + (skipped ? ` (${skipped} skipped)` : ""));
    return 0;
  }

  const dispatchLog = env.CARGO_WARMUP_LOG || join(options.scratch, "dispatch.jsonl");
  const outcome = await buildGroups({
    groups,
    profiles,
    wrapper: options.exe,
    cacheDir,
    env,
    dispatchLog,
    progress,
  });
  if (outcome.failed.length === 0) await recordWarmup(cacheDir, fingerprint, outcome.keys);
  warmed(outcome.failed);
  const elapsed = formatDuration(performance.now() - started);
  const summary = `warmed ${outcome.keys.size} units in ${elapsed} for rustc ${release}: ` +
    `${outcome.misses} compiled, ${outcome.hits} already cached` +
    (skipped ? `, ${skipped} entries skipped` : "") +
    (outcome.failed.length ? `, ${outcome.failed.length} builds failed` : "");
  progress.finish("done", summary);
  console.log(summary);
  const explicitProject = manifest !== undefined;
  return explicitProject && outcome.failed.length > 0 ? 1 : 0;
}

/**
 * The warm group of a remembered project: its copied tree stubbed (see project.ts), built with
 * the selection, features and profile its last build used, so that cargo unifies features and
 * picks host units as that build did.
 */
async function rewarmGroup(
  project: RecordedProject,
  scratch: string,
  env: Record<string, string>,
): Promise<WarmGroup> {
  const group = await stubProject(join(project.tree, "Cargo.toml"), undefined, scratch, env);
  const selected = project.args.flatMap((arg, index) =>
    arg === "-p" || arg === "--package" ? [project.args[index + 1]!] : []
  );
  const everything = project.args.some((arg) => arg === "--workspace" || arg === "--all");
  const roots = selected.length > 0
    ? selected
    : group.builds.find((build) => everything === build.args.includes("--workspace"))?.roots ??
      group.builds[0]!.roots;
  const command = ["cargo build", ...project.args].join(" ");
  group.builds = [{
    label: `${project.root} (${command}, ${project.profile})`,
    args: project.args,
    roots,
    profiles: [project.profile],
  }];
  return group;
}

function recentRows(cacheDir: string): RecentRow[] {
  const index = new IndexDb(cacheDir);
  try {
    return index.artefacts() as unknown as RecentRow[];
  } finally {
    index.close();
  }
}

async function allStored(cacheDir: string, keys: string[]): Promise<boolean> {
  const store = createLocalStore({ dir: cacheDir });
  try {
    for (const key of keys) if (!(await store.has(key))) return false;
    return true;
  } finally {
    await store.close().catch(() => {});
  }
}

/** The detached child gets the caller's environment, minus the marker that it is the child. */
function cleanChildEnv(env: Record<string, string>): Record<string, string> {
  const clean = { ...env };
  delete clean[BACKGROUND_LOG_ENV];
  return clean;
}
