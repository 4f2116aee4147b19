/**
 * Place: before cargo looks at a new target dir, put there the registry units an earlier build of
 * the same Cargo.lock left (captured_build.ts), so that cargo finds them fresh and never starts
 * the wrapper for them. Cargo stays the judge; this only recreates files it wrote before.
 *
 * What is placed, per unit: its outputs (from the cache entry that build was served or stored,
 * found by the one lookup every hit uses, so only an entry a call would be served right now), its
 * dep-info, a build script's `build-script-build` link, a run's OUT_DIR (from the run's entry) and
 * `output`/`root-output`/`stderr`, and last its fingerprint directory, every path of the old
 * target dir rewritten to this one. A unit is placed only when none of its files is there yet
 * (nothing in target/ is overwritten) and everything it was compiled against was placed in the
 * same pass, so that placed units are the very set one earlier build had together.
 *
 * What cargo then decides (its fingerprint module's rules): a unit is fresh when its fingerprint
 * file holds the hash cargo computes now (rustc, profile, features, flags, the package's source
 * path, its dependencies' fingerprints: a unit of another feature set or profile has another
 * directory name and is simply not looked at), its outputs exist and no dependency's output is
 * newer than its own. Registry units' dep-info lists no sources, so no source mtime is compared.
 * Outputs are hard links to their hot copies where they can be (nothing copied, a few
 * microseconds a file), and units are placed in dependency order with mtimes that keep cargo's
 * order (output_times.ts). A unit cargo finds dirty anyway is compiled through the wrapper as
 * before; one cut short (the daemon killed while placing) has no fingerprint file, which is
 * written last, and is dirty.
 *
 * Cargo's own lock (`<profile>/.cargo-lock`, flock) is held while placing, so a cargo starting
 * in the same target dir waits, and two placings never interleave.
 * @module
 */

import { dirname, join } from "node:path";
import type { Cache } from "../cache/cache.ts";
import { type EntryContent, lookup } from "../cache/lookup.ts";
import { type DispatchRequest, processSink } from "../dispatch/request.ts";
import { PhaseClock } from "../cache/call.ts";
import type { Builds } from "../cache/build_of.ts";
import { fromTemplate, type PathRoots, pathRootsOf, TARGET_ROOT } from "../cache/path_roots.ts";
import { runRootsOf } from "../dispatch/run_key.ts";
import { restoreOutDir } from "../dispatch/out_dir_snapshot.ts";
import { errorMessage } from "../error_message.ts";
import {
  floorOf,
  type OutputToPlace,
  planOutputs,
  runOutputMtime,
  setMtime,
} from "./output_times.ts";
import {
  type CapturedBuild,
  type CapturedUnit,
  decodeBase64,
  isTemplated,
} from "./captured_build.ts";

/** What placing may spend (bytes: copied; a link costs none); the rest is left to the calls. */
export interface PlaceBudget {
  ms: number;
  bytes: number;
}

export const DEFAULT_BUDGET: PlaceBudget = { ms: 5_000, bytes: 4 * 1024 ** 3 };

/** How a placing went. */
export interface Placed {
  placed: number;
  /** Units not placed: already there, not cached, or depending on one not placed. */
  skipped: number;
  /** Bytes written by copy. */
  bytes: number;
  /** Bytes placed as hard links to hot copies: no disk, no writes. */
  linkedBytes: number;
  ms: number;
  /** Why nothing was placed, when nothing could be. */
  refused?: string;
}

/** The fingerprint file cargo compares last: written after everything else of a unit. */
function isFingerprintHash(path: string): boolean {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return path.startsWith(".fingerprint/") && !name.includes(".") && !name.startsWith("dep-") &&
    name !== "invoked.timestamp";
}

/**
 * Places `capture`'s units into `targetDir` from `cache`; never throws for a unit (it is left to
 * cargo), only when the target dir cannot be locked.
 */
export async function placeCapture(
  capture: CapturedBuild,
  targetDir: string,
  cache: Cache,
  request: DispatchRequest,
  budget: PlaceBudget = DEFAULT_BUDGET,
): Promise<Placed> {
  const started = performance.now();
  const refused = whyLayoutUnknown(capture);
  if (refused) {
    return { placed: 0, skipped: capture.units.length, bytes: 0, linkedBytes: 0, ms: 0, refused };
  }
  const locks = await lockProfiles(targetDir, capture.profiles);
  try {
    // Each placed unit's newest output (ms), what its dependents are compared with.
    const placed = new Map<string, number>();
    const failed = new Set<string>();
    let bytes = 0;
    let linkedBytes = 0;
    let progress = true;
    while (progress) {
      progress = false;
      for (const unit of capture.units) {
        if (placed.has(unit.id) || failed.has(unit.id)) continue;
        if (unit.deps.some((dep) => failed.has(dep) || !capture.units.some((u) => u.id === dep))) {
          failed.add(unit.id);
          progress = true;
          continue;
        }
        if (!unit.deps.every((dep) => placed.has(dep))) continue;
        progress = true;
        const overBudget = performance.now() - started > budget.ms || bytes > budget.bytes;
        const dependencyMs = Math.max(0, ...unit.deps.map((dep) => placed.get(dep)!));
        const written = overBudget ? undefined : await cache.using(
          unit.key,
          () => placeUnit(unit, targetDir, dependencyMs, cache, request),
        );
        if (written === undefined) failed.add(unit.id);
        else {
          placed.set(unit.id, written.newestMs);
          bytes += written.bytes;
          linkedBytes += written.linkedBytes;
        }
      }
    }
    return {
      placed: placed.size,
      skipped: capture.units.length - placed.size,
      bytes,
      linkedBytes,
      ms: Math.round(performance.now() - started),
    };
  } finally {
    for (const lock of locks) lock.close();
  }
}

/** Why `capture` is laid out in a way this does not know, if it is. */
function whyLayoutUnknown(capture: CapturedBuild): string | undefined {
  for (const unit of capture.units) {
    const paths = [
      ...Object.keys(unit.files),
      ...unit.outputs.map((output) => output.path),
      ...(unit.links ?? []).map((link) => link.path),
    ];
    for (const path of paths) {
      const known = /^(\.fingerprint|deps|build)\//.test(path) && !path.split("/").includes("..");
      if (!known) return `cargo's target dir layout is not one cargo-warmup knows (${path})`;
    }
    if (unit.profile.split("/").includes("..") || unit.profile.startsWith("/")) {
      return `cargo's target dir layout is not one cargo-warmup knows (${unit.profile})`;
    }
  }
  return undefined;
}

/** Takes cargo's build lock of each profile dir, creating the dirs; waits for a cargo there. */
async function lockProfiles(targetDir: string, profiles: string[]): Promise<Deno.FsFile[]> {
  const locks: Deno.FsFile[] = [];
  try {
    for (const profile of profiles) {
      const dir = join(targetDir, profile);
      Deno.mkdirSync(dir, { recursive: true });
      const lock = await Deno.open(join(dir, ".cargo-lock"), {
        read: true,
        write: true,
        create: true,
      });
      locks.push(lock);
      await lock.lock(true);
    }
    return locks;
  } catch (error) {
    for (const lock of locks) lock.close();
    throw error;
  }
}

/** What placing one unit wrote. */
interface PlacedUnit {
  bytes: number;
  linkedBytes: number;
  /** Its newest output's mtime (ms), as placed. */
  newestMs: number;
}

/**
 * Places one unit whose dependencies' newest output is `dependencyMs`; resolves to what it wrote,
 * or undefined when it was not placed (anything of it already there, its entry not served now, a
 * write failing: what it wrote is removed).
 */
async function placeUnit(
  unit: CapturedUnit,
  targetDir: string,
  dependencyMs: number,
  cache: Cache,
  request: DispatchRequest,
): Promise<PlacedUnit | undefined> {
  const profileDir = join(targetDir, unit.profile);
  const at = (path: string) => join(profileDir, path);
  const paths = [
    ...Object.keys(unit.files),
    ...unit.outputs.map((output) => output.path),
    ...(unit.links ?? []).map((link) => link.path),
    ...(unit.depInfo ? [unit.depInfo] : []),
  ];
  if (exists(at(join(".fingerprint", unit.id))) || paths.some((path) => exists(at(path)))) {
    return undefined;
  }
  const roots = rootsOf(unit, profileDir);
  const { found } = await lookup(
    {
      key: unit.key,
      label: `${unit.crate} ${unit.version}`,
      context: { roots, env: envOf(unit, request.env, profileDir), memo: cache.memo },
      refuse: (content) =>
        (unit.kind === "build-run") !== content.files.has("out-dir")
          ? "not the kind of entry placed"
          : undefined,
    },
    cache,
    request,
  );
  if (!found || found.content.meta.exitCode !== undefined) return undefined;
  const written: string[] = [];
  try {
    return writeUnit(unit, found.content, { profileDir, roots, targetDir, dependencyMs }, written);
  } catch (error) {
    for (const path of written.reverse()) {
      try {
        Deno.removeSync(path, { recursive: true });
      } catch {
        // already gone
      }
    }
    request.stderr.write(
      new TextEncoder().encode(
        `warning: cargo-warmup: cannot place ${unit.crate} ${unit.version}, cargo builds it: ${
          errorMessage(error)
        }\n`,
      ),
    );
    return undefined;
  }
}

/** Where a unit is placed, and its dependencies' newest output there (ms). */
interface PlaceAt {
  profileDir: string;
  roots: PathRoots;
  targetDir: string;
  dependencyMs: number;
}

/** Writes a unit's files, its fingerprint hash last; `written` collects what it made. */
function writeUnit(
  unit: CapturedUnit,
  content: EntryContent,
  { profileDir, roots, targetDir, dependencyMs }: PlaceAt,
  written: string[],
): PlacedUnit {
  const at = (path: string) => join(profileDir, path);
  let bytes = 0;
  let linkedBytes = 0;
  const makeDir = (dir: string) => {
    if (exists(dir)) return;
    makeDir(dirname(dir));
    Deno.mkdirSync(dir);
    written.push(dir);
  };
  const outputs: OutputToPlace[] = unit.outputs.map((output) => {
    const source = content.files.get(output.role as never);
    if (source === undefined) throw new Error(`no ${output.role} in the cache entry`);
    makeDir(dirname(at(output.path)));
    return { role: output.role, dest: at(output.path), source };
  });
  const floorMs = floorOf(unit.manifestDir);
  const plan = planOutputs(outputs, dependencyMs, floorMs);
  let newestMs = plan.newestMs;
  for (const output of outputs) {
    if (plan.linked.has(output.role)) {
      // Fails rather than replace a file that appeared meanwhile.
      Deno.linkSync(output.source as string, output.dest);
      written.push(output.dest);
      linkedBytes += Deno.statSync(output.dest).size;
      continue;
    }
    const mode = output.role === "bin" ? 0o755 : 0o644;
    bytes += writeNewFile(output.dest, output.source, mode, plan.copyMtimeMs);
    written.push(output.dest);
  }
  if (unit.depInfo && content.depInfo !== undefined) {
    const text = fromTemplate(content.depInfo, roots, true);
    writeNewFile(at(unit.depInfo), new TextEncoder().encode(text), 0o644);
    written.push(at(unit.depInfo));
  }
  for (const link of unit.links ?? []) {
    Deno.linkSync(at(link.to), at(link.path));
    written.push(at(link.path));
  }
  if (unit.kind === "build-run" && unit.runDir) {
    const outDir = at(join(unit.runDir, "out"));
    makeDir(outDir);
    const blob = content.files.get("out-dir");
    if (blob === undefined) throw new Error("no OUT_DIR in the cache entry");
    restoreOutDir(typeof blob === "string" ? Deno.readFileSync(blob) : blob, outDir, roots);
  }
  const files = Object.entries(unit.files).sort(([a], [b]) =>
    Number(isFingerprintHash(a)) - Number(isFingerprintHash(b))
  );
  for (const [path, encoded] of files) {
    let data = decodeBase64(encoded);
    if (isTemplated(path)) {
      data = new TextEncoder().encode(
        new TextDecoder().decode(data).replaceAll(TARGET_ROOT, targetDir),
      );
    }
    makeDir(dirname(at(path)));
    // A run's `output` is what cargo compares its dependencies and rerun-if-changed files with.
    const isRunOutput = unit.kind === "build-run" && unit.runDir !== undefined &&
      path === join(unit.runDir, "output");
    const mtimeMs = isRunOutput
      ? runOutputMtime(new TextDecoder().decode(data), unit.manifestDir, dependencyMs, floorMs)
      : undefined;
    writeNewFile(at(path), data, 0o644, mtimeMs);
    written.push(at(path));
    if (mtimeMs !== undefined) newestMs = Math.max(newestMs, mtimeMs);
  }
  return { bytes, linkedBytes, newestMs };
}

/**
 * The env a lookup of the unit checks recorded values against: the placing's (a build script's
 * `rerun-if-env-changed` variables are the user's), with what cargo would set for the call.
 */
function envOf(
  unit: CapturedUnit,
  env: Record<string, string>,
  profileDir: string,
): Record<string, string> {
  const outDir = unit.runDir ? { OUT_DIR: join(profileDir, unit.runDir, "out") } : {};
  return { ...env, ...unit.env, ...outDir };
}

/** The roots the unit's entry resolves with in this target dir. */
function rootsOf(unit: CapturedUnit, profileDir: string): PathRoots {
  if (unit.kind === "build-run") {
    return runRootsOf({
      outDir: join(profileDir, unit.runDir ?? "", "out"),
      manifestDir: unit.manifestDir,
      cargoHome: unit.cargoHome,
    });
  }
  const first = unit.outputs[0]?.path ?? "deps/x";
  return pathRootsOf({
    outDir: join(profileDir, dirname(first)),
    outputStem: (unit.crateName ?? "") + (unit.extraFilename ?? ""),
    extraFilename: unit.extraFilename ?? "",
    manifestDir: unit.manifestDir,
    outDirEnv: unit.runDir ? join(profileDir, unit.runDir, "out") : undefined,
    cargoHome: unit.cargoHome,
    // `x86_64-unknown-linux-gnu/release`: the triple's dir is inside the target dir.
    target: unit.profile.includes("/") ? unit.profile.split("/")[0] : undefined,
  });
}

/**
 * Writes a file that must not exist yet: through a temporary file and a hard link, which fails
 * rather than replace a file that appeared meanwhile. The one place a placed file is copied;
 * `mtimeMs` when its time matters to cargo (output_times.ts). Returns the bytes written.
 */
function writeNewFile(
  path: string,
  source: Uint8Array | string,
  mode: number,
  mtimeMs?: number,
): number {
  const temp = join(dirname(path), `.${crypto.randomUUID()}.warmup-tmp`);
  try {
    if (typeof source === "string") Deno.copyFileSync(source, temp);
    else Deno.writeFileSync(temp, source, { mode });
    Deno.chmodSync(temp, mode);
    if (mtimeMs !== undefined) setMtime(temp, mtimeMs);
    Deno.linkSync(temp, path);
    return typeof source === "string" ? Deno.statSync(path).size : source.length;
  } finally {
    try {
      Deno.removeSync(temp);
    } catch {
      // never written
    }
  }
}

/** A request for the lookups of a placing: warnings to `stderr`, nothing else said. */
export function placingRequest(
  env: Record<string, string>,
  cwd: string,
  buildId: string,
  builds: Builds,
): DispatchRequest {
  const discard = { write: () => Promise.resolve() };
  return {
    rustc: "rustc",
    argv: [],
    env,
    cwd,
    cargoCwd: cwd,
    buildId,
    builds,
    stdout: discard,
    stderr: processSink(Deno.stderr),
    phases: new PhaseClock(),
    via: "in-process",
    afterReply: [],
  };
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
