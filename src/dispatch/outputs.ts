/**
 * The files an invocation writes, by role, named the way rustc names them in `--out-dir`: the
 * same prediction serves a miss (which files to pack) and a hit (where to restore them).
 * @module
 */

import { join } from "node:path";
import type { OutputRole, UnitKind } from "../bundle/bundle.ts";
import type { RustcArgs } from "./rustc_args.ts";

/** One output file of an invocation. */
export interface ExpectedOutput {
  role: OutputRole;
  path: string;
}

/**
 * What an invocation compiles: a build script, a proc macro, a binary, a library, or only its
 * metadata (`cargo check`). The journal names every call's kind by it, cacheable or not.
 */
export function unitKindOf(args: Pick<RustcArgs, "crateName" | "crateTypes" | "emit">): UnitKind {
  if (args.crateName.startsWith("build_script_")) return "build-script";
  if (args.crateTypes.includes("proc-macro")) return "proc-macro";
  if (args.crateTypes.includes("bin")) return "bin";
  return args.emit.includes("link") ? "lib" : "check";
}

/**
 * The output files of an invocation for a target triple, or a reason it cannot be cached there.
 *
 * @example
 * ```ts
 * import { expectedOutputs } from "./outputs.ts";
 * import { parseRustcArgs } from "./rustc_args.ts";
 * const parsed = parseRustcArgs(["--crate-name", "itoa", "src/lib.rs", "--crate-type", "lib",
 *   "--emit=dep-info,metadata,link", "-C", "extra-filename=-ab", "--out-dir", "/t/deps"]);
 * if (parsed.cacheable) console.log(expectedOutputs(parsed.args, "x86_64-unknown-linux-gnu"));
 * ```
 */
export function expectedOutputs(
  args: RustcArgs,
  targetTriple: string,
): ExpectedOutput[] | { unsupported: string } {
  const stem = outputStem(args);
  const outputs: ExpectedOutput[] = [];
  const link = args.emit.includes("link");
  const linksNatively = args.crateTypes.some((type) => type === "proc-macro" || type === "bin");
  // Linked outputs (and their debug-info side files) are only known for ELF targets so far.
  if (link && linksNatively && !targetTriple.includes("-linux")) {
    return { unsupported: `linked output for target ${targetTriple}` };
  }

  for (const type of args.crateTypes) {
    if ((type === "lib" || type === "rlib") && link) {
      outputs.push({ role: "rlib", path: join(args.outDir, `lib${stem}.rlib`) });
    } else if (type === "proc-macro" && link) {
      outputs.push({ role: "dylib", path: join(args.outDir, `lib${stem}.so`) });
    } else if (type === "bin" && link) {
      outputs.push({ role: "bin", path: join(args.outDir, stem) });
    }
  }
  const hasLibrary = args.crateTypes.some((type) => type === "lib" || type === "rlib");
  if (args.emit.includes("metadata") && hasLibrary) {
    outputs.push({ role: "rmeta", path: join(args.outDir, `lib${stem}.rmeta`) });
  }
  if (outputs.length === 0) return { unsupported: "no output to cache" };
  return outputs;
}

/** `crate_name` + `-C extra-filename`: the stem of every output file name. */
export function outputStem(args: RustcArgs): string {
  return args.crateName + args.extraFilename;
}

/** Where rustc writes the dep-info file, when `--emit` asks for one. */
export function depInfoPath(args: RustcArgs): string | undefined {
  return args.emit.includes("dep-info") ? join(args.outDir, `${outputStem(args)}.d`) : undefined;
}
