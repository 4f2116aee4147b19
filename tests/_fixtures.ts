// Fixture projects and the scratch space around them: repository paths, temporary directories,
// copying a fixture (with overlays) and a private CARGO_HOME that builds offline from Debian.

import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the repository root. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
/** Absolute path of the checked-in fixture projects. */
export const FIXTURES_DIR: string = join(ROOT, "tests", "fixtures");
/** Absolute path of the launcher, the value RUSTC_WRAPPER gets in cached builds. */
export const WARMUP_BIN: string = join(ROOT, "bin", "cargo-warmup");
/** Where Debian's librust-*-dev packages put crate sources; a valid cargo directory source. */
export const DEBIAN_REGISTRY = "/usr/share/cargo/registry";

/** A temporary directory that removes itself at the end of an `await using` block. */
export interface TempDir extends AsyncDisposable {
  path: string;
  cleanup(): Promise<void>;
}

/**
 * Creates a temporary directory; dispose of it (or call `cleanup`) to remove it with everything
 * inside.
 *
 * @example
 * ```ts ignore
 * await using dir = await tempDir("fixture-");
 * await copyFixture("seed001", `${dir.path}/project`);
 * ```
 */
export async function tempDir(prefix = "cargo-warmup-test-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  const cleanup = async () => {
    // Daemons of the builds in here go with it (imported late: _daemons.ts imports this file).
    const { stopDaemonsUnder } = await import("./_daemons.ts");
    await stopDaemonsUnder(path);
    await removeAll(path);
  };
  return { path, cleanup, [Symbol.asyncDispose]: cleanup };
}

/**
 * Runs `fn` with a fresh temporary directory and removes the directory afterwards, even when
 * `fn` throws.
 *
 * @example
 * ```ts ignore
 * await withTempDir(async (dir) => {
 *   await createCargoHome(`${dir}/cargo-home`);
 * });
 * ```
 */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  await using dir = await tempDir();
  return await fn(dir.path);
}

/** Removes a path recursively; a path that is already gone is fine. */
export async function removeAll(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}

/**
 * Writes a private CARGO_HOME at `dir` whose crates.io is replaced by the Debian directory
 * source (or another directory registry), with the network off, so builds are offline and never
 * touch ~/.cargo. Returns `dir`.
 *
 * @example
 * ```ts ignore
 * const cargoHome = await createCargoHome(`${dir}/cargo-home`);
 * ```
 */
export async function createCargoHome(
  dir: string,
  registry: string = DEBIAN_REGISTRY,
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const config = [
    "# Written by tests/_harness.ts: crates come from Debian's librust-*-dev packages.",
    "[source.crates-io]",
    'replace-with = "debian"',
    "",
    "[source.debian]",
    `directory = "${registry}"`,
    "",
    "[net]",
    "offline = true",
    "",
  ].join("\n");
  await Deno.writeTextFile(join(dir, "config.toml"), config);
  return dir;
}

/**
 * Copies the fixture project `name` from tests/fixtures to `dest` (created if needed), leaving
 * out any target/ directory. A fixture holding an `OVERLAY_OF` file is the named base fixture
 * with the overlay's own files copied on top. Returns `dest`.
 *
 * @example
 * ```ts ignore
 * const project = await copyFixture("seed001_extra_feature", `${dir}/project`);
 * ```
 */
export async function copyFixture(name: string, dest: string): Promise<string> {
  const source = join(FIXTURES_DIR, name);
  const base = await Deno.readTextFile(join(source, "OVERLAY_OF")).then(
    (text) => text.trim(),
    () => undefined,
  );
  if (base !== undefined) await copyFixture(base, dest);
  await copyTree(source, dest, new Set(["target", "OVERLAY_OF"]));
  return dest;
}

async function copyTree(from: string, to: string, skip: Set<string>): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (skip.has(entry.name)) continue;
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory) await copyTree(source, target, new Set(["target"]));
    else if (entry.isFile) await Deno.copyFile(source, target);
  }
}

/** Whether `path` exists (any kind of file). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Bytes of the regular files under `dir` (what `du -b` counts for them); 0 when it is gone. */
export async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => [] as Deno.DirEntry[]);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) total += await bytesUnder(path);
    else if (entry.isFile) total += (await Deno.stat(path)).size;
  }
  return total;
}
