/**
 * What a call leaves behind once it is decided: a line in the dispatch log (`CARGO_WARMUP_LOG`)
 * and a row in the cache's build journal (journal_tables.ts), from one record. The journal row is
 * only queued here; the cache writes it with its counters, after cargo has its answer.
 * @module
 */

import { basename } from "node:path";
import type { Cache } from "../cache/cache.ts";
import { appendDispatchLog, type DispatchLogLine } from "./dispatch_log.ts";
import type { DispatchRequest } from "./request.ts";
import type { RustcArgs } from "./rustc_args.ts";
import { unitKindOf } from "./outputs.ts";
import type { Recipe } from "../index/journal_tables.ts";

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
  cache.journal({
    ...request.builds.journalBuildOf(request),
    started: Date.now() - ms,
    ms,
    ...record,
  }, request);
}

/**
 * What a call the cache cannot parse compiles, for the journal: its kind as a parsed call's
 * ({@linkcode unitKindOf}), from the arguments it names; "other" when it names no crate type.
 */
export function kindOfCall(argv: readonly string[]): string {
  const valuesOf = (flag: string) =>
    argv.flatMap((arg, i) =>
      arg === flag
        ? [argv[i + 1] ?? ""]
        : arg.startsWith(`${flag}=`)
        ? [arg.slice(flag.length + 1)]
        : []
    );
  const crateTypes = valuesOf("--crate-type");
  const crateName = valuesOf("--crate-name")[0] ?? "";
  if (crateTypes.length === 0 && !crateName.startsWith("build_script_")) return "other";
  // rustc's default is to link.
  const emit = valuesOf("--emit").flatMap((kinds) => kinds.split(",")).map((kind) =>
    kind.split("=")[0]!
  );
  return unitKindOf({ crateName, crateTypes, emit: emit.length > 0 ? emit : ["link"] });
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
