/**
 * What a build script wrote to OUT_DIR, as one blob a run bundle stores, and its restore into
 * another build's OUT_DIR. Text files that name the build's own directories are kept as
 * templates and rewritten on restore; other files are kept as bytes. A blob may come from a
 * shared, untrusted cache: its paths are checked before anything is written.
 *
 * Blob: a big-endian u32 length, that many bytes of JSON (`{ files: [{ path, size, mode,
 * template }] }`), then the files' bytes in that order.
 * @module
 */

import { dirname, join, relative } from "node:path";
import { fromTemplate, type PathRoots, toTemplate } from "../cache/path_roots.ts";

/** Beyond these, a run is not worth caching (and a blob claiming more is refused). */
const MAX_FILES = 20_000;
const MAX_BYTES = 1024 ** 3;

interface FileRecord {
  /** Relative to OUT_DIR, `/`-separated. */
  path: string;
  size: number;
  mode: 0o644 | 0o755;
  /** Stored as a template of the build's directories. */
  template: boolean;
}

/**
 * The blob of everything under `outDir`, or why it cannot be cached (a symlink, which may point
 * anywhere; more than the limits).
 */
export function snapshotOutDir(
  outDir: string,
  roots: PathRoots,
): { blob: Uint8Array; files: number } | { uncacheable: string } {
  const records: FileRecord[] = [];
  const bodies: Uint8Array[] = [];
  let total = 0;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const visit = (dir: string): string | undefined => {
    for (const entry of [...Deno.readDirSync(dir)].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(dir, entry.name);
      if (entry.isSymlink) return `OUT_DIR holds a symlink (${relative(outDir, path)})`;
      if (entry.isDirectory) {
        const why = visit(path);
        if (why) return why;
        continue;
      }
      let data = Deno.readFileSync(path);
      const executable = ((Deno.statSync(path).mode ?? 0) & 0o111) !== 0;
      let template = false;
      if (!data.includes(0)) {
        try {
          const text = decoder.decode(data);
          const templated = toTemplate(text, roots);
          if (templated !== text) {
            data = new TextEncoder().encode(templated);
            template = true;
          }
        } catch {
          // not UTF-8: kept as bytes
        }
      }
      total += data.length;
      if (records.length >= MAX_FILES || total > MAX_BYTES) return "OUT_DIR is too large to cache";
      records.push({
        path: relative(outDir, path),
        size: data.length,
        mode: executable ? 0o755 : 0o644,
        template,
      });
      bodies.push(data);
    }
    return undefined;
  };
  const why = visit(outDir);
  if (why) return { uncacheable: why };
  const header = new TextEncoder().encode(JSON.stringify({ files: records }));
  const blob = new Uint8Array(4 + header.length + total);
  new DataView(blob.buffer).setUint32(0, header.length);
  blob.set(header, 4);
  let offset = 4 + header.length;
  for (const body of bodies) {
    blob.set(body, offset);
    offset += body.length;
  }
  return { blob, files: records.length };
}

/**
 * Writes a blob's files into `outDir` (which exists), templates resolved with `roots`; throws on
 * a malformed or hostile blob, or when OUT_DIR holds a symlink where a file would go or on the
 * way to it. A file already there is replaced, not written into (it may be a hard link).
 */
export function restoreOutDir(blob: Uint8Array, outDir: string, roots: PathRoots): number {
  const records = readHeader(blob);
  let offset = 4 + new DataView(blob.buffer, blob.byteOffset).getUint32(0);
  for (const record of records) {
    const target = join(outDir, record.path);
    refuseSymlinks(outDir, dirname(target));
    Deno.mkdirSync(dirname(target), { recursive: true });
    let data = blob.subarray(offset, offset + record.size);
    offset += record.size;
    if (record.template) {
      data = new TextEncoder().encode(fromTemplate(new TextDecoder().decode(data), roots));
    }
    try {
      const existing = Deno.lstatSync(target);
      if (existing.isSymlink) throw new Error(`${record.path} is a symlink`);
      // A file of an earlier run may be a hard link to one outside OUT_DIR: writing into it
      // would write there too, so its name is replaced, never written through.
      if (existing.isFile) Deno.removeSync(target);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    // createNew: a link that appeared meanwhile is refused, not followed.
    Deno.writeFileSync(target, data, { mode: record.mode, createNew: true });
    Deno.chmodSync(target, record.mode);
  }
  return records.length;
}

function readHeader(blob: Uint8Array): FileRecord[] {
  if (blob.length < 4) throw new SyntaxError("OUT_DIR blob is truncated");
  const length = new DataView(blob.buffer, blob.byteOffset).getUint32(0);
  if (4 + length > blob.length) throw new SyntaxError("OUT_DIR blob header is truncated");
  const header = JSON.parse(new TextDecoder().decode(blob.subarray(4, 4 + length)));
  const files: unknown = header?.files;
  if (!Array.isArray(files) || files.length > MAX_FILES) {
    throw new SyntaxError("OUT_DIR blob has no valid file list");
  }
  let total = 0;
  for (const record of files) {
    const valid = typeof record === "object" && record !== null &&
      typeof record.path === "string" && isSafeRelativePath(record.path) &&
      Number.isSafeInteger(record.size) && record.size >= 0 &&
      (record.mode === 0o644 || record.mode === 0o755) && typeof record.template === "boolean";
    if (!valid) throw new SyntaxError(`OUT_DIR blob has a bad entry: ${JSON.stringify(record)}`);
    total += record.size;
  }
  if (4 + length + total !== blob.length) throw new SyntaxError("OUT_DIR blob size mismatch");
  return files as FileRecord[];
}

/** A relative path without `..`, `.` or empty parts, no NUL: it stays inside OUT_DIR. */
function isSafeRelativePath(path: string): boolean {
  if (path === "" || path.length > 4096 || path.startsWith("/") || path.includes("\0")) {
    return false;
  }
  return path.split("/").every((part) => part !== "" && part !== "." && part !== "..");
}

/** Throws when a directory between `outDir` and `dir` (both included) is a symlink. */
function refuseSymlinks(outDir: string, dir: string): void {
  for (let current = dir;; current = dirname(current)) {
    try {
      if (Deno.lstatSync(current).isSymlink) throw new Error(`${current} is a symlink`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (current === outDir || relative(outDir, current).startsWith("..")) return;
  }
}
