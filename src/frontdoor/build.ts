/**
 * Builds the front door: the small native RUSTC_WRAPPER (cargo_warmup.rs, Rust standard library
 * only) compiled with the user's own rustc, which forwards each rustc call to the daemon. Its
 * version tag names the daemon it talks to, so a front door and a daemon of different versions
 * never meet.
 * @module
 */

import { dirname, join } from "node:path";
import { isFile } from "../stat_checks.ts";
import { programPath, versionTag } from "../version.ts";

const SOURCE = new URL("./cargo_warmup.rs", import.meta.url);

/** Options for {@linkcode buildFrontDoor}. */
export interface BuildFrontDoorOptions {
  /** Where the binary goes. */
  out: string;
  /** The rustc to build with; default `$RUSTC` or `rustc`. */
  rustc?: string;
  /** Rebuild even when a binary of this tag is there. */
  force?: boolean;
}

/**
 * Builds the front door at `options.out` unless a binary of the current tag is already there
 * (recorded beside it in `<out>.tag`); resolves to its path. Written to a temporary file and
 * renamed, so a wrapper being exec'd by cargo is never half a binary.
 */
export async function buildFrontDoor(options: BuildFrontDoorOptions): Promise<string> {
  const program = programPath();
  const tag = versionTag(program);
  const tagFile = `${options.out}.tag`;
  if (!options.force && readOrUndefined(tagFile) === tag && isFile(options.out)) {
    return options.out;
  }
  await Deno.mkdir(dirname(options.out), { recursive: true });
  const temp = join(dirname(options.out), `.${crypto.randomUUID()}.tmp`);
  // rustc reads the source from disk; in a compiled binary it is only in the embedded files.
  const sourceCopy = `${temp}.rs`;
  await Deno.writeTextFile(sourceCopy, await Deno.readTextFile(SOURCE));
  try {
    const rustc = options.rustc ?? Deno.env.get("RUSTC") ?? "rustc";
    const compile = (extra: string[]) =>
      new Deno.Command(rustc, {
        args: [
          ...["--edition", "2021", "--crate-name", "cargo_warmup", "-C", "opt-level=2"],
          ...["-C", "strip=symbols", "-C", "panic=abort", ...extra, "-o", temp, sourceCopy],
        ],
        env: { CARGO_WARMUP_TAG: tag, CARGO_WARMUP_PROGRAM: program },
        stdin: "null",
      }).output();
    // Linked statically, the loader does not search cargo's LD_LIBRARY_PATH (the target dir
    // and the toolchain) on every call: about a millisecond per served crate. Where no static
    // C library is installed, a dynamic binary does the same job.
    let output = await compile(["-C", "target-feature=+crt-static"]);
    if (!output.success) output = await compile([]);
    if (!output.success) {
      throw new Error(
        `Cannot build the front door with "${rustc}": ${new TextDecoder().decode(output.stderr)}`,
      );
    }
    await Deno.rename(temp, options.out);
    await Deno.writeTextFile(tagFile, tag);
  } finally {
    await Deno.remove(temp).catch(() => {});
    await Deno.remove(sourceCopy).catch(() => {});
  }
  return options.out;
}

/**
 * Where the front door lives by default: beside the pinned Deno in a source checkout
 * (`.tools/frontdoor/`, where the launcher looks for it), else in the cache directory.
 */
export function defaultFrontDoorPath(cacheDir: string): string {
  const launcher = Deno.env.get("CARGO_WARMUP_EXE");
  if (launcher) return join(dirname(dirname(launcher)), ".tools", "frontdoor", "cargo-warmup");
  return join(cacheDir, "frontdoor", versionTag(), "cargo-warmup");
}

function readOrUndefined(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}
