/**
 * Why a build's crates missed: each miss compared with the nearest stored entry of the same crate,
 * version and kind (recipe_diff.ts), and a dependency that differs followed down to that
 * dependency's own miss in the same build, so that one change deep in the graph (a feature of
 * proc-macro2) is reported once, with every crate it made miss (quote, syn, …).
 * @module
 */

import type { JournalCall, JournalTables } from "../index/journal_tables.ts";
import { type Difference, differencesOf } from "./recipe_diff.ts";

/** What a call is, as a user names it. */
export interface CallName {
  crate: string;
  version: string;
  kind: string;
}

/** Why one call missed. */
export interface MissExplanation extends CallName {
  key?: string;
  /** Its own differing inputs, or what else made it miss (a changed source, no entry at all). */
  reasons: string[];
  /** The stored entry it was compared with, when one had its inputs recorded. */
  nearest?: string;
  /** The dependencies (in this build) whose own misses made this one miss. */
  causedBy: CallName[];
}

/** One cause, with the calls it made miss (itself first). */
export interface RootCause extends CallName {
  reasons: string[];
  made: CallName[];
}

/** A build's misses explained. */
export interface BuildExplanation {
  rootCauses: RootCause[];
  misses: MissExplanation[];
}

/**
 * Explains every miss of the build whose calls are `calls`.
 *
 * @example
 * ```ts ignore
 * const { rootCauses } = explainBuild(index.journal.callsOf(build.id), index.journal);
 * ```
 */
export function explainBuild(
  calls: readonly JournalCall[],
  tables: JournalTables,
): BuildExplanation {
  const explainer = new Explainer(calls, tables);
  const misses = calls.filter((call) => call.outcome === "miss").map((call) =>
    explainer.explain(call)
  );
  // One cause per package: its library, build script and run miss for the same change.
  const causes = new Map<string, RootCause>();
  for (const call of calls.filter((call) => call.outcome === "miss")) {
    for (const root of explainer.rootsOf(call)) {
      const id = `${root.crate}@${root.version}`;
      let cause = causes.get(id);
      if (cause === undefined) {
        cause = { ...nameOf(root), reasons: [], made: [] };
        causes.set(id, cause);
      }
      if (root.kind === "lib" || root.kind === "proc-macro") cause.kind = root.kind;
      for (const reason of explainer.explain(root).reasons) {
        if (!cause.reasons.includes(reason)) cause.reasons.push(reason);
      }
      if (!cause.made.some((made) => sameCall(made, call))) cause.made.push(nameOf(call));
    }
  }
  // The cause that made the most crates miss first.
  const rootCauses = [...causes.values()].sort((a, b) => b.made.length - a.made.length);
  return { rootCauses, misses: misses.map(withoutCalls) };
}

/** Explains one call of a build (a miss in full; otherwise what happened). */
export function explainCall(
  call: JournalCall,
  calls: readonly JournalCall[],
  tables: JournalTables,
): MissExplanation & { roots: RootCause[] } {
  const explainer = new Explainer(calls, tables);
  const explanation = withoutCalls(explainer.explain(call));
  const roots = explainer.rootsOf(call).map((root) => ({
    ...nameOf(root),
    reasons: explainer.explain(root).reasons,
    made: [],
  }));
  return { ...explanation, roots };
}

class Explainer {
  readonly #tables: JournalTables;
  /** The build's compiles by artefact stem, to find the call behind an `--extern`. */
  readonly #byStem = new Map<string, JournalCall>();
  readonly #explained = new Map<JournalCall, MissExplanation & { dependencies: JournalCall[] }>();
  readonly #roots = new Map<JournalCall, JournalCall[]>();

  constructor(calls: readonly JournalCall[], tables: JournalTables) {
    this.#tables = tables;
    for (const call of calls) if (call.stem) this.#byStem.set(call.stem, call);
  }

  explain(call: JournalCall): MissExplanation & { dependencies: JournalCall[] } {
    let explained = this.#explained.get(call);
    if (explained === undefined) {
      // A placeholder first: a cycle (impossible in a crate graph, but cheap to rule out) ends.
      this.#explained.set(call, { ...nameOf(call), reasons: [], causedBy: [], dependencies: [] });
      explained = this.#explainMiss(call);
      this.#explained.set(call, explained);
    }
    return explained;
  }

  /** The calls at the bottom of `call`'s chains of dependency misses (itself if it has reasons). */
  rootsOf(call: JournalCall): JournalCall[] {
    const known = this.#roots.get(call);
    if (known !== undefined) return known;
    // Settled before the walk: a cycle (impossible in a crate graph, but cheap to rule out) ends.
    this.#roots.set(call, []);
    const { reasons, dependencies } = this.explain(call);
    const below = new Set(dependencies.flatMap((dependency) => this.rootsOf(dependency)));
    const roots = reasons.length > 0 || below.size === 0 ? [call, ...below] : [...below];
    this.#roots.set(call, roots);
    return roots;
  }

  #explainMiss(call: JournalCall): MissExplanation & { dependencies: JournalCall[] } {
    const base = { ...nameOf(call), ...(call.key ? { key: call.key } : {}) };
    if (call.outcome !== "miss") {
      return { ...base, reasons: [whatHappened(call)], causedBy: [], dependencies: [] };
    }
    // A reason means the key itself was found: its entry was stale, corrupt or unusable.
    if (call.reason) return { ...base, reasons: [call.reason], causedBy: [], dependencies: [] };
    const nearest = this.#nearestEntry(call);
    if (nearest === undefined) {
      const stored = this.#tables.countEntriesLike(call.crate, call.version, call.kind) -
        (call.key ? 1 : 0);
      const reason = stored > 0
        ? "the cached entries of this crate do not record their inputs (stored elsewhere or by an older version)"
        : `never cached: no entry of ${call.crate} ${call.version} (${call.kind})`;
      return { ...base, reasons: [reason], causedBy: [], dependencies: [] };
    }
    const reasons: string[] = [];
    const dependencies: JournalCall[] = [];
    for (const difference of nearest.differences) {
      const dependency = this.#dependencyCall(call, difference);
      if (dependency?.outcome === "miss") dependencies.push(dependency);
      else if (difference.dependency && dependency?.outcome === "hit") {
        reasons.push(`${difference.text}: it was served from another cached entry`);
      } else reasons.push(difference.text);
    }
    return {
      ...base,
      reasons,
      nearest: nearest.key,
      causedBy: dependencies.map(nameOf),
      dependencies,
    };
  }

  /** The stored entry of the same crate, version and kind that differs from `call` the least. */
  #nearestEntry(call: JournalCall): { key: string; differences: Difference[] } | undefined {
    if (!call.recipe) return undefined;
    let best: { key: string; differences: Difference[] } | undefined;
    for (const entry of this.#tables.entriesLike(call.crate, call.version, call.kind)) {
      if (entry.key === call.key) continue;
      const differences = differencesOf(call.recipe.inputs, entry.recipe.inputs);
      if (best === undefined || differences.length < best.differences.length) {
        best = { key: entry.key, differences };
      }
    }
    return best;
  }

  #dependencyCall(call: JournalCall, difference: Difference): JournalCall | undefined {
    if (difference.dependency === undefined) return undefined;
    const stem = call.recipe?.externStems?.[difference.dependency];
    return stem === undefined ? undefined : this.#byStem.get(stem);
  }
}

/** An explanation without the calls it was worked out from. */
function withoutCalls(
  explained: MissExplanation & { dependencies: JournalCall[] },
): MissExplanation {
  const { dependencies: _dependencies, ...explanation } = explained;
  return explanation;
}

function sameCall(a: CallName, b: CallName): boolean {
  return a.crate === b.crate && a.version === b.version && a.kind === b.kind;
}

function nameOf(call: JournalCall): CallName {
  return { crate: call.crate, version: call.version, kind: call.kind };
}

function whatHappened(call: JournalCall): string {
  if (call.outcome === "hit") {
    const variant = call.slot && call.key && call.slot !== call.key;
    return variant ? `served from an older variant of its entry (${call.slot})` : "served";
  }
  return `not cacheable: ${call.reason ?? "unknown"}`;
}

/** `syn 1.0.107`, `syn 1.0.107 (build-run)` for what is not the library. */
export function labelOf(name: CallName): string {
  const kind = name.kind === "lib" ? "" : ` (${name.kind})`;
  return `${name.crate} ${name.version}${kind}`;
}
