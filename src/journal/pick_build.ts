/**
 * Which kept build a manager command (`explain`, `report`) is about: the most recent build of the
 * project in the current directory (of any project with `all`), or the one named by its id.
 * @module
 */

import { workspaceRootFrom } from "../workspace_root.ts";
import type { JournalBuild, JournalTables } from "../index/journal_tables.ts";

/** How the build was asked for. */
export interface BuildChoice {
  /** A build id as `explain`/`report` print it. */
  build?: string;
  /** Any project's builds, not only the current directory's. */
  all?: boolean;
  /** Where the command runs (default: the current directory). */
  cwd?: string;
}

/**
 * The builds a command may choose from, newest first: the named one, or the user's builds (not a
 * warm-up's) of this project, or of every project.
 */
export function candidateBuilds(tables: JournalTables, choice: BuildChoice): JournalBuild[] {
  if (choice.build !== undefined) {
    return tables.builds({ warming: true }).filter((build) => build.id === choice.build);
  }
  if (choice.all) return tables.builds();
  const cwd = choice.cwd ?? Deno.cwd();
  return tables.builds({ project: workspaceRootFrom(cwd) ?? cwd });
}

/** Says what was looked for when no build matched. */
export function noBuildMessage(choice: BuildChoice): string {
  if (choice.build !== undefined) {
    return `no build "${choice.build}" in the journal (it keeps the last builds only)`;
  }
  return choice.all
    ? "no build through the cache is recorded yet"
    : "no build of this project through the cache is recorded yet " +
      "(run it here, or pass --all for any project's)";
}
