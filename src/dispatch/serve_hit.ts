/**
 * The hit path: takes a cached entry from its unpacked mirror or its bundle, checks that the
 * sources and environment it was built from still match, and writes its outputs under this
 * build's names, announcing the `.rmeta` to cargo as rustc would.
 * @module
 */

import { dirname, join } from "node:path";
import {
  type Bundle,
  BundleError,
  type BundleMeta,
  openBundle,
  type OutputRole,
} from "../bundle/bundle.ts";
import { digestFile, type DigestMemo, rememberWrittenFile } from "../index/file_digest.ts";
import { errorMessage } from "../error_message.ts";
import { depInfoPath } from "./outputs.ts";
import { fromTemplate, toTemplate } from "./path_roots.ts";
import { type DispatchRequest, writeText } from "./request.ts";
import type { Cache } from "./session.ts";
import type { Unit } from "./unit.ts";
import { warnOncePerBuild } from "./warn_once.ts";

/**
 * Restores a hit. Resolves to "served", to a reason the cached entry could not be used (its
 * sources or environment changed, it was corrupt), or to undefined when nothing was cached.
 */
export async function serveHit(
  unit: Unit,
  cache: Cache,
  request: DispatchRequest,
): Promise<"served" | string | undefined> {
  const { phases } = request;
  const mirrored = cache.local.readMirror(unit.key, cache.signingKey !== undefined);
  let content: RestorableContent;
  let bundle: Bundle | undefined;
  if (mirrored) {
    cache.local.touch(unit.key);
    content = mirrored;
  } else {
    const bytes = await cache.get(unit.key, request);
    phases.done("fetched");
    if (bytes === undefined) return undefined;
    try {
      bundle = await openBundle(bytes, unit.key, { signingKey: cache.signingKey });
    } catch (error) {
      if (!(error instanceof BundleError)) throw error;
      warnOncePerBuild(
        request,
        `corrupt-${unit.key}`,
        `dropping a bad cache entry for ${unit.crate} ${unit.version}: ${error.message}`,
      );
      cache.count({ corrupt: 1 });
      await cache.drop(unit.key, request);
      return "corrupt entry";
    }
    content = bundle;
  }
  phases.done("unpacked");
  const staleReason = whyStale(content.meta, unit, cache.memo);
  phases.done("verified");
  if (staleReason) {
    cache.count({ stale: 1 });
    // The recompiled entry replaces the bundle; its mirror must not outlive it.
    cache.local.removeMirror(unit.key);
    return staleReason;
  }

  try {
    await restoreOutputs(content, unit, cache.memo, request);
  } catch (error) {
    warnOncePerBuild(
      request,
      "restore",
      `cannot restore ${unit.crate} from the cache, compiling it: ${errorMessage(error)}`,
    );
    return "restore failed";
  }
  phases.done("restored");
  const compileMs = cache.recordHit(unit.key, request) ?? content.meta.compileMs;
  cache.count({ hits: 1, saved_ms: Math.max(0, Math.round(compileMs - phases.elapsed())) });
  if (bundle) {
    // After cargo has its answer, from the verified bytes (not from target/, which is cargo's
    // again by then): the next hit on this entry copies instead of unpacking.
    const verified = bundle;
    const sources = [...verified.files].map(([role, bytes]) => ({ role, bytes }));
    request.afterReply.push(() =>
      void cache.using(unit.key, async () => cache.mirror(verified, sources))
    );
  }
  phases.done("recorded");
  return "served";
}

/** A cached entry is only valid if the sources and environment it was built from still match. */
function whyStale(
  meta: BundleMeta,
  unit: Unit,
  memo: DigestMemo,
): string | undefined {
  for (const source of meta.sources) {
    const path = fromTemplate(source.path, unit.roots);
    let digest: string | undefined;
    try {
      digest = digestFile(path, memo);
    } catch {
      // a source that is gone has changed
    }
    if (digest !== source.digest) return `source changed: ${path}`;
  }
  for (const dep of meta.envDeps) {
    const value = unit.env[dep.name];
    const now = value === undefined ? undefined : toTemplate(value, unit.roots);
    if (now !== dep.value) return `environment changed: ${dep.name}`;
  }
  return undefined;
}

/** A cached compilation ready to restore: outputs as bytes (a bundle) or as files (a mirror). */
type RestorableContent = Omit<Bundle, "files"> & { files: Map<OutputRole, Uint8Array | string> };

/**
 * Writes a hit's files where this build expects them, in the order rustc would: the `.rmeta`
 * first, announced to cargo at once (the replayed stderr up to its artifact notification), so
 * that cargo starts dependent crates while the rlib is still being written.
 */
async function restoreOutputs(
  content: RestorableContent,
  unit: Unit,
  memo: DigestMemo,
  request: DispatchRequest,
): Promise<void> {
  const digests = new Map(content.meta.outputs.map((output) => [output.role, output.digest]));
  const stderr = fromTemplate(content.stderr, unit.roots);
  const announced = metadataAnnouncementEnd(stderr);
  const ordered = [...unit.outputs].sort((a, b) =>
    Number(b.role === "rmeta") - Number(a.role === "rmeta")
  );
  for (const output of ordered) {
    const source = content.files.get(output.role);
    const digest = digests.get(output.role);
    if (source === undefined || digest === undefined) {
      throw new BundleError(`no ${output.role} in bundle`);
    }
    writeAtomically(output.path, source, output.role === "bin" ? 0o755 : 0o644);
    // Remembered before cargo hears of the file: a dependent keys on its digest.
    rememberWrittenFile(output.path, digest, memo);
    if (output.role === "rmeta") {
      memo.flush?.();
      await writeText(request.stderr, stderr.slice(0, announced));
    }
  }
  const depInfo = depInfoPath(unit.args);
  if (depInfo !== undefined && content.depInfo !== undefined) {
    writeAtomically(
      depInfo,
      new TextEncoder().encode(fromTemplate(content.depInfo, unit.roots, true)),
      0o644,
    );
  }
  await writeText(request.stdout, fromTemplate(content.stdout, unit.roots));
  const alreadyWritten = unit.outputs.some((output) => output.role === "rmeta") ? announced : 0;
  await writeText(request.stderr, stderr.slice(alreadyWritten));
}

/** Where the line announcing the `.rmeta` artifact ends in rustc's JSON stderr (0 if absent). */
function metadataAnnouncementEnd(stderr: string): number {
  const match = /^\{"\$message_type":"artifact".*"emit":"metadata"\}$/m.exec(stderr);
  return match === null ? 0 : match.index + match[0].length + 1;
}

/** Writes through a temporary file and a rename, so cargo never sees half an artefact. */
// Synchronous on purpose: Deno's async file ops cost a thread-pool round trip each, which shows
// on a hit's large writes; in the daemon a copy of a few MB blocks other requests for about a
// millisecond, less than the round trips would cost them.
function writeAtomically(path: string, source: Uint8Array | string, mode: number): void {
  const temp = join(dirname(path), `.${crypto.randomUUID()}.warmup-tmp`);
  try {
    // A file source is copied in the kernel (copy_file_range), keeping its mode.
    if (typeof source === "string") Deno.copyFileSync(source, temp);
    else Deno.writeFileSync(temp, source, { mode });
    Deno.renameSync(temp, path);
  } catch (error) {
    try {
      Deno.removeSync(temp);
    } catch {
      // nothing was written
    }
    throw error;
  }
}
