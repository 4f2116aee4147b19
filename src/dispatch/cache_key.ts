/**
 * The cache key: SHA-256 of a canonical JSON recipe of everything that shapes a compilation's
 * output, with every path replaced by a placeholder and every dependency artefact replaced by
 * the digest of the file actually on disk. A linked output (proc-macro, binary) also holds the
 * linker and C library of this machine, and `-C target-cpu=native` what it resolves to here; how
 * diagnostics are rendered is left out (diagnostic_rendering.ts). A path into this build's target
 * dir (another package's OUT_DIR in `-L native=…`) is templated like any other, and what rustc may
 * read behind it (the libraries there) goes in by digest. docs/cache-key.md mirrors this file.
 * @module
 */

import { basename, isAbsolute, join, relative } from "node:path";
import { sha256Hex } from "../digest.ts";
import { digestFile, type DigestMemo } from "../index/file_digest.ts";
import type { RustcIdentityRow } from "../index/index_db.ts";
import { type LinkerIdentity, linksNatively } from "./machine_identity.ts";
import { type NativeCpu, nativeCpuOptions } from "./native_cpu.ts";
import { type PathRoots, TARGET_ROOT, toTemplate } from "../cache/path_roots.ts";
import type { RustcArgs } from "./rustc_args.ts";

/**
 * Bumped whenever the recipe changes meaning, so old entries can never match. Leaving the
 * rendering flags out needed no bump: a recipe now equals an older one only where that call had no
 * rendering flag either, and such an entry, which records no rendering, is served only when it
 * holds no diagnostics (diagnostic_rendering.ts).
 */
const RECIPE_FORMAT = "cargo-warmup-key-2";
/** Environment variables cargo sets for rustc that can change what it compiles. */
const KEYED_ENV = /^(CARGO_PKG_[A-Z_]+|CARGO_CRATE_NAME|CARGO_MANIFEST_LINKS|RUSTC_BOOTSTRAP)$/;
/** Native libraries rustc can bundle into an rlib (`-l static=…`, also `+verbatim` objects). */
const STATIC_LIBRARY = /\.(a|lib|o|obj)$/;
/**
 * What rustc or the linker may take from a search dir: native libraries (bundled into an rlib by
 * `#[link(kind = "static")]` or `-l static=…`, linked into a binary or proc-macro) and crates.
 */
const SEARCHED_FILE = /\.(a|lib|o|obj|so|dylib|dll|rlib|rmeta)$|\.so\.[\d.]+$/;
/** A search dir this full of libraries is not worth hashing on every call. */
const MAX_LIBRARY_FILES = 5000;

/** Everything the key is computed from. */
export interface KeyInputs {
  args: RustcArgs;
  env: Record<string, string>;
  roots: PathRoots;
  rustc: RustcIdentityRow;
  /** The path-free source identity (see source_identity.ts, workspace_unit.ts). */
  source: string;
  memo: DigestMemo;
  /** A workspace crate's build-script results (workspace_unit.ts); absent for registry crates. */
  buildScript?: string[];
  /** The linker and C library (machine_identity.ts): required for a linked output, else unused. */
  linker?: LinkerIdentity;
  /** What `native` resolves to (native_cpu.ts): required when the call asks for it. */
  nativeCpu?: NativeCpu;
}

/**
 * The cache key of an invocation and the recipe it hashes.
 *
 * @example
 * ```ts ignore
 * const { key } = cacheKeyOf(inputs);
 * ```
 */
export function cacheKeyOf(inputs: KeyInputs): { key: string; recipe: Record<string, unknown> } {
  const { args, env, roots } = inputs;
  const linked = linksNatively(args);
  if (linked && inputs.linker === undefined) {
    throw new TypeError(`Cannot key linked output "${args.crateName}": no linker identity`);
  }
  if (nativeCpuOptions(args) !== undefined && inputs.nativeCpu === undefined) {
    throw new TypeError(`Cannot key "${args.crateName}" for the native CPU: not resolved`);
  }
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
    // Not the whole of OUT_DIR: build scripts leave probes and scratch files there that embed
    // machine paths. Generated files the compile reads are in its dep-info and are checked on a
    // hit (variants.ts); static libraries it may bundle are keyed here.
    bundledLibraries: env.OUT_DIR ? bundledLibraries(args, env.OUT_DIR, inputs.memo) : [],
    // The target dir is templated, so the files behind those paths are keyed by content: another
    // package's OUT_DIR in a search path, a file of the target dir a flag names. Absent (so the
    // recipe is unchanged) when there is none.
    targetFiles: targetFilesOf(args, env.OUT_DIR, roots, inputs.memo),
    // Absent (so the recipe is unchanged) for registry crates.
    buildScript: inputs.buildScript,
    // Only for linked outputs: an rlib or rmeta is not linked, and stays shared between machines.
    linker: linked ? inputs.linker : undefined,
    // Only when the call asks for the native CPU.
    nativeCpu: inputs.nativeCpu,
  };
  return { key: sha256Hex(JSON.stringify(recipe)), recipe };
}

/**
 * The files behind the target-dir paths of a call, templated, with digests: those rustc or the
 * linker may read in its search dirs inside the target dir (the package's own OUT_DIR is
 * {@linkcode bundledLibraries}'), and the files a keyed flag names there (`-C link-arg=…/x.o`).
 * Undefined when the call names no path in the target dir.
 */
function targetFilesOf(
  args: RustcArgs,
  outDir: string | undefined,
  roots: PathRoots,
  memo: DigestMemo,
): string[] | undefined {
  const targetDir = roots.find(([placeholder]) => placeholder === TARGET_ROOT)?.[1];
  if (targetDir === undefined) return undefined;
  const inside = (path: string, dir: string) => {
    const rel = relative(dir, path);
    return !rel.startsWith("..") && !isAbsolute(rel);
  };
  const files: string[] = [];
  for (const search of args.searchPaths) {
    if (search.kind === "dependency" || !inside(search.path, targetDir)) continue;
    if (outDir && inside(search.path, outDir)) continue;
    for (const path of filesIn(search.path, SEARCHED_FILE)) {
      files.push(`${toTemplate(path, roots)}\0${digestFile(path, memo)}`);
    }
  }
  for (const arg of [...args.keyed, ...args.keyedUnordered]) {
    if (!arg.includes(targetDir)) continue;
    for (const [path] of arg.matchAll(/(?<![^\s=,:;"'])\/[^\s,;:"']+/g)) {
      if (!inside(path, targetDir) || !isFile(path)) continue;
      files.push(`${toTemplate(path, roots)}\0${digestFile(path, memo)}`);
    }
  }
  return files.length > 0 ? files.sort() : undefined;
}

/** Whether `path` is a regular file (following links). */
function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The files directly in `dir` whose names match `pattern`; none when it does not exist. */
function filesIn(dir: string, pattern: RegExp): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return []; // rustc ignores it too
    throw error;
  }
  const files = entries.filter((entry) => !entry.isDirectory && pattern.test(entry.name));
  if (files.length > MAX_LIBRARY_FILES) {
    throw new Error(`${dir} has over ${MAX_LIBRARY_FILES} libraries`);
  }
  return files.map((file) => join(dir, file.name));
}

/**
 * The static libraries a build script left in the native search dirs under its OUT_DIR, with
 * digests: an rlib embeds the ones it links (`cargo:rustc-link-lib=static=…`), and they are not
 * in its dep-info.
 */
function bundledLibraries(args: RustcArgs, outDir: string, memo: DigestMemo): string[] {
  const libraries: string[] = [];
  for (const search of args.searchPaths) {
    if (search.kind === "dependency" || search.kind === "crate") continue;
    const inOutDir = relative(outDir, search.path);
    if (inOutDir.startsWith("..") || isAbsolute(inOutDir)) continue;
    for (const path of filesIn(search.path, STATIC_LIBRARY)) {
      libraries.push(`${join(inOutDir, basename(path))}\0${digestFile(path, memo)}`);
    }
  }
  return libraries.sort();
}
