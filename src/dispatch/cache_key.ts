/**
 * The cache key: SHA-256 of a canonical JSON recipe of everything that shapes a compilation's
 * output, with every path replaced by a placeholder and every dependency artefact replaced by
 * the digest of the file actually on disk. The README's "Cache key" section mirrors this file.
 * @module
 */

import { join, relative } from "node:path";
import { sha256Hex } from "../digest.ts";
import { digestFile, type DigestMemo } from "../index/file_digest.ts";
import type { RustcIdentityRow } from "../index/index_db.ts";
import { type PathRoots, toTemplate } from "./path_roots.ts";
import type { RustcArgs } from "./rustc_args.ts";

/** Bumped whenever the recipe changes meaning, so old entries can never match. */
const RECIPE_FORMAT = "cargo-warmup-key-1";
/** Environment variables cargo sets for rustc that can change what it compiles. */
const KEYED_ENV = /^(CARGO_PKG_[A-Z_]+|CARGO_CRATE_NAME|CARGO_MANIFEST_LINKS|RUSTC_BOOTSTRAP)$/;
/** A build script that fills OUT_DIR past this many files is not worth hashing on every call. */
const MAX_OUT_DIR_FILES = 5000;

/** Everything the key is computed from. */
export interface KeyInputs {
  args: RustcArgs;
  env: Record<string, string>;
  roots: PathRoots;
  rustc: RustcIdentityRow;
  /** The path-free source identity (see source_identity.ts). */
  source: string;
  memo: DigestMemo;
}

/**
 * The cache key of an invocation and the recipe it hashes.
 *
 * @example
 * ```ts ignore
 * const { key } = cacheKeyOf(inputs);
 * ```
 */
export function cacheKeyOf(inputs: KeyInputs): { key: string; recipe: unknown } {
  const { args, env, roots } = inputs;
  const normalise = (text: string) => toTemplate(text, roots);

  const externs = args.externs.map((extern) => [
    extern.options,
    extern.name,
    extern.path === undefined ? null : digestFile(extern.path, inputs.memo),
  ]);
  // Code-unit order: localeCompare would tie the key to the machine's locale (and loading the
  // collator costs a hit several milliseconds).
  externs.sort((a, b) => (String(a[1]) < String(b[1]) ? -1 : String(a[1]) > String(b[1]) ? 1 : 0));

  const recipe = {
    format: RECIPE_FORMAT,
    rustc: inputs.rustc.identity,
    target: args.target ?? inputs.rustc.host,
    source: inputs.source,
    crateName: args.crateName,
    edition: args.edition,
    input: normalise(args.input),
    crateTypes: args.crateTypes,
    emit: args.emit,
    args: args.keyed.map(normalise),
    unorderedArgs: args.keyedUnordered.map(normalise).sort(),
    searchPaths: args.searchPaths
      // Dependency search paths only locate crates whose content the extern digests key.
      .filter((search) => search.kind !== "dependency")
      .map((search) => `${search.kind}=${normalise(search.path)}`),
    externs,
    env: Object.entries(env)
      .filter(([name]) => KEYED_ENV.test(name))
      .map(([name, value]) => `${name}=${normalise(value)}`)
      .sort(),
    outDirContents: env.OUT_DIR ? directoryDigest(env.OUT_DIR, inputs.memo) : null,
  };
  return { key: sha256Hex(JSON.stringify(recipe)), recipe };
}

/** A digest of every file under `dir` with its relative path: what a build script generated. */
function directoryDigest(dir: string, memo: DigestMemo): string {
  const files: string[] = [];
  const walk = (current: string) => {
    for (const entry of Deno.readDirSync(current)) {
      const path = join(current, entry.name);
      if (entry.isDirectory) walk(path);
      else if (entry.isFile) files.push(path);
      else if (entry.isSymlink) files.push(path);
      if (files.length > MAX_OUT_DIR_FILES) {
        throw new Error(`OUT_DIR has over ${MAX_OUT_DIR_FILES} files`);
      }
    }
  };
  walk(dir);
  files.sort();
  const parts = files.map((path) => `${relative(dir, path)}\0${digestFile(path, memo)}`);
  return sha256Hex(parts.join("\n"));
}
