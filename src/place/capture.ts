/**
 * Capture: the daemon notes each registry unit a build's calls served or stored, and once that
 * build's cargo is gone reads what cargo left beside the unit's outputs (its fingerprint
 * directory, its build-script run's files) into the lockfile's capture (captured_build.ts), from
 * which place.ts fills a later build's new target dir. Only registry units: their fingerprints
 * hold nothing of the project (cargo's `-C metadata` of a registry unit is the same in every
 * project that resolves it the same way), and their sources never change. It takes what it needs
 * of a compile, a run and their call in its own terms ({@linkcode CompileToCapture}), which
 * placing.ts makes from the dispatcher's; its state is a {@linkcode Captures}, the daemon's.
 * @module
 */

import { basename, dirname, join, relative } from "node:path";
import type { Cache } from "../cache/cache.ts";
import type { CacheCall } from "../cache/call.ts";
import { TARGET_ROOT } from "../cache/path_roots.ts";
import {
  type CapturedBuild,
  type CapturedUnit,
  cargoCommandOf,
  cargoSetEnv,
  encodeBase64,
  isTemplated,
  writeCapture,
} from "./captured_build.ts";
import type { CargoVersions } from "./cargo_version.ts";

/** A file cargo keeps about a unit larger than this is not captured (they are bytes, not KB). */
const MAX_FILE_BYTES = 256 * 1024;
const TICK_MS = 250;

/** What capture needs of a registry crate compile the cache served or stored. */
export interface CompileToCapture {
  /** The cache entry that holds its outputs. */
  key: string;
  crate: string;
  version: string;
  /** `lib`, `check`, `proc-macro`, `bin` or `build-script`. */
  kind: string;
  /** rustc's `--out-dir`, `--crate-name`, `-C extra-filename` and `--target`. */
  outDir: string;
  crateName: string;
  extraFilename: string;
  target?: string;
  /** Its outputs' stem (`<crate name><extra filename>`): dependents' `--extern` paths name it. */
  stem: string;
  /** Where rustc writes its dep-info, when it writes one. */
  depInfo?: string;
  /** The paths its `--extern`s name: what it was compiled against. */
  externs: string[];
  outputs: Array<{ role: string; path: string }>;
  /** The environment cargo gave the call. */
  env: Record<string, string>;
  cargoHome: string;
  /** The release of the rustc it was compiled with. */
  rustcRelease: string;
}

/** What capture needs of a registry build-script run the cache served or stored. */
export interface RunToCapture {
  key: string;
  crate: string;
  version: string;
  /** The run's OUT_DIR. */
  outDir: string;
  manifestDir: string;
  cargoHome: string;
  /** The build script's binary (in the script compile's `build/<package>-<hash>/`). */
  scriptBinary: string;
}

/** What capture needs of the call that served or stored a unit: its build and environment. */
export type CallToCapture = Pick<CacheCall, "buildId" | "builds" | "cargoCwd" | "env">;

/** What capture needs of the cache a unit's entry is in: where to keep the capture. */
export type CacheToCapture = Pick<Cache, "dir" | "closed">;

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
  cache: CacheToCapture;
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

/**
 * The builds being noted, each captured once its cargo is gone: one per daemon, which outlives
 * the builds it serves (a call in a process of its own never sees its build end). Nothing of it
 * is module-level, so two of them in one process share nothing.
 */
export class Captures {
  readonly #noted = new Map<string, NotedBuild>();
  #ticker: ReturnType<typeof setInterval> | undefined;
  readonly #cargoVersions: CargoVersions;

  constructor(cargoVersions: CargoVersions) {
    this.#cargoVersions = cargoVersions;
  }

  /** Builds noted and not captured yet. */
  get pending(): number {
    return this.#noted.size;
  }

  /** Notes a registry crate compile the cache served or stored in `call`'s build. */
  noteCompile(compile: CompileToCapture, cache: CacheToCapture, call: CallToCapture): void {
    try {
      noteCompile(compile, this.#buildOf(call, cache));
    } catch {
      // A capture is worth having, never the call's failure: this unit is just not placed.
    }
  }

  /** Notes a registry build-script run the cache served or stored in `call`'s build. */
  noteRun(run: RunToCapture, cache: CacheToCapture, call: CallToCapture): void {
    try {
      noteRun(run, call.env, this.#buildOf(call, cache));
    } catch {
      // as above: not placed, never the call's failure
    }
  }

  /** Captures every noted build whose cargo is gone now (the daemon's settle asks for this). */
  async captureFinished(): Promise<void> {
    for (const [buildId, build] of this.#noted) {
      if (running(buildId)) continue;
      this.#noted.delete(buildId);
      try {
        await captureBuild(build, this.#cargoVersions);
      } catch {
        // A capture is worth having, never a failure: the next build captures again.
      }
    }
    if (this.#noted.size === 0) this.#stopTicker();
  }

  /** Stops watching for builds' ends; what is noted and not captured is dropped. */
  close(): void {
    this.#noted.clear();
    this.#stopTicker();
  }

  #buildOf(call: CallToCapture, cache: CacheToCapture): NotedBuild {
    let build = this.#noted.get(call.buildId);
    if (build === undefined) {
      const journal = call.builds.journalBuildOf(call);
      build = {
        cache,
        build: journal.build,
        project: journal.project,
        lockfile: journal.lockfile,
        cargo: call.env.CARGO ?? "cargo",
        rustc: "",
        invocation: cargoInvocationOf(call.buildId),
        units: new Map(),
      };
      this.#noted.set(call.buildId, build);
    }
    if (this.#ticker === undefined) {
      this.#ticker = setInterval(() => void this.captureFinished(), TICK_MS);
      Deno.unrefTimer(this.#ticker);
    }
    return build;
  }

  #stopTicker(): void {
    if (this.#ticker === undefined) return;
    clearInterval(this.#ticker);
    this.#ticker = undefined;
  }
}

function noteCompile(compile: CompileToCapture, build: NotedBuild): void {
  build.rustc ||= compile.rustcRelease;
  const { kind, outDir } = compile;
  const pkg = compile.env.CARGO_PKG_NAME;
  if (pkg === undefined || compile.extraFilename === "") return;
  // deps/ for a library, build/<package>-<hash>/ for a build script.
  const profileDir = kind === "build-script" ? dirname(dirname(outDir)) : dirname(outDir);
  const targetDir = targetDirOf(profileDir, compile.target);
  const id = kind === "build-script" ? basename(outDir) : `${pkg}${compile.extraFilename}`;
  const outDirEnv = compile.env.OUT_DIR;
  const deps = outDirEnv ? [basename(dirname(outDirEnv))] : [];
  const bin = compile.outputs.find((output) => output.role === "bin");
  build.units.set(id, {
    id,
    kind,
    crate: compile.crate,
    version: compile.version,
    key: compile.key,
    deps,
    targetDir,
    profileDir,
    outputs: compile.outputs.map((output) => ({ role: output.role, path: output.path })),
    ...(compile.depInfo ? { depInfo: compile.depInfo } : {}),
    ...(outDirEnv ? { runDirAbs: dirname(outDirEnv) } : {}),
    // Cargo runs a build script by this name, a hard link it makes after the compile.
    ...(kind === "build-script" && bin
      ? { links: [{ path: join(outDir, "build-script-build"), to: bin.path }] }
      : {}),
    env: cargoSetEnv(compile.env),
    manifestDir: compile.env.CARGO_MANIFEST_DIR ?? "",
    cargoHome: compile.cargoHome,
    crateName: compile.crateName,
    extraFilename: compile.extraFilename,
    stem: compile.stem,
    externStems: compile.externs.flatMap((path) => {
      const stem = /^lib(.+)\.(rlib|rmeta|so)$/.exec(basename(path))?.[1];
      return stem ? [stem] : [];
    }),
  });
}

function noteRun(run: RunToCapture, env: Record<string, string>, build: NotedBuild): void {
  const runDirAbs = dirname(run.outDir);
  const profileDir = dirname(dirname(runDirAbs));
  const id = basename(runDirAbs);
  build.units.set(id, {
    id,
    kind: "build-run",
    crate: run.crate,
    version: run.version,
    key: run.key,
    deps: [basename(dirname(run.scriptBinary))],
    env: cargoSetEnv(env),
    targetDir: targetDirOf(profileDir, env.TARGET),
    profileDir,
    outputs: [],
    manifestDir: run.manifestDir,
    cargoHome: run.cargoHome,
    runDirAbs,
    externStems: [],
  });
}

async function captureBuild(build: NotedBuild, cargoVersions: CargoVersions): Promise<void> {
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
  const cargo = await cargoVersions.of(build.cargo);
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
