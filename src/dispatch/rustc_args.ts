/**
 * Reads a rustc command line the way cargo writes it and decides whether the invocation can be
 * cached: what it builds, where its outputs go, which arguments belong in the cache key, and,
 * when it cannot be cached, why.
 * @module
 */

/** One `--extern` argument. */
export interface ExternArg {
  /** Options before the name, like `noprelude` or `priv`, joined by commas; "" when none. */
  options: string;
  name: string;
  /** The artefact path; undefined for `--extern proc_macro` and the like. */
  path?: string;
}

/** One `-L` argument. */
export interface SearchPathArg {
  kind: string;
  path: string;
}

/** A rustc command line taken apart. */
export interface RustcArgs {
  crateName: string;
  input: string;
  edition: string;
  crateTypes: string[];
  emit: string[];
  outDir: string;
  extraFilename: string;
  target?: string;
  externs: ExternArg[];
  searchPaths: SearchPathArg[];
  /**
   * The arguments that shape the output, paths still raw: each flag with its value as one
   * string (`-C opt-level=3`, `--cfg feature="std"`). Paths are normalised when keyed.
   */
  keyed: string[];
  /** Arguments whose order carries no meaning (`--cfg`, `--check-cfg`), keyed sorted. */
  keyedUnordered: string[];
  /**
   * How diagnostics are to be shown, not keyed (`--error-format=json`, `--json=diagnostic-short`,
   * `--diagnostic-width=120`, `--color=always`): sorted, each once. An entry records it, and its
   * stored diagnostics are only replayed to a call that asks for the same (diagnostic_rendering.ts).
   */
  rendering: string[];
  /**
   * Codegen options as given, for profile summaries, split-debuginfo checks and whether the
   * compile is incremental (`incremental`, its directory as value).
   */
  codegen: Map<string, string>;
}

/** The outcome of {@linkcode parseRustcArgs}. */
export type ParsedInvocation =
  | { cacheable: true; args: RustcArgs }
  | { cacheable: false; reason: string };

const EMITS_CACHED = new Set(["dep-info", "metadata", "link"]);
const CRATE_TYPES_CACHED = new Set(["lib", "rlib", "proc-macro", "bin"]);
/** Flags that take a value and go into the key as they are. */
const KEYED_WITH_VALUE = new Set([
  "--cap-lints",
  "-l",
  "-W",
  "-A",
  "-D",
  "-F",
  "--warn",
  "--allow",
  "--deny",
  "--forbid",
  "--force-warn",
  "-Z",
  "--remap-path-prefix",
  "--sysroot",
  "--env-set",
  "--crate-attr",
]);
/** Flags that only change how diagnostics are shown: out of the key, into the rendering. */
const RENDERING_WITH_VALUE = new Set(["--error-format", "--diagnostic-width", "--color"]);
/**
 * `--json` values that only change how diagnostics are shown. The others (`artifacts`,
 * `future-incompat`) change what rustc emits and stay in the key.
 */
const RENDERING_JSON = new Set([
  "diagnostic-short",
  "diagnostic-rendered-ansi",
  "diagnostic-unicode",
]);
const KEYED_SWITCHES = new Set(["-g", "-O"]);

/**
 * Takes a rustc command line apart (the arguments after the rustc path).
 *
 * @example
 * ```ts
 * import { parseRustcArgs } from "./rustc_args.ts";
 * const parsed = parseRustcArgs(["-vV"]);
 * console.log(parsed.cacheable ? "cacheable" : parsed.reason); // "version query"
 * ```
 */
export function parseRustcArgs(rawArgv: readonly string[]): ParsedInvocation {
  const argv = unglueShortFlags(rawArgv);
  const notCacheable = (reason: string): ParsedInvocation => ({ cacheable: false, reason });
  let crateName: string | undefined;
  let edition = "2015";
  let outDir: string | undefined;
  let target: string | undefined;
  const inputs: string[] = [];
  const crateTypes = new Set<string>();
  const emit = new Set<string>();
  const externs: ExternArg[] = [];
  const searchPaths: SearchPathArg[] = [];
  const keyed: string[] = [];
  const keyedUnordered: string[] = [];
  const rendering = new Set<string>();
  const codegen = new Map<string, string>();

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inlineValue] = splitFlag(arg);
    const takeValue = (): string | undefined => inlineValue ?? argv[++i];

    if (arg === "-" || arg.startsWith("@")) return notCacheable("input from stdin or an @file");
    if (!arg.startsWith("-")) {
      inputs.push(arg);
      continue;
    }
    switch (flag) {
      case "-V":
      case "-vV":
      case "--version":
      case "-v":
      case "--verbose":
        return notCacheable("version query");
      case "--print":
        return notCacheable("--print query");
      case "--test":
        return notCacheable("test harness");
      case "--explain":
        return notCacheable("--explain");
      case "-o":
        return notCacheable("explicit -o output");
      case "--crate-name":
        crateName = takeValue();
        break;
      case "--edition":
        edition = takeValue() ?? edition;
        break;
      case "--crate-type":
        for (const type of (takeValue() ?? "").split(",")) if (type) crateTypes.add(type);
        break;
      case "--emit":
        for (const kind of (takeValue() ?? "").split(",")) {
          if (kind.includes("=")) return notCacheable("--emit with an explicit path");
          if (kind) emit.add(kind);
        }
        break;
      case "--out-dir":
        outDir = takeValue();
        break;
      case "--target": {
        target = takeValue();
        if (target?.endsWith(".json")) return notCacheable("custom target specification file");
        break;
      }
      case "-C":
      case "--codegen": {
        const option = takeValue() ?? "";
        const eq = option.indexOf("=");
        const name = eq === -1 ? option : option.slice(0, eq);
        const value = eq === -1 ? "" : option.slice(eq + 1);
        codegen.set(name, value);
        if (name === "incremental") {
          // Its directory is this build's scratch space, not part of what is built; whether the
          // compile is incremental is: rustc hashes the definitions' spans into the crate hash
          // (SVH) of an incremental compile only, so its rmeta differs from a non-incremental
          // one and a dependent records which of them it was compiled against.
          keyed.push("-C incremental");
        } else if (name !== "metadata" && name !== "extra-filename") {
          // metadata and extra-filename differ per project but not in what gets compiled.
          keyed.push(`-C ${option}`);
        }
        break;
      }
      case "--cfg":
      case "--check-cfg":
        keyedUnordered.push(`${flag} ${takeValue() ?? ""}`);
        break;
      case "-L": {
        const value = takeValue() ?? "";
        const eq = value.indexOf("=");
        const kind = eq === -1 ? "all" : value.slice(0, eq);
        const path = eq === -1 ? value : value.slice(eq + 1);
        searchPaths.push({ kind, path });
        break;
      }
      case "--extern": {
        const value = takeValue() ?? "";
        const eq = value.indexOf("=");
        const spec = eq === -1 ? value : value.slice(0, eq);
        const colon = spec.lastIndexOf(":");
        const extern: ExternArg = {
          options: colon === -1 ? "" : spec.slice(0, colon),
          name: colon === -1 ? spec : spec.slice(colon + 1),
        };
        if (eq !== -1) extern.path = value.slice(eq + 1);
        externs.push(extern);
        break;
      }
      case "--json": {
        const values = (takeValue() ?? "").split(",");
        for (const value of values.filter((value) => RENDERING_JSON.has(value))) {
          rendering.add(`--json=${value}`);
        }
        const emitted = values.filter((value) => !RENDERING_JSON.has(value));
        if (emitted.length > 0) keyed.push(`--json ${emitted.join(",")}`);
        break;
      }
      default:
        if (KEYED_WITH_VALUE.has(flag)) {
          keyed.push(`${flag} ${takeValue() ?? ""}`);
        } else if (RENDERING_WITH_VALUE.has(flag)) {
          rendering.add(`${flag}=${takeValue() ?? ""}`);
        } else if (KEYED_SWITCHES.has(arg)) {
          keyed.push(arg);
        } else {
          return notCacheable(`unknown flag "${flag}"`);
        }
    }
  }

  if (crateName === undefined) return notCacheable("no crate name");
  if (inputs.length !== 1) return notCacheable("not exactly one input file");
  if (outDir === undefined) return notCacheable("no --out-dir");
  if (crateTypes.size === 0) crateTypes.add("bin");
  if (emit.size === 0) emit.add("link");
  for (const type of crateTypes) {
    if (!CRATE_TYPES_CACHED.has(type)) return notCacheable(`crate type ${type}`);
  }
  for (const kind of emit) {
    if (!EMITS_CACHED.has(kind)) return notCacheable(`--emit ${kind}`);
  }
  const split = codegen.get("split-debuginfo");
  if (split !== undefined && split !== "off") return notCacheable("split debuginfo");

  return {
    cacheable: true,
    args: {
      crateName,
      input: inputs[0]!,
      edition,
      crateTypes: [...crateTypes].sort(),
      emit: [...emit].sort(),
      outDir,
      extraFilename: codegen.get("extra-filename") ?? "",
      ...(target === undefined ? {} : { target }),
      externs,
      searchPaths,
      keyed,
      keyedUnordered,
      rendering: [...rendering].sort(),
      codegen,
    },
  };
}

/** Short flags may carry their value glued on (`-Copt-level=3`, `-Ldependency=…`): split them. */
function unglueShortFlags(argv: readonly string[]): string[] {
  return argv.flatMap((arg) => /^-[CLWADFZl]./.test(arg) ? [arg.slice(0, 2), arg.slice(2)] : [arg]);
}

/** Splits `--flag=value` into its two halves; short flags and bare words come back whole. */
function splitFlag(arg: string): [string, string | undefined] {
  if (arg.startsWith("--")) {
    const eq = arg.indexOf("=");
    if (eq !== -1) return [arg.slice(0, eq), arg.slice(eq + 1)];
  }
  return [arg, undefined];
}
