/**
 * What the dispatcher knows about one cacheable rustc invocation once it is keyed, shared by the
 * hit path (serve_hit.ts) and the miss path (store_miss.ts).
 * @module
 */

import type { RustcArgs } from "./rustc_args.ts";
import type { ExpectedOutput } from "./outputs.ts";
import type { PathRoots } from "../cache/path_roots.ts";
import type { Recipe } from "../index/journal_tables.ts";

/** One cacheable invocation with everything a hit or a miss needs. */
export interface Unit {
  rustc: string;
  argv: string[];
  args: RustcArgs;
  env: Record<string, string>;
  /** Where rustc runs: relative paths in its arguments and dep-info are relative to it. */
  cwd: string;
  roots: PathRoots;
  outputs: ExpectedOutput[];
  key: string;
  crate: string;
  version: string;
  source: string;
  /** A workspace member or path dependency (`[warmup] workspace`), not a published crate. */
  fromWorkspace: boolean;
  target: string;
  rustcRelease: string;
  /** What the key hashed, for the journal (made only on a miss). */
  recipe(): Recipe;
}
