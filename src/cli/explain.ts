/**
 * `cargo-warmup explain`: why a build's crates were compiled rather than served. `--last` explains
 * every miss of the most recent build, grouped by root cause; `explain CRATE[@VERSION]` tells what
 * happened to one crate in the latest build that had it. The answers come from the build journal
 * (src/journal/).
 * @module
 */

import { openManagedCache } from "./open_cache.ts";
import { openIndex } from "../index/index_db.ts";
import { settleDaemons } from "../daemon/settle.ts";
import { runtimeDirOf } from "../runtime_dir.ts";
import { parseFlags } from "./parse_flags.ts";
import { formatUtcTime } from "../units.ts";
import { UsageError } from "./usage_error.ts";
import type { JournalBuild, JournalCall, JournalTables } from "../index/journal_tables.ts";
import { candidateBuilds, noBuildMessage } from "../journal/pick_build.ts";
import {
  type BuildExplanation,
  explainBuild,
  explainCall,
  labelOf,
  type RootCause,
} from "../journal/explain.ts";

const EXPLAIN_HELP = `Usage: cargo-warmup explain --last [--all] [--json]
       cargo-warmup explain CRATE[@VERSION] [--all] [--json]
       cargo-warmup explain --build ID [--json]

Why crates were compiled rather than served. Each miss is compared with the nearest cached entry
of the same crate, version and kind; a dependency that differs is followed down to its own miss,
so one cause deep in the graph is named once, with every crate it made miss.

Options:
  --last        The most recent build of the project in this directory
  --build ID    That build (ids as 'explain' and 'report' print them)
  --all         The most recent build of any project
  --json        Print one JSON object
  -h, --help    Print help`;

/** Runs `explain`; resolves to the exit code. */
export async function runExplain(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags("explain", argv, {
    last: { type: "boolean" },
    build: { type: "string" },
    all: { type: "boolean" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, true);
  if (values.help) {
    console.log(EXPLAIN_HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError("explain: one crate at a time");
  const crate = positionals[0];
  if (crate === undefined && !values.last && values.build === undefined) {
    throw new UsageError("explain: say --last, --build ID or a crate");
  }
  const env = Deno.env.toObject();
  // What the last build left the daemon to write is in the journal too.
  await settleDaemons(runtimeDirOf(env), 5_000);
  const cache = await openManagedCache(env);
  const index = openIndex(cache.config.dir, (message) => console.error(`warning: ${message}`));
  try {
    const choice = {
      ...(values.build !== undefined ? { build: values.build } : {}),
      ...(values.all ? { all: true } : {}),
    };
    const builds = candidateBuilds(index.journal, choice);
    if (crate !== undefined) return explainCrate(crate, builds, index.journal, values.json);
    const build = builds[0];
    if (build === undefined) {
      console.error(`error: ${noBuildMessage(choice)}`);
      return 1;
    }
    const calls = index.journal.callsOf(build.id);
    const explained = explainBuild(calls, index.journal);
    console.log(
      values.json
        ? JSON.stringify({ build: buildSummary(build, calls), ...explained }, null, 2)
        : renderBuild(build, calls, explained),
    );
    return 0;
  } finally {
    index.close();
    await cache.close();
  }
}

/** What happened to `spec` (`name` or `name@version`) in the newest build that had it. */
function explainCrate(
  spec: string,
  builds: JournalBuild[],
  tables: JournalTables,
  json: boolean | undefined,
): number {
  const at = spec.indexOf("@");
  const name = (at === -1 ? spec : spec.slice(0, at)).replaceAll("_", "-");
  const version = at === -1 ? undefined : spec.slice(at + 1);
  const matches = (call: JournalCall) =>
    call.crate.replaceAll("_", "-") === name && (version === undefined || call.version === version);
  for (const build of builds) {
    const calls = tables.callsOf(build.id);
    // The compile first, then its build script and the run.
    const mine = calls.filter(matches).sort((a, b) => kindOrder(a.kind) - kindOrder(b.kind));
    if (mine.length === 0) continue;
    const explained = mine.map((call) => ({ call, ...explainCall(call, calls, tables) }));
    if (json) {
      console.log(JSON.stringify(
        {
          build: buildSummary(build, calls),
          calls: explained.map(({ call, ...rest }) => ({ outcome: call.outcome, ...rest })),
        },
        null,
        2,
      ));
      return 0;
    }
    const lines = [`in build ${build.id} of ${build.project} (${formatUtcTime(build.started)}):`];
    for (const { call, reasons, nearest, roots } of explained) {
      lines.push(`${labelOf(call)}: ${call.outcome === "miss" ? "compiled" : call.outcome}`);
      if (nearest) lines.push(`  compared with the cached entry ${nearest.slice(0, 16)}…`);
      for (const reason of reasons) lines.push(`  ${reason}`);
      for (
        const root of roots.filter((root) => root.crate !== call.crate || root.kind !== call.kind)
      ) {
        lines.push(`  because its dependency ${labelOf(root)} missed: ${root.reasons.join("; ")}`);
      }
    }
    console.log(lines.join("\n"));
    return 0;
  }
  const stored = tables.countEntriesOf(name, version);
  const message = stored === 0
    ? `${spec}: never cached (no entry, and not in the builds the journal keeps)`
    : `${spec}: ${stored} cached entries, but no kept build of this project used it ` +
      "(try --all)";
  console.log(json ? JSON.stringify({ crate: spec, found: false, entries: stored }) : message);
  return 0;
}

function kindOrder(kind: string): number {
  return ["lib", "proc-macro", "build-script", "build-run"].indexOf(kind) >>> 0;
}

function buildSummary(build: JournalBuild, calls: readonly JournalCall[]) {
  const count = (outcome: JournalCall["outcome"]) =>
    calls.filter((call) => call.outcome === outcome).length;
  return {
    id: build.id,
    project: build.project,
    started: new Date(build.started).toISOString(),
    seconds: Math.round(build.ended - build.started) / 1000,
    calls: calls.length,
    served: count("hit"),
    compiled: count("miss"),
    notCacheable: count("not-cacheable"),
  };
}

function renderBuild(
  build: JournalBuild,
  calls: readonly JournalCall[],
  explained: BuildExplanation,
): string {
  const summary = buildSummary(build, calls);
  const lines = [
    `build ${build.id} of ${build.project}, ${
      formatUtcTime(build.started)
    }: ${summary.calls} calls, ` +
    `${summary.served} served, ${summary.compiled} compiled, ${summary.notCacheable} not cacheable`,
  ];
  if (explained.rootCauses.length === 0) {
    lines.push("nothing was compiled that the cache could have served");
    return lines.join("\n");
  }
  const causes = explained.rootCauses.length;
  lines.push(`${causes} root cause${causes === 1 ? "" : "s"} of ${summary.compiled} misses:`);
  for (const cause of explained.rootCauses) lines.push(...renderCause(cause));
  return lines.join("\n");
}

function renderCause(cause: RootCause): string[] {
  const others = cause.made.filter((made) =>
    made.crate !== cause.crate || made.version !== cause.version
  );
  return [
    `  ${labelOf(cause)}: ${cause.reasons.join("; ")}`,
    ...(others.length > 0
      ? [`    and made ${others.length} more miss: ${others.map(labelOf).join(", ")}`]
      : []),
  ];
}
