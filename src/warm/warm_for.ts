/**
 * What is warm for which rustc, for `status`: the tiers an `init` finished and the remembered
 * projects whose graphs were built (by the project's own build or by `init --rewarm`) with each
 * release. Kept in `warm/warm-for/<release>.json`; a convenience, never trusted for serving.
 * @module
 */

import { join } from "node:path";
import { warmDir } from "./warm_dir.ts";
import { recordedProjects } from "./project_graphs.ts";
import { writeFileAtomicSync } from "../write_atomic.ts";

interface WarmFor {
  tiers: number[];
  /** Workspace roots of remembered projects. */
  projects: string[];
}

function warmForPath(cacheDir: string, release: string): string {
  return join(warmDir(cacheDir), "warm-for", `${release.replace(/[^\w.+-]/g, "_")}.json`);
}

function readWarmFor(cacheDir: string, release: string): WarmFor {
  try {
    const record = JSON.parse(Deno.readTextFileSync(warmForPath(cacheDir, release)));
    return {
      tiers: Array.isArray(record.tiers) ? record.tiers.filter(Number.isInteger) : [],
      projects: Array.isArray(record.projects)
        ? record.projects.filter((root: unknown) => typeof root === "string")
        : [],
    };
  } catch {
    return { tiers: [], projects: [] };
  }
}

/** Adds what a finished warm-up made warm for `release`. */
export function markWarmFor(cacheDir: string, release: string, warmed: WarmFor): void {
  const known = readWarmFor(cacheDir, release);
  const merged = {
    tiers: [...new Set([...known.tiers, ...warmed.tiers])].sort(),
    projects: [...new Set([...known.projects, ...warmed.projects])],
  };
  const path = warmForPath(cacheDir, release);
  Deno.mkdirSync(join(warmDir(cacheDir), "warm-for"), { recursive: true });
  writeFileAtomicSync(path, JSON.stringify(merged) + "\n");
}

/**
 * The `status` line of what is warm for `release`, e.g. `warm for     rustc 1.95.0: tier 1;
 * 2 of 3 remembered projects`; undefined when nothing is remembered or warmed.
 */
export function warmForLine(cacheDir: string, release: string): string | undefined {
  const { tiers, projects } = readWarmFor(cacheDir, release);
  const remembered = recordedProjects(cacheDir);
  const warm = remembered.filter((project) =>
    project.rustc === release || projects.includes(project.root)
  );
  const parts = [
    ...(tiers.length ? [`tier ${tiers.join(", ")}`] : []),
    ...(remembered.length ? [`${warm.length} of ${remembered.length} remembered projects`] : []),
  ];
  if (parts.length === 0) return undefined;
  const cold = remembered.length - warm.length;
  return `warm for     rustc ${release}: ${parts.join("; ")}` +
    (cold > 0 ? ` ('cargo-warmup init --rewarm' builds the other ${cold})` : "");
}
