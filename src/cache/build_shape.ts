/**
 * What decides which entries a build uses, as its first call can tell on any machine: the
 * project's Cargo.lock, the compiler, and how cargo was asked to build (its subcommand and the
 * flags that choose profile, target, features and packages, the environment that adds rustflags
 * or a target). Two builds of the same shape on two machines ask for the same entries, so a team
 * manifest (manifest.ts) is kept per shape. Paths never enter it: a CI checkout and a laptop's
 * clone of one commit have one shape.
 * @module
 */

import { sha256Hex } from "../digest.ts";

/** A build's shape; equal shapes ask for the same entries. */
export interface BuildShape {
  /** The Cargo.lock digest the journal keeps (record_call.ts). */
  lockfile: string;
  /** The rustc identity (rustc_identity.ts): version, host and sysroot. */
  rustc: string;
  /** Cargo's subcommand and the flags that choose units, in a canonical order. */
  cargo: string[];
  /** The environment variables that choose rustflags, target or profile settings. */
  env: Record<string, string>;
}

/**
 * The shape of a build of the Cargo.lock whose digest is `lockfile`, by the rustc of identity
 * `rustc`, cargo run as `argv` (program first) in `env`: what a build's first call and
 * `cargo warmup prepare` before it both work out.
 *
 * @example
 * ```ts
 * import { buildShapeOf } from "./build_shape.ts";
 * const shape = buildShapeOf("ab", "cd", ["cargo", "b", "-r"], { RUSTFLAGS: "-Dwarnings", HOME: "/h" });
 * console.log(shape.cargo, shape.env); // ["build", "--release"] { RUSTFLAGS: "-Dwarnings" }
 * ```
 */
export function buildShapeOf(
  lockfile: string,
  rustc: string,
  argv: readonly string[],
  env: Record<string, string>,
): BuildShape {
  return { lockfile, rustc, cargo: cargoShapeOf(argv), env: shapingEnvOf(env) };
}

/** Cargo's short subcommands, as cargo resolves them. */
const ALIASES: Record<string, string> = { b: "build", c: "check", t: "test", r: "run", d: "doc" };
/** Flags that choose units and take no value. */
const UNIT_SWITCHES = new Set([
  "--release",
  "--all-features",
  "--no-default-features",
  "--workspace",
  "--all",
  "--lib",
  "--bins",
  "--examples",
  "--tests",
  "--benches",
  "--all-targets",
  "--doc",
]);
/** Flags that choose units and take a value. */
const UNIT_OPTIONS = new Set([
  "--profile",
  "--target",
  "--features",
  "-F",
  "--package",
  "-p",
  "--exclude",
  "--bin",
  "--example",
  "--test",
  "--bench",
  "-Z",
  "--config",
]);
/** Flags that take a value but choose no unit (paths, output, parallelism). */
const OTHER_OPTIONS = new Set([
  "-j",
  "--jobs",
  "--color",
  "--message-format",
  "--manifest-path",
  "--target-dir",
  "--artifact-dir",
  "--lockfile-path",
  "-C",
  "--explain",
]);
/** Short spellings of the flags above. */
const SHORT: Record<string, string> = { "-r": "--release", "-F": "--features", "-p": "--package" };

/**
 * The part of cargo's command line (its argv, program first) that chooses units: the subcommand,
 * then each unit flag as `flag=value`, sorted, features split and sorted. What follows `--`
 * (arguments of the program or tests), positional test filters and flags that choose no unit are
 * left out.
 *
 * @example
 * ```ts
 * import { cargoShapeOf } from "./build_shape.ts";
 * const a = cargoShapeOf(["cargo", "build", "-r", "--locked", "-F", "b,a", "-j", "2"]);
 * const b = cargoShapeOf(["/usr/bin/cargo", "b", "--features=a b", "--release", "-q"]);
 * console.log(a, a.join() === b.join()); // ["build", "--features=a,b", "--release"] true
 * ```
 */
export function cargoShapeOf(argv: readonly string[]): string[] {
  const args = argv.slice(1).filter((arg, i) => !(i === 0 && arg.startsWith("+")));
  const end = args.indexOf("--");
  const words = end === -1 ? args : args.slice(0, end);
  let subcommand: string | undefined;
  const flags: string[] = [];
  const features = new Set<string>();
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const equals = word.startsWith("--") ? word.indexOf("=") : -1;
    const flag = SHORT[equals === -1 ? word : word.slice(0, equals)] ??
      (equals === -1 ? word : word.slice(0, equals));
    const takesValue = UNIT_OPTIONS.has(flag) || OTHER_OPTIONS.has(flag);
    const value = !takesValue ? undefined : equals === -1 ? words[++i] : word.slice(equals + 1);
    if (!word.startsWith("-")) {
      // The first word is the subcommand; later ones are a test filter or an unknown flag's value.
      subcommand ??= ALIASES[word] ?? word;
    } else if (flag === "--features" && value !== undefined) {
      for (const feature of value.split(/[\s,]+/)) if (feature) features.add(feature);
    } else if (UNIT_OPTIONS.has(flag) && value !== undefined) {
      flags.push(`${flag}=${value}`);
    } else if (UNIT_SWITCHES.has(flag)) {
      flags.push(flag);
    }
  }
  if (features.size > 0) flags.push(`--features=${[...features].sort().join(",")}`);
  return [subcommand ?? "", ...[...new Set(flags)].sort()];
}

/**
 * The variables of `env` that choose rustflags, the target or profile settings: those a user
 * sets for cargo, never one cargo sets for a call itself (`CARGO_ENCODED_RUSTFLAGS`, which a
 * build script's run has), so that every call of a build sees the same.
 */
export function shapingEnvOf(env: Record<string, string>): Record<string, string> {
  const shaping: Record<string, string> = {};
  for (const name of Object.keys(env).sort()) {
    if (
      name === "RUSTFLAGS" || name === "CARGO_BUILD_TARGET" ||
      name === "CARGO_BUILD_RUSTFLAGS" || name.startsWith("CARGO_PROFILE_") ||
      /^CARGO_TARGET_[A-Z0-9_]+_RUSTFLAGS$/.test(name)
    ) {
      shaping[name] = env[name]!;
    }
  }
  return shaping;
}

/**
 * Cargo's command line when `buildId` is cargo's pid and this user may read it, else undefined
 * (then the shape goes without it: builds are told apart by lockfile, rustc and environment).
 */
export function cargoArgvOf(buildId: string): string[] | undefined {
  if (!/^\d+$/.test(buildId)) return undefined;
  try {
    const argv = Deno.readTextFileSync(`/proc/${buildId}/cmdline`).split("\0");
    if (argv.at(-1) === "") argv.pop();
    return argv.length > 0 ? argv : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The digest that names a shape: 64 hex digits.
 *
 * @example
 * ```ts
 * import { shapeDigest } from "./build_shape.ts";
 * const shape = { lockfile: "ab", rustc: "cd", cargo: ["build"], env: {} };
 * console.log(shapeDigest(shape).length); // 64
 * ```
 */
export function shapeDigest(shape: BuildShape): string {
  return sha256Hex(
    JSON.stringify([shape.lockfile, shape.rustc, shape.cargo, Object.entries(shape.env)]),
  );
}
