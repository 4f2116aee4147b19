/**
 * `init --rewarm`: the crates, versions, features and profiles the index saw recently, turned
 * back into scratch members so a new toolchain gets them compiled before the next build asks.
 * @module
 */

import type { MemberDep, WarmMember } from "./plan.ts";
import { parseIndexTime } from "../index/index_db.ts";

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
