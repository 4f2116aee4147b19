/**
 * What a build left in target/ for its registry units, kept so that a later build of the same
 * Cargo.lock in a new target dir can have them placed before cargo looks (place.ts): per unit its
 * fingerprint directory's files, its build-script run's files, its outputs' names and the cache
 * entry that holds its outputs (by key). One JSON file per lockfile and conditions, in the cache
 * directory: small (a few hundred bytes a unit), written when the build is over (capture.ts).
 * @module
 */

import { Buffer } from "node:buffer";
import { join } from "node:path";
import { sha256Hex } from "../digest.ts";

/** One unit as cargo left it: enough to put it back in another target dir. */
export interface CapturedUnit {
  /** Its fingerprint directory's name, `<package>-<hash>`: the unit's name in cargo's layout. */
  id: string;
  /** `lib`, `proc-macro`, `build-script` (the script's compile) or `build-run` (its run). */
  kind: string;
  crate: string;
  version: string;
  /** The cache entry that holds its outputs. */
  key: string;
  /** The profile dir relative to the target dir (`debug`, `x86_64-unknown-linux-gnu/release`). */
  profile: string;
  /** Units that must be placed with it: what it was compiled against, its script and run. */
  deps: string[];
  /** Its outputs, by role, relative to the profile dir. */
  outputs: Array<{ role: string; path: string }>;
  /** rustc's dep-info, relative to the profile dir. */
  depInfo?: string;
  /** Cargo's hard links to an output (a build script's `build-script-build`), relative. */
  links?: Array<{ path: string; to: string }>;
  /** Files cargo wrote about the unit, relative to the profile dir, base64 (paths templated). */
  files: Record<string, string>;
  /**
   * The variables cargo set for the call that a lookup may check (`CARGO_PKG_*`, a build
   * script's `TARGET`…): the same for every build of the unit, and not in a placing's env.
   */
  env: Record<string, string>;
  /** Roots its entry's templates resolve with (the package source, cargo's home). */
  manifestDir: string;
  cargoHome: string;
  /** The crate's `-C extra-filename` and crate name (lib outputs' names derive from them). */
  crateName?: string;
  extraFilename?: string;
  /**
   * The build-script run dir, relative to the profile dir: a run's own, or a library's (its
   * OUT_DIR's parent).
   */
  runDir?: string;
}

/** One build's placeable units and the conditions they hold under. */
export interface CapturedBuild {
  format: 1;
  /** The journal's build id. */
  build: string;
  project: string;
  lockfile: string;
  /** Profile dirs relative to the target dir, sorted: the build's profile and target. */
  profiles: string[];
  /** What cargo was asked (`build` for build, run, test, bench; `check` for check, clippy). */
  command: string;
  /** The flags cargo was run with (after its command), for choosing among captures. */
  flags: string[];
  /** Cargo's version line: another cargo may lay target/ out differently. */
  cargo: string;
  /** rustc's release: another rustc's units have other names, placing them would be a waste. */
  rustc: string;
  capturedAt: number;
  units: CapturedUnit[];
}

/** Where the captures of one lockfile live. */
export function capturesDir(cacheDir: string, lockfile: string): string {
  return join(cacheDir, "placing", lockfile || "no-lockfile");
}

/** Writes `build` as the capture of its lockfile under its conditions (replacing an older one). */
export function writeCapture(cacheDir: string, build: CapturedBuild): void {
  const dir = capturesDir(cacheDir, build.lockfile);
  Deno.mkdirSync(dir, { recursive: true });
  const conditions = [build.command, build.profiles, build.flags, build.cargo, build.rustc];
  const name = sha256Hex(JSON.stringify(conditions)).slice(0, 16);
  const temp = join(dir, `.${crypto.randomUUID()}.tmp`);
  Deno.writeTextFileSync(temp, JSON.stringify(build));
  Deno.renameSync(temp, join(dir, `${name}.json`));
}

/**
 * The capture to place for a build of `lockfile` with `command`, `flags`, `cargo` and `rustc`
 * whose units go to `profiles` (the profile dir, and the target's with `--target`): the newest of
 * the same cargo, rustc and command whose profile dirs are among them, the same flags first. A wrong guess costs only
 * the time to place units cargo then ignores: their directories' names are cargo's own hashes.
 */
export function predictedBuild(
  cacheDir: string,
  wanted: {
    lockfile: string;
    command: string;
    profiles: readonly string[];
    flags?: string[];
    cargo: string;
    rustc: string;
  },
): CapturedBuild | undefined {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(capturesDir(cacheDir, wanted.lockfile))];
  } catch {
    return undefined;
  }
  const builds: CapturedBuild[] = [];
  for (const entry of entries) {
    if (!entry.isFile || !entry.name.endsWith(".json")) continue;
    try {
      const build = JSON.parse(
        Deno.readTextFileSync(join(capturesDir(cacheDir, wanted.lockfile), entry.name)),
      ) as CapturedBuild;
      if (build.format === 1 && Array.isArray(build.units)) builds.push(build);
    } catch {
      // a capture torn or from elsewhere: another build captures again
    }
  }
  const same = (a: readonly string[], b: readonly string[]) => a.join("\0") === b.join("\0");
  const fitting = builds
    .filter((build) =>
      build.cargo === wanted.cargo && build.rustc === wanted.rustc &&
      build.command === wanted.command &&
      build.profiles.length > 0 &&
      build.profiles.every((profile) => wanted.profiles.includes(profile))
    )
    .sort((a, b) =>
      Number(wanted.flags !== undefined && same(b.flags, wanted.flags)) -
        Number(wanted.flags !== undefined && same(a.flags, wanted.flags)) ||
      b.capturedAt - a.capturedAt
    );
  return fitting[0];
}

/** A captured file's bytes as the capture keeps them. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

/** A captured file's bytes back. */
export function decodeBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64"));
}

/** Whether a captured file of this name has the target dir templated (text cargo wrote). */
export function isTemplated(path: string): boolean {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return name.endsWith(".json") ||
    ["output", "root-output", "stderr", "invoked.timestamp"].includes(name);
}

/** Cargo's commands whose dependency units are the same, by the one this names them by. */
const COMMAND_FAMILIES: Record<string, string> = {
  build: "build",
  b: "build",
  run: "build",
  r: "build",
  test: "build",
  t: "build",
  bench: "build",
  check: "check",
  c: "check",
  clippy: "check",
};

/**
 * Cargo's command and flags from its arguments (after the program: `build --release -v`), when
 * the command builds units this knows; undefined otherwise (`cargo doc`, `cargo +nightly …`).
 */
export function cargoCommandOf(
  args: readonly string[],
): { command: string; flags: string[] } | undefined {
  const at = args.findIndex((arg) => !arg.startsWith("-"));
  const command = at === -1 ? undefined : COMMAND_FAMILIES[args[at] ?? ""];
  if (command === undefined) return undefined;
  return { command, flags: [...args.slice(0, at), ...args.slice(at + 1)] };
}

/** Variables cargo sets for a unit's call from the package and the build, not from the user. */
const CARGO_SET =
  /^(CARGO_(PKG_|MANIFEST_|CRATE_NAME$|PRIMARY_PACKAGE$|CFG_|FEATURE_)|TARGET$|HOST$|PROFILE$|OPT_LEVEL$|DEBUG$)/;

/** What a call's env holds of {@linkcode CARGO_SET}. */
export function cargoSetEnv(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => CARGO_SET.test(name)));
}
