/**
 * Capture: the daemon notes each registry unit a build's calls served or stored, and once that
 * build's cargo is gone reads what cargo left beside the unit's outputs (its fingerprint
 * directory, its build-script run's files) into the lockfile's capture (captured_build.ts), from
 * which place.ts fills a later build's new target dir. Only registry units: their fingerprints
 * hold nothing of the project (cargo's `-C metadata` of a registry unit is the same in every
 * project that resolves it the same way), and their sources never change.
 * @module
 */

import { basename, dirname, join, relative } from "node:path";
import type { Cache } from "../cache/cache.ts";
import { TARGET_ROOT } from "../cache/path_roots.ts";
import type { DispatchRequest } from "../dispatch/request.ts";
import type { Unit } from "../dispatch/unit.ts";
import { depInfoPath, outputStem, unitKindOf } from "../dispatch/outputs.ts";
import {
  type CapturedBuild,
  type CapturedUnit,
  cargoCommandOf,
  cargoSetEnv,
  encodeBase64,
  isTemplated,
  writeCapture,
} from "./captured_build.ts";
import { cargoVersionOf } from "./cargo_version.ts";

/** A file cargo keeps about a unit larger than this is not captured (they are bytes, not KB). */
const MAX_FILE_BYTES = 256 * 1024;
const TICK_MS = 250;

/** A unit as noted during the build, with absolute paths; read at the build's end. */
interface NotedUnit extends Omit<CapturedUnit, "files" | "profile" | "outputs" | "depInfo"> {
  targetDir: string;
  profileDir: string;
  outputs: Array<{ role: string; path: string }>;
  depInfo?: string;
  /** The artefact stem dependents' `--extern` paths name it by. */
  stem?: string;
  /** Stems of what it was compiled against, resolved to ids at the end. */
  externStems: string[];
  /** The build-script run's directory (absolute): a run's own, or a library's OUT_DIR's parent. */
  runDirAbs?: string;
}

interface NotedBuild {
  cache: Cache;
  build: string;
  project: string;
  lockfile: string;
  cargo: string;
  /** The release of the rustc its units were compiled with. */
  rustc: string;
  /** Cargo's command and flags; undefined for a command this does not place for. */
  invocation: { command: string; flags: string[] } | undefined;
  units: Map<string, NotedUnit>;
}

const noted = new Map<string, NotedBuild>();
let ticker: ReturnType<typeof setInterval> | undefined;

/**
 * Notes a registry crate compile the cache served or stored in `request`'s build (daemon only:
 * the capture is read once cargo is gone, which only the daemon outlives).
 */
export function noteCompileForPlacing(unit: Unit, cache: Cache, request: DispatchRequest): void {
  if (request.via !== "daemon" || unit.fromWorkspace) return;
  try {
    noteCompile(unit, cache, request);
  } catch {
    // A capture is worth having, never the call's failure: this unit is just not placed.
  }
}

function noteCompile(unit: Unit, cache: Cache, request: DispatchRequest): void {
  const build = buildOf(request, cache);
  build.rustc ||= unit.rustcRelease;
  const kind = unitKindOf(unit.args);
  const outDir = unit.args.outDir;
  const pkg = unit.env.CARGO_PKG_NAME;
  if (pkg === undefined || unit.args.extraFilename === "") return;
  // deps/ for a library, build/<package>-<hash>/ for a build script.
  const profileDir = kind === "build-script" ? dirname(dirname(outDir)) : dirname(outDir);
  const targetDir = targetDirOf(profileDir, unit.args.target);
  const id = kind === "build-script" ? basename(outDir) : `${pkg}${unit.args.extraFilename}`;
  const outDirEnv = unit.env.OUT_DIR;
  const deps = outDirEnv ? [basename(dirname(outDirEnv))] : [];
  const bin = unit.outputs.find((output) => output.role === "bin");
  const depInfo = depInfoPath(unit.args);
  build.units.set(id, {
    id,
    kind,
    crate: unit.crate,
    version: unit.version,
    key: unit.key,
    deps,
    targetDir,
    profileDir,
    outputs: unit.outputs.map((output) => ({ role: output.role, path: output.path })),
    ...(depInfo ? { depInfo } : {}),
    ...(outDirEnv ? { runDirAbs: dirname(outDirEnv) } : {}),
    // Cargo runs a build script by this name, a hard link it makes after the compile.
    ...(kind === "build-script" && bin
      ? { links: [{ path: join(outDir, "build-script-build"), to: bin.path }] }
      : {}),
    env: cargoSetEnv(unit.env),
    manifestDir: unit.env.CARGO_MANIFEST_DIR ?? "",
    cargoHome: unit.roots.find(([placeholder]) => placeholder === "@@WARMUP_CARGO_HOME@@")?.[1] ??
      "",
    crateName: unit.args.crateName,
    extraFilename: unit.args.extraFilename,
    stem: outputStem(unit.args),
    externStems: unit.args.externs.flatMap((extern) => {
      const stem = extern.path && /^lib(.+)\.(rlib|rmeta|so)$/.exec(basename(extern.path))?.[1];
      return stem ? [stem] : [];
    }),
  });
}

/** Notes a registry build-script run the cache served or stored (its OUT_DIR is `outDir`). */
export function noteRunForPlacing(
  run: { key: string; crate: string; version: string; outDir: string; manifestDir: string },
  cargoHome: string,
  scriptBinary: string,
  cache: Cache,
  request: DispatchRequest,
): void {
  if (request.via !== "daemon") return;
  try {
    noteRun(run, cargoHome, scriptBinary, cache, request);
  } catch {
    // as above: not placed, never the call's failure
  }
}

function noteRun(
  run: { key: string; crate: string; version: string; outDir: string; manifestDir: string },
  cargoHome: string,
  scriptBinary: string,
  cache: Cache,
  request: DispatchRequest,
): void {
  const runDirAbs = dirname(run.outDir);
  const profileDir = dirname(dirname(runDirAbs));
  const id = basename(runDirAbs);
  buildOf(request, cache).units.set(id, {
    id,
    kind: "build-run",
    crate: run.crate,
    version: run.version,
    key: run.key,
    deps: [basename(dirname(scriptBinary))],
    env: cargoSetEnv(request.env),
    targetDir: targetDirOf(profileDir, request.env.TARGET),
    profileDir,
    outputs: [],
    manifestDir: run.manifestDir,
    cargoHome,
    runDirAbs,
    externStems: [],
  });
}

/** Captures every noted build whose cargo is gone now (the daemon's settle asks for this). */
export async function captureFinishedBuilds(): Promise<void> {
  for (const [buildId, build] of noted) {
    if (running(buildId)) continue;
    noted.delete(buildId);
    try {
      await captureBuild(build);
    } catch {
      // A capture is worth having, never a failure: the next build captures again.
    }
  }
  if (noted.size === 0 && ticker !== undefined) {
    clearInterval(ticker);
    ticker = undefined;
  }
}

function buildOf(request: DispatchRequest, cache: Cache): NotedBuild {
  let build = noted.get(request.buildId);
  if (build === undefined) {
    const journal = request.builds.journalBuildOf(request);
    build = {
      cache,
      build: journal.build,
      project: journal.project,
      lockfile: journal.lockfile,
      cargo: request.env.CARGO ?? "cargo",
      rustc: "",
      invocation: cargoInvocationOf(request.buildId),
      units: new Map(),
    };
    noted.set(request.buildId, build);
  }
  if (ticker === undefined) {
    ticker = setInterval(() => void captureFinishedBuilds(), TICK_MS);
    Deno.unrefTimer(ticker);
  }
  return build;
}

async function captureBuild(build: NotedBuild): Promise<void> {
  if (build.lockfile === "" || build.cache.closed || build.invocation === undefined) return;
  if (build.rustc === "") return;
  const all = [...build.units.values()];
  // One target dir per capture: the one most units went to (a build has one).
  const targetDir = mostCommon(all.map((unit) => unit.targetDir));
  const byStem = new Map(all.flatMap((unit) => unit.stem ? [[unit.stem, unit.id] as const] : []));
  const units: CapturedUnit[] = [];
  for (const unit of all) {
    if (unit.targetDir !== targetDir) continue;
    const captured = captureUnit(unit, byStem);
    if (captured !== undefined) units.push(captured);
  }
  if (units.length === 0) return;
  const cargo = await cargoVersionOf(build.cargo);
  if (cargo === undefined) return;
  const capture: CapturedBuild = {
    format: 1,
    build: build.build,
    project: build.project,
    lockfile: build.lockfile,
    profiles: [...new Set(units.map((unit) => unit.profile))].sort(),
    command: build.invocation.command,
    flags: build.invocation.flags,
    cargo,
    rustc: build.rustc,
    capturedAt: Date.now(),
    units,
  };
  writeCapture(build.cache.dir, capture);
}

/** Reads what cargo left for `unit`; undefined when it left no complete unit (a failed build). */
function captureUnit(unit: NotedUnit, byStem: Map<string, string>): CapturedUnit | undefined {
  const files: Record<string, string> = {};
  const rel = (path: string) => relative(unit.profileDir, path);
  const template = (bytes: Uint8Array) =>
    new TextEncoder().encode(
      new TextDecoder().decode(bytes).replaceAll(unit.targetDir, TARGET_ROOT),
    );
  const fingerprint = join(unit.profileDir, ".fingerprint", unit.id);
  if (!readFilesInto(files, fingerprint, rel, template)) return undefined;
  if (Object.keys(files).length === 0) return undefined;
  if (unit.kind === "build-run" && unit.runDirAbs !== undefined) {
    for (const name of ["output", "root-output", "stderr", "invoked.timestamp"]) {
      const bytes = readSmallFile(join(unit.runDirAbs, name));
      if (bytes === undefined) return undefined;
      files[rel(join(unit.runDirAbs, name))] = encodeBase64(template(bytes));
    }
  }
  for (const output of unit.outputs) if (!exists(output.path)) return undefined;
  const deps = [...unit.deps];
  for (const stem of unit.externStems) {
    const id = byStem.get(stem);
    // Compiled against something that is not a noted registry unit: not placed.
    if (id === undefined) return undefined;
    deps.push(id);
  }
  const { targetDir: _t, profileDir: _p, stem: _s, externStems: _e, runDirAbs, ...rest } = unit;
  return {
    ...rest,
    deps: [...new Set(deps)],
    profile: relative(unit.targetDir, unit.profileDir),
    outputs: unit.outputs.map((output) => ({ role: output.role, path: rel(output.path) })),
    ...(unit.depInfo ? { depInfo: rel(unit.depInfo) } : {}),
    ...(unit.links
      ? { links: unit.links.map((link) => ({ path: rel(link.path), to: rel(link.to) })) }
      : {}),
    ...(runDirAbs ? { runDir: rel(runDirAbs) } : {}),
    files,
  };
}

/** Reads every file of `dir` into `files`; false when the dir is missing or holds a large file. */
function readFilesInto(
  files: Record<string, string>,
  dir: string,
  rel: (path: string) => string,
  template: (bytes: Uint8Array) => Uint8Array,
): boolean {
  try {
    for (const entry of Deno.readDirSync(dir)) {
      if (!entry.isFile) return false;
      const bytes = readSmallFile(join(dir, entry.name));
      if (bytes === undefined) return false;
      files[rel(join(dir, entry.name))] = encodeBase64(
        isTemplated(entry.name) ? template(bytes) : bytes,
      );
    }
    return true;
  } catch {
    return false;
  }
}

function readSmallFile(path: string): Uint8Array | undefined {
  try {
    if (Deno.statSync(path).size > MAX_FILE_BYTES) return undefined;
    return Deno.readFileSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The target dir of a profile dir: `<target>/<profile>`, or `<target>/<triple>/<profile>` for a
 * unit compiled for an explicit `--target`.
 */
function targetDirOf(profileDir: string, triple: string | undefined): string {
  const parent = dirname(profileDir);
  return triple !== undefined && basename(parent) === triple ? dirname(parent) : parent;
}

/** Cargo's command and flags, from /proc while it runs. */
export function cargoInvocationOf(pid: string): { command: string; flags: string[] } | undefined {
  try {
    const args = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
    return cargoCommandOf(args.slice(1));
  } catch {
    return undefined;
  }
}

function mostCommon(values: string[]): string | undefined {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function running(pid: string): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}
