/**
 * `init --rewarm`: what recent builds needed, rebuilt for the current toolchain before the next
 * build asks. The projects the cache remembers are rebuilt as their own builds ran; a cache
 * filled before projects were remembered falls back to the crates, versions, features and
 * profiles the index saw recently, turned back into scratch members.
 * @module
 */

import { join } from "node:path";
import type { MemberDep, WarmGroup, WarmMember } from "./plan.ts";
import { openIndex, parseIndexTime } from "../index/index_db.ts";
import { type RecordedProject, recordedProjects } from "./project_graphs.ts";
import { stubProject } from "./project.ts";
import { errorMessage } from "../error_message.ts";
import type { ProgressReporter } from "./progress.ts";

/** Rows older than this (by last use) are not re-warmed. */
export const RECENT_DAYS = 30;

/** The fields of an index row re-warming reads. */
export interface RecentRow {
  crate: string;
  version: string;
  kind: string;
  source: string;
  features: string;
  profile: string;
  target: string;
  last_used: string;
}

/** What `--rewarm` adds to a warm-up. */
export interface RewarmPlan {
  /** One group per remembered project that could be read. */
  groups: WarmGroup[];
  /** The remembered projects those groups rebuild: workspace root and build label. */
  projects: Array<{ root: string; label: string }>;
  /** The profiles the remembered projects were built with, in the order first seen. */
  profiles: string[];
  /** Without remembered projects: the recently used crates, as scratch members. */
  members: WarmMember[];
  /** Remembered projects that could not be read (each said with a warning). */
  skipped: number;
}

/**
 * Plans the re-warm of the cache in `cacheDir` for a toolchain whose host is `host`: a group per
 * remembered project (its copied tree stubbed under `scratch`), or, when none is remembered,
 * the recently used crates of the index. Says on `progress` what it reads and what it skips.
 */
export async function planRewarm(
  cacheDir: string,
  host: string,
  scratch: string,
  env: Record<string, string>,
  progress: Pick<ProgressReporter, "update" | "note">,
): Promise<RewarmPlan> {
  const plan: RewarmPlan = { groups: [], projects: [], profiles: [], members: [], skipped: 0 };
  const projects = recordedProjects(cacheDir);
  if (projects.length === 0) {
    // A cache filled before projects were recorded: rebuild guesses of the units it holds.
    plan.members = membersOfRecent(recentRows(cacheDir), host);
    if (plan.members.length === 0) {
      progress.note("note: the index has no recently used crates to re-warm");
    }
    return plan;
  }
  for (const [index, project] of projects.entries()) {
    progress.update({ current: `reading ${project.root}` });
    try {
      const group = await rewarmGroup(project, join(scratch, `rewarm-${index}`), env);
      plan.groups.push(group);
      plan.projects.push({ root: project.root, label: group.builds[0]!.label });
      if (!plan.profiles.includes(project.profile)) plan.profiles.push(project.profile);
    } catch (error) {
      plan.skipped++;
      progress.note(`warning: skipping ${project.root}: ${errorMessage(error)}`);
    }
  }
  return plan;
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

/** The index's rows, most recently used first, with the fields re-warming reads. */
function recentRows(cacheDir: string): RecentRow[] {
  const index = openIndex(cacheDir);
  try {
    return index.artefacts().map(recentRowOf);
  } finally {
    index.close();
  }
}

/** The fields of one index row that re-warming reads; every one is a TEXT NOT NULL column. */
function recentRowOf(row: Record<string, string | number>): RecentRow {
  return {
    crate: String(row.crate),
    version: String(row.version),
    kind: String(row.kind),
    source: String(row.source),
    features: String(row.features),
    profile: String(row.profile),
    target: String(row.target),
    last_used: String(row.last_used),
  };
}

/**
 * Groups recently used library and proc-macro variants into members. A member holds at most one
 * feature set per crate version, and each crate is pinned to its exact features with
 * `default-features = false`, so a set of rows that came from one build reproduces that build's
 * feature unification. Git and cross-compiled rows are left out: a version requirement cannot
 * name a git revision, and another target needs its own toolchain setup.
 *
 * @example
 * ```ts
 * import { membersOfRecent } from "./rewarm.ts";
 * const rows = [{ crate: "itoa", version: "1.0.1", kind: "lib", source: "registry:x",
 *   features: "", profile: "opt-level=0,debuginfo=2", target: "x86_64-unknown-linux-gnu",
 *   last_used: new Date().toISOString() }];
 * console.log(membersOfRecent(rows, "x86_64-unknown-linux-gnu")[0]?.profiles); // ["dev"]
 * ```
 */
export function membersOfRecent(
  rows: RecentRow[],
  host: string,
  now: Date = new Date(),
): WarmMember[] {
  const cutoff = now.getTime() - RECENT_DAYS * 24 * 60 * 60 * 1000;
  const members: Array<
    { deps: Map<string, MemberDep>; profiles: Set<string>; hostOnly: Set<string> }
  > = [];
  const seen = new Set<string>();
  const sorted = [...rows].sort((a, b) => b.last_used.localeCompare(a.last_used));
  for (const row of sorted) {
    if (row.kind !== "lib" && row.kind !== "proc-macro") continue;
    // Only published crates can be fetched by name and version; the rest are some project's own.
    if (/^(git|workspace|path):/.test(row.source) || row.target !== host) continue;
    if (parseIndexTime(row.last_used) < cutoff) continue;
    const profile = /opt-level=[1-3sz]/.test(row.profile) ? "release" : "dev";
    // Cargo builds proc-macros and build dependencies for the host without optimisation or
    // debug info in every profile: an unoptimised library without debug info was one of those.
    const hostUnit = row.kind === "lib" && row.profile === "opt-level=0,debuginfo=0";
    // Cargo allows one version per semver-compatible range in a graph (the host's and the
    // target's apart): that is the slot a variant takes in a member.
    const id = `${hostUnit ? "host" : "target"}:${row.crate}@${compatibleRange(row.version)}`;
    const variant = `${id}|${row.version}|${row.features}|${profile}`;
    if (seen.has(variant)) continue;
    seen.add(variant);
    const features = row.features === "" ? [] : row.features.split(",");
    let member = members.find((candidate) => {
      const present = candidate.deps.get(id);
      return present === undefined ||
        (present.version === `=${row.version}` && present.features.join(",") === row.features);
    });
    if (member === undefined) {
      member = { deps: new Map(), profiles: new Set(), hostOnly: new Set() };
      members.push(member);
    }
    member.deps.set(id, {
      name: row.crate,
      version: `=${row.version}`,
      features,
      defaultFeatures: false,
      ...(hostUnit ? { host: true } : {}),
    });
    // Host units look the same in every profile; they say nothing about the profiles used.
    (row.kind === "proc-macro" || hostUnit ? member.hostOnly : member.profiles).add(profile);
  }
  return members.map((member, index) => {
    const profiles = member.profiles.size > 0 ? member.profiles : member.hostOnly;
    return {
      label: `recent set ${index + 1} (${member.deps.size} crates)`,
      deps: [...member.deps.values()],
      profiles: [...profiles].sort(),
    };
  });
}

function compatibleRange(version: string): string {
  const [major = "0", minor = "0", patch = "0"] = version.split(/[.+-]/);
  if (major !== "0") return major;
  return minor !== "0" ? `0.${minor}` : `0.0.${patch}`;
}
