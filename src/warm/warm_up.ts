/**
 * One warm-up from start to finish, as `init` runs it in the foreground or as the detached child
 * of `init --background`: one at a time per cache, progress shown and kept for `status`, the
 * groups gathered from what was asked for, and then either nothing (a record says every unit is
 * still cached) or the builds through the wrapper, recorded for next time.
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { createLocalStore } from "../../backends/local.ts";
import { errorMessage } from "../error_message.ts";
import { parseRustcVersion } from "../rustc_version.ts";
import { formatDuration } from "../units.ts";
import { cargoEnv } from "./_cargo.ts";
import { BACKGROUND_LOG_ENV, lockWarmup } from "./background.ts";
import { buildGroups } from "./build.ts";
import { membersOfTiers, resolveMembers, type WarmGroup, type WarmMember } from "./plan.ts";
import { ProgressReporter, type WarmState } from "./progress.ts";
import { membersOfLockfile, stubProject } from "./project.ts";
import { planRewarm } from "./rewarm.ts";
import { loadTierFile, loadTiers } from "./tiers.ts";
import { markWarmFor } from "./warm_for.ts";
import { recordedKeys, recordWarmup, toolchainText, warmFingerprint } from "./warm_record.ts";

/** What to warm and where, as `init`'s flags and environment say. */
export interface WarmUpRequest {
  /** Shipped tiers 1 to `tier`. */
  tier: number | undefined;
  /** Crate lists of the user's own, in the format of the shipped tiers. */
  tierFiles: string[];
  /** The Cargo.toml of a project whose registry dependencies to warm. */
  manifest: string | undefined;
  /** The Cargo.lock of such a project (a lone one warms its versions with default features). */
  lockfile: string | undefined;
  /** Rebuild what recent builds needed, for the current toolchain. */
  rewarm: boolean;
  /** Cargo profiles to build. */
  profiles: string[];
  /** The local level, where builds are served from: what the warm-up fills and checks. */
  cacheDir: string;
  /** The program cargo runs as RUSTC_WRAPPER for the warm-up's builds. */
  exe: string;
  /** The caller's environment; cargo's is derived from it. */
  env: Record<string, string>;
  /** The command line `status` shows, e.g. `init --tier=1`. */
  command: string;
  /** No progress line (warnings still print). */
  quiet: boolean;
  /** Called once when another warm-up holds the cache's warm-up lock, before waiting for it. */
  onWait: (holder: WarmState | undefined) => void;
}

/** How a warm-up ended (one that throws is recorded as failed in the state file). */
export interface WarmUpOutcome {
  /** The one-line summary, also kept in the state file for `status`. */
  summary: string;
  /** Whether every unit was known to be cached already, so nothing was built. */
  alreadyWarm: boolean;
  /** Entries left out: crates the registry could not supply, projects that could not be read. */
  skipped: number;
  /** A build of the project named by `manifest` or `lockfile` failed. */
  projectFailed: boolean;
}

/**
 * Runs one warm-up, waiting for the lock while another one runs in the same cache.
 *
 * @example
 * ```ts ignore
 * const outcome = await warmUp({
 *   tier: 1, tierFiles: [], manifest: undefined, lockfile: undefined, rewarm: false,
 *   profiles: ["dev"], cacheDir, exe: Deno.execPath(), env: Deno.env.toObject(),
 *   command: "init --tier=1", quiet: true, onWait: () => console.error("waiting…"),
 * });
 * console.log(outcome.summary);
 * // warmed 120 units in 1m 40s for rustc 1.95.0: 118 compiled, 2 already cached
 * ```
 */
export async function warmUp(request: WarmUpRequest): Promise<WarmUpOutcome> {
  const { cacheDir, env } = request;
  const lock = await lockWarmup(cacheDir, request.onWait);
  const progress = new ProgressReporter(cacheDir, {
    command: request.command,
    phase: "resolving",
    ...(env[BACKGROUND_LOG_ENV] ? { log: env[BACKGROUND_LOG_ENV] } : {}),
  }, { quiet: request.quiet });
  const scratch = await Deno.makeTempDir({ prefix: "cargo-warmup-init-" });
  try {
    return await warmInScratch(request, cargoEnv(env), scratch, progress);
  } catch (error) {
    progress.finish("failed", errorMessage(error));
    throw error;
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
    lock.close();
  }
}

async function warmInScratch(
  request: WarmUpRequest,
  env: Record<string, string>,
  scratch: string,
  progress: ProgressReporter,
): Promise<WarmUpOutcome> {
  const { cacheDir } = request;
  const toolchain = await toolchainText(scratch, env);
  const { release, host } = parseRustcVersion(toolchain);
  progress.update({ phase: "resolving", rustc: release, current: "resolving crates" });

  const members: WarmMember[] = [];
  if (request.tier !== undefined) members.push(...membersOfTiers(await loadTiers(request.tier)));
  for (const file of request.tierFiles) {
    members.push(...membersOfTiers([await loadTierFile(file)]));
  }
  const groups: WarmGroup[] = [];
  const profiles = [...request.profiles];
  const rewarmed: Array<{ root: string; label: string }> = [];
  let skipped = 0;
  if (request.rewarm) {
    const plan = await planRewarm(cacheDir, host, scratch, env, progress);
    groups.push(...plan.groups);
    rewarmed.push(...plan.projects);
    for (const profile of plan.profiles) if (!profiles.includes(profile)) profiles.push(profile);
    members.push(...plan.members);
    skipped = plan.skipped;
  }
  // A lockfile with its manifest beside it is that project; a lone one warms its versions.
  let manifest = request.manifest;
  if (request.lockfile !== undefined && manifest === undefined) {
    const beside = join(dirname(resolve(request.lockfile)), "Cargo.toml");
    if (await Deno.stat(beside).then(() => true, () => false)) manifest = beside;
    else members.push(...await membersOfLockfile(request.lockfile));
  }

  if (members.length > 0) {
    const resolved = await resolveMembers(
      join(scratch, "tiers"),
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
    groups.push(await stubProject(manifest, request.lockfile, join(scratch, "project"), env));
  }

  const started = performance.now();
  const fingerprint = await warmFingerprint(groups, profiles, env);
  const known = await recordedKeys(cacheDir, fingerprint);
  const warmed = (failed: Array<{ label: string }>) =>
    markWarmFor(cacheDir, release, {
      tiers: Array.from({ length: request.tier ?? 0 }, (_, tier) => tier + 1),
      projects: rewarmed.filter((project) => !failed.some((fail) => fail.label === project.label))
        .map((project) => project.root),
    });
  if (known !== undefined && await allStored(cacheDir, known)) {
    warmed([]);
    const summary =
      `already warm: ${known.length} units cached for rustc ${release}, nothing to build`;
    progress.finish("done", summary);
    return { summary, alreadyWarm: true, skipped, projectFailed: false };
  }

  const dispatchLog = env.CARGO_WARMUP_LOG || join(scratch, "dispatch.jsonl");
  const outcome = await buildGroups({
    groups,
    profiles,
    wrapper: request.exe,
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
  return {
    summary,
    alreadyWarm: false,
    skipped,
    projectFailed: manifest !== undefined && outcome.failed.length > 0,
  };
}

/** Whether every key is in the local level. */
async function allStored(cacheDir: string, keys: string[]): Promise<boolean> {
  const store = createLocalStore({ dir: cacheDir });
  try {
    for (const key of keys) if (!(await store.has(key))) return false;
    return true;
  } finally {
    await store.close().catch(() => {});
  }
}
