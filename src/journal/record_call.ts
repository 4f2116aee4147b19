/**
 * What a call leaves behind once it is decided: a line in the dispatch log (`CARGO_WARMUP_LOG`)
 * and a row in the cache's build journal (journal_tables.ts), from one record. The journal row is
 * only queued here; the cache writes it with its counters, after cargo has its answer.
 * @module
 */

import { basename, join } from "node:path";
import { sha256Hex } from "../digest.ts";
import type { Cache } from "../cache/cache.ts";
import { appendDispatchLog, type DispatchLogLine } from "../dispatch/dispatch_log.ts";
import type { DispatchRequest } from "../dispatch/request.ts";
import type { RustcArgs } from "../dispatch/rustc_args.ts";
import { processStart } from "../dispatch/warn_once.ts";
import { WARMING_ENV, workspaceRootFrom } from "../warm/project_graphs.ts";
import type { JournalCall, Recipe } from "./journal_tables.ts";

/** One decided call: the dispatch log's fields and what only the journal keeps. */
export interface CallRecord extends Omit<DispatchLogLine, "ms" | "via" | "phases"> {
  version: string;
  kind: string;
  slot?: string;
  stem?: string;
  savedMs?: number;
  bytes?: number;
  recipe?: Recipe;
}

/** Logs `record` and, when the call had a cache, queues it for that cache's journal. */
export function recordCall(
  request: DispatchRequest,
  cache: Cache | undefined,
  record: CallRecord,
): void {
  const ms = request.phases.elapsed();
  const { slot: _slot, stem: _stem, savedMs: _saved, bytes: _bytes, recipe: _recipe, ...line } =
    record;
  appendDispatchLog(request.env.CARGO_WARMUP_LOG, {
    ...line,
    via: request.via,
    ms: Math.round(ms),
    phases: request.phases.ended,
  });
  if (cache === undefined) return;
  cache.journal({ ...journalBuildOf(request), started: Date.now() - ms, ms, ...record }, request);
}

/** What a call the cache cannot parse compiles, from its arguments, for the journal. */
export function kindOfCall(argv: readonly string[]): string {
  const crateName = argv[argv.indexOf("--crate-name") + 1] ?? "";
  if (crateName.startsWith("build_script_")) return "build-script";
  const types = argv.flatMap((arg, i) =>
    arg === "--crate-type"
      ? [argv[i + 1] ?? ""]
      : arg.startsWith("--crate-type=")
      ? [arg.slice(13)]
      : []
  );
  if (types.includes("proc-macro")) return "proc-macro";
  if (types.includes("bin")) return "bin";
  return types.length > 0 ? "lib" : "other";
}

/** The artefacts' file stem of a compile: how its dependents' `--extern` paths name them. */
export function stemOf(args: RustcArgs): string {
  return args.crateName + args.extraFilename;
}

/**
 * A compile's recipe for the journal: what its key hashed, and which artefact each `--extern`
 * names (by stem), to follow a differing dependency down to its own miss.
 */
export function recipeOf(inputs: Record<string, unknown>, args: RustcArgs): Recipe {
  const externStems: Record<string, string> = {};
  for (const extern of args.externs) {
    if (extern.path === undefined) continue;
    const stem = /^lib(.+)\.(rlib|rmeta|so|dylib|dll)$/.exec(basename(extern.path))?.[1] ??
      /^(.+)\.dll$/.exec(basename(extern.path))?.[1];
    if (stem !== undefined) externStems[extern.name] = stem;
  }
  return { inputs, externStems };
}

/** Builds by build id: their journal name and project, worked out once per build. */
type BuildOf = Pick<JournalCall, "build" | "project" | "lockfile" | "warming">;
const builds = new Map<string, { of: BuildOf; at: number }>();
const BUILD_MEMO_MS = 10_000;

/** The build `request` belongs to as the journal names it, and its project. */
export function journalBuildOf(request: DispatchRequest): BuildOf {
  const now = Date.now();
  const known = builds.get(request.buildId);
  if (known !== undefined && now - known.at < BUILD_MEMO_MS) return known.of;
  const start = processStart(request.buildId);
  const root = workspaceRootFrom(request.cargoCwd);
  const of = {
    // The pid alone would name many builds over a daemon's life.
    build: start ? `${request.buildId}@${start}` : request.buildId,
    project: root ?? request.cargoCwd,
    lockfile: root === undefined ? "" : lockfileDigest(join(root, "Cargo.lock")),
    warming: request.env[WARMING_ENV] !== undefined,
  };
  if (builds.size >= 64) builds.clear();
  builds.set(request.buildId, { of, at: now });
  return of;
}

function lockfileDigest(path: string): string {
  try {
    return sha256Hex(Deno.readFileSync(path)).slice(0, 32);
  } catch {
    return "";
  }
}
