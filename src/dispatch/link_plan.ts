/**
 * Which outputs of a hit from a hot copy may be hard links to it. A link shares one inode, so one
 * mtime, with the cache and every other target dir that links it, and cargo judges freshness by
 * mtimes: a unit is dirty when a dependency's output is newer than its own newest output
 * (`check_filesystem` in cargo's fingerprint module; a lib's dependents that need only metadata
 * look at its `.rmeta`, others at its newest output; a build-script run's output is its `output`
 * file). So a link is placed only where its old mtime keeps that order in this target dir:
 * - every output links when the hot copy is newer than every dependency cargo will compare it
 *   with (the `--extern` files, the build-script run's `output`);
 * - else a library links its rlib, the most of its bytes, and copies its `.rmeta`: the copy is
 *   newer than every dependency, and so is the unit;
 * - else (a proc-macro or binary above something written in this build) every output is copied.
 * Nothing is linked across devices, nor where the file system clones (a copy there is a clone,
 * with its own mtime). The `.d` file, which rustc rewrites in place, is always written anew.
 * @module
 */

import { dirname, join, resolve } from "node:path";
import type { OutputRole } from "../bundle/bundle.ts";
import { clonesFiles } from "../cache/hot_link.ts";
import type { Unit } from "./unit.ts";

/**
 * The roles of `unit`'s outputs to place as links to the hot files in `hotFiles` (the rest are
 * copied); empty when nothing may be linked.
 */
export function rolesToLink(
  unit: Unit,
  hotFiles: ReadonlyMap<OutputRole, string>,
): Set<OutputRole> {
  const none = new Set<OutputRole>();
  const first = unit.outputs[0];
  if (first === undefined) return none;
  let hotDevice: number | undefined;
  let newestHot = 0;
  for (const output of unit.outputs) {
    const source = hotFiles.get(output.role);
    if (source === undefined) return none;
    const info = Deno.statSync(source);
    if (hotDevice !== undefined && info.dev !== hotDevice) return none;
    hotDevice = info.dev;
    newestHot = Math.max(newestHot, info.mtime?.getTime() ?? 0);
  }
  const targetDevice = Deno.statSync(dirname(first.path)).dev;
  if (targetDevice !== hotDevice || clonesFiles(targetDevice)) return none;
  // Strictly newer, in milliseconds: cargo compares nanoseconds, and two times in the same
  // millisecond may be either way round.
  if (newestHot > newestDependencyMtime(unit)) {
    return new Set(unit.outputs.map((output) => output.role));
  }
  const roles = new Set(unit.outputs.map((output) => output.role));
  return roles.has("rlib") && roles.has("rmeta") ? new Set(["rlib"]) : none;
}

/**
 * The newest mtime (ms) of what cargo compares `unit`'s outputs with in this target dir: each
 * `--extern` artefact (with its `.rmeta` beside an rlib, as cargo takes a dependency's newest
 * output) and the package's build-script run (`OUT_DIR/../output`). Files not there count 0.
 */
export function newestDependencyMtime(unit: Unit): number {
  const paths: string[] = [];
  for (const extern of unit.args.externs) {
    if (extern.path === undefined) continue;
    const path = resolve(unit.cwd, extern.path);
    paths.push(path);
    if (path.endsWith(".rlib")) paths.push(`${path.slice(0, -".rlib".length)}.rmeta`);
  }
  const outDir = unit.env.OUT_DIR;
  if (outDir !== undefined) paths.push(join(dirname(resolve(unit.cwd, outDir)), "output"));
  let newest = 0;
  for (const path of paths) {
    try {
      newest = Math.max(newest, Deno.statSync(path).mtime?.getTime() ?? 0);
    } catch {
      // not written: cargo finds the unit dirty for its own reasons
    }
  }
  return newest;
}
