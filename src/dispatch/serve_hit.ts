/**
 * The hit path of a crate compile: finds the entry whose sources, generated files and environment
 * still match (cache/lookup.ts: its hot copy or bundle, or an older variant of the key), and
 * writes its outputs under this build's names, announcing the `.rmeta` to cargo as rustc would.
 * @module
 */

import { dirname, join } from "node:path";
import { BundleError } from "../bundle/bundle.ts";
import { type DigestMemo, rememberWrittenFile } from "../index/file_digest.ts";
import { errorMessage } from "../error_message.ts";
import type { Cache } from "../cache/cache.ts";
import { type EntryContent, type FoundEntry, lookup } from "../cache/lookup.ts";
import { whyRenderedDifferently } from "./diagnostic_rendering.ts";
import { depInfoPath } from "./outputs.ts";
import { fromTemplate } from "../cache/path_roots.ts";
import { writeText } from "../cache/call.ts";
import type { DispatchRequest } from "./request.ts";
import type { Unit } from "./unit.ts";
import { warnOncePerBuild } from "../cache/warn_once.ts";

/** How a lookup ended: served, or why not, and whether it found a stale entry in the key's slot. */
export type HitOutcome =
  | {
    served: true;
    /** Set when a failed probe was replayed (failed_probe.ts). */
    exitCode?: number;
    /** The slot that served it: the key, or one of its older variants. */
    slot: string;
    /** The entry's compile time less this hit's. */
    savedMs: number;
    /** Bytes written into the build. */
    bytes: number;
  }
  | { served: false; reason?: string; stale?: true };

/**
 * Restores a hit: the key's entry whose recorded inputs match this invocation (cache/lookup.ts).
 * Resolves to served, or to why nothing could be served: no reason when nothing was cached; a
 * reason when an entry was corrupt, stale (then flagged, so that the store keeps it as a variant)
 * or could not be restored.
 */
export async function serveHit(
  unit: Unit,
  cache: Cache,
  request: DispatchRequest,
): Promise<HitOutcome> {
  const started = performance.now();
  const context = { roots: unit.roots, env: unit.env, memo: cache.memo };
  const label = `${unit.crate} ${unit.version}`;
  const { found, ...missed } = await lookup({ key: unit.key, label, context }, cache, request);
  if (!found) return { served: false, ...missed };
  // Stored diagnostics are replayed only in the form this call asks for; the entry is replaced.
  const rendered = whyRenderedDifferently(found.content, unit.args);
  if (rendered) return { served: false, reason: rendered };
  const outcome = await cache.using(found.slot, () => restoreEntry(found, unit, cache, request));
  if (outcome.served) {
    // What a hit costs to read and write, from a hot copy or a bundle: `status` shows both.
    const from = found.bundle ? "bundle" : "hot";
    const micros = Math.round((performance.now() - started) * 1000);
    cache.count({ [`hit_us_${from}`]: micros, [`hits_${from}`]: 1 }, request);
  }
  return outcome;
}

/** Writes a matching entry's outputs for this build and counts the hit. */
async function restoreEntry(
  entry: FoundEntry,
  unit: Unit,
  cache: Cache,
  request: DispatchRequest,
): Promise<HitOutcome> {
  const { phases } = request;
  const { content, bundle, slot } = entry;
  if (content.meta.exitCode !== undefined) {
    // A failed probe: nothing to restore, its diagnostics and exit code to replay.
    await writeText(request.stdout, fromTemplate(content.stdout, unit.roots));
    await writeText(request.stderr, fromTemplate(content.stderr, unit.roots));
    cache.recordHit(slot, request);
    cache.count({ hits: 1, failed_probe_hits: 1 }, request);
    const savedMs = Math.max(0, Math.round(content.meta.compileMs - phases.elapsed()));
    return { served: true, exitCode: content.meta.exitCode, slot, savedMs, bytes: 0 };
  }
  let bytes: number;
  try {
    bytes = await restoreOutputs(content, unit, cache.memo, request);
  } catch (error) {
    if (request.abandoned?.()) return { served: false, reason: "client gone" };
    warnOncePerBuild(
      request,
      "restore",
      `cannot restore ${unit.crate} from the cache, compiling it: ${errorMessage(error)}`,
    );
    return { served: false, reason: "restore failed" };
  }
  phases.done("restored");
  const compileMs = cache.recordHit(slot, request) ?? content.meta.compileMs;
  const savedMs = Math.max(0, Math.round(compileMs - phases.elapsed()));
  cache.count({ hits: 1, saved_ms: savedMs }, request);
  if (bundle) {
    // After cargo has its answer, from the verified bytes (not from target/, which is cargo's
    // again by then): the next hit on this entry copies instead of unpacking.
    const sources = [...bundle.files].map(([role, bytes]) => ({ role, bytes }));
    request.afterReply.push(() =>
      void cache.using(slot, () => Promise.resolve(cache.writeHotCopy(slot, bundle, sources)))
    );
  }
  phases.done("recorded");
  return { served: true, slot, savedMs, bytes };
}

/**
 * Writes a hit's files where this build expects them, in the order rustc would: the `.rmeta`
 * first, announced to cargo at once (the replayed stderr up to its artifact notification), so
 * that cargo starts dependent crates while the rlib is still being written. Resolves to the bytes
 * written.
 */
async function restoreOutputs(
  content: EntryContent,
  unit: Unit,
  memo: DigestMemo,
  request: DispatchRequest,
): Promise<number> {
  let written = 0;
  const digests = new Map(content.meta.outputs.map((output) => [output.role, output.digest]));
  const stderr = fromTemplate(content.stderr, unit.roots);
  const announced = metadataAnnouncementEnd(stderr);
  const ordered = [...unit.outputs].sort((a, b) =>
    Number(b.role === "rmeta") - Number(a.role === "rmeta")
  );
  for (const output of ordered) {
    refuseIfAbandoned(request);
    const source = content.files.get(output.role);
    const digest = digests.get(output.role);
    if (source === undefined || digest === undefined) {
      throw new BundleError(`no ${output.role} in bundle`);
    }
    written += writeAtomically(output.path, source, output.role === "bin" ? 0o755 : 0o644);
    // Remembered before cargo hears of the file: a dependent keys on its digest.
    rememberWrittenFile(output.path, digest, memo);
    if (output.role === "rmeta") {
      memo.flush?.();
      await writeText(request.stderr, stderr.slice(0, announced));
    }
  }
  const depInfo = depInfoPath(unit.args);
  refuseIfAbandoned(request);
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
  return written;
}

/**
 * Throws when the call's client has given up and compiles by itself: whatever this call would
 * write now would land over what that compile writes.
 */
export function refuseIfAbandoned(request: DispatchRequest): void {
  if (request.abandoned?.()) throw new Error("the client gave up waiting and compiles by itself");
}

/** Where the line announcing the `.rmeta` artifact ends in rustc's JSON stderr (0 if absent). */
function metadataAnnouncementEnd(stderr: string): number {
  const match = /^\{"\$message_type":"artifact".*"emit":"metadata"\}$/m.exec(stderr);
  return match === null ? 0 : match.index + match[0].length + 1;
}

/**
 * Writes through a temporary file and a rename, so cargo never sees half an artefact; returns
 * the bytes written.
 */
// Synchronous on purpose: Deno's async file ops cost a thread-pool round trip each, which shows
// on a hit's large writes; in the daemon a copy of a few MB blocks other requests for about a
// millisecond, less than the round trips would cost them.
function writeAtomically(path: string, source: Uint8Array | string, mode: number): number {
  const temp = join(dirname(path), `.${crypto.randomUUID()}.warmup-tmp`);
  try {
    let size = 0;
    // A file source is copied in the kernel (copy_file_range), keeping its mode.
    if (typeof source === "string") {
      Deno.copyFileSync(source, temp);
      size = Deno.statSync(temp).size;
    } else {
      Deno.writeFileSync(temp, source, { mode });
      size = source.length;
    }
    Deno.renameSync(temp, path);
    return size;
  } catch (error) {
    try {
      Deno.removeSync(temp);
    } catch {
      // nothing was written
    }
    throw error;
  }
}
