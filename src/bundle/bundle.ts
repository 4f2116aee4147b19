/**
 * The bundle: one cached compilation as bytes, self-verifying wherever it was stored.
 *
 * Layout: an envelope (envelope.ts: the payload's hash and, when signed, who signed it for which
 * cache key), then the payload: a zstd-compressed ustar archive of `meta.json`, one `out.<role>`
 * file per output, and the dep-info, stdout and stderr templates.
 *
 * A bundle may come from a shared, untrusted cache, so what unpacking it may cost is known before
 * anything is allocated: the zstd frame header declares the payload's unpacked size
 * (Frame_Content_Size), a declared size over 64 times the compressed size plus 8 MiB (or over
 * 2 GiB) is refused without decompressing, and decompression stops at the declared size, so a
 * payload that lies is cut off there. Bundles written before sizes were declared stay readable,
 * bounded by that same limit; a bundle that would exceed it is refused when packing.
 * @module
 */

import type { ZstdOptions } from "node:zlib";
import { packTar, type TarEntry, unpackTar } from "./_tar.ts";
import { BundleError, type EnvelopeOptions, openEnvelope, sealEnvelope } from "./envelope.ts";
import { errorMessage } from "../error_message.ts";

export { BundleError };
/** A bundle that inflates past this is refused rather than exhausting memory. */
const MAX_UNPACKED_BYTES = 2 ** 31 - 1;
/**
 * How far a payload may inflate, as a multiple of its compressed size. Real bundles inflate 1.5 to
 * 11 times (the most on payloads of a few hundred bytes, at most 6.5 times above 4 MiB), while a
 * bomb of zeros inflates thousands of times: this bounds what a hostile entry costs the daemon to
 * 64 times what it took to fetch.
 */
const MAX_INFLATION = 64;
/** Slack on top of {@linkcode MAX_INFLATION}, so small, very regular bundles are never refused. */
const INFLATION_SLACK = 8 * 2 ** 20;
const ZSTD_FRAME_MAGIC = 0xfd2fb528;
/** Level 1: on a miss the build waits for compression, and higher levels buy little here. */
const DEFAULT_LEVEL = 1;
/** 16 MiB reaches from an rmeta to its copy in the rlib; a larger window only costs time. */
const WINDOW_LOG = 24;
/** What a reader accepts: bundles written with a larger window stay readable. */
const MAX_WINDOW_LOG = 27;
/** Large output chunks: Deno's zstd binding is markedly slower with the 16 KiB default. */
const ZSTD_CHUNK = 1 << 22;

/** What an output file is to cargo; a bundle stores each output under `out.<role>`. */
export type OutputRole = "rlib" | "rmeta" | "dylib" | "bin" | "out-dir";
/** Every role a bundle (or its hot copy) may hold: anything else is refused. */
export const OUTPUT_ROLES: ReadonlySet<string> = new Set<OutputRole>([
  "rlib",
  "rmeta",
  "dylib",
  "bin",
  // A build-script run's OUT_DIR (src/dispatch/out_dir_snapshot.ts).
  "out-dir",
]);
/** The kind of unit a bundle holds, for status lines and the index. */
export type UnitKind = "lib" | "check" | "proc-macro" | "build-script" | "bin" | "build-run";

/** What a bundle says about itself. */
export interface BundleMeta {
  format: 1;
  key: string;
  crate: string;
  version: string;
  kind: UnitKind;
  /** Each output's role with the SHA-256 of its bytes (recorded so dependents need not re-hash). */
  outputs: Array<{ role: OutputRole; digest: string }>;
  /** Source files the compilation read (templated paths) and their digests. */
  sources: Array<{ path: string; digest: string }>;
  /** Environment variables the crate read, values templated; value absent when unset. */
  envDeps: Array<{ name: string; value?: string }>;
  compileMs: number;
  createdAt: string;
  /**
   * Set for a compile that failed deterministically (a build script's probe): it has no outputs,
   * and a hit replays its diagnostics with this exit code (src/dispatch/failed_probe.ts).
   */
  exitCode?: number;
  /**
   * Older variants of the same key (other inputs, stored under their own slots), newest first;
   * see src/cache/variants.ts.
   */
  variants?: Array<{ id: string } & Pick<BundleMeta, "sources" | "envDeps">>;
  /**
   * How the stored diagnostics were rendered (the call's `--error-format`, `--json=diagnostic-…`,
   * `--diagnostic-width`, `--color`): see src/dispatch/diagnostic_rendering.ts. Absent in older
   * entries.
   */
  rendering?: string;
}

/** One cached compilation. */
export interface Bundle {
  meta: BundleMeta;
  files: Map<OutputRole, Uint8Array>;
  /** The dep-info file as a template, when the invocation emitted one. */
  depInfo?: string;
  stdout: string;
  stderr: string;
}

/** Options for packing and opening bundles: the zstd level, and the keys (see envelope.ts). */
export interface BundleCodecOptions extends EnvelopeOptions {
  /** zstd level for packing; 1 when not given. */
  compressionLevel?: number;
}

/**
 * Packs a bundle into its stored bytes.
 *
 * @example
 * ```ts
 * import { openBundle, packBundle } from "./bundle.ts";
 * const key = "0".repeat(64);
 * const bytes = await packBundle({
 *   meta: { format: 1, key, crate: "itoa", version: "1.0.1", kind: "lib", outputs: [],
 *     sources: [], envDeps: [], compileMs: 5, createdAt: new Date().toISOString() },
 *   files: new Map(), stdout: "", stderr: "",
 * });
 * console.log((await openBundle(bytes, key)).meta.crate); // "itoa"
 * ```
 */
export async function packBundle(
  bundle: Bundle,
  options: BundleCodecOptions = {},
): Promise<Uint8Array> {
  const { constants, zstdCompressSync } = await loadZlib();
  const encoder = new TextEncoder();
  const entries: TarEntry[] = [
    { name: "meta.json", data: encoder.encode(JSON.stringify(bundle.meta)) },
    { name: "stdout.tmpl", data: encoder.encode(bundle.stdout) },
    { name: "stderr.tmpl", data: encoder.encode(bundle.stderr) },
  ];
  if (bundle.depInfo !== undefined) {
    entries.push({ name: "dep-info.tmpl", data: encoder.encode(bundle.depInfo) });
  }
  // The rmeta before the rlib that embeds it, so the compressor finds the copy close behind.
  const files = [...bundle.files].sort(([a], [b]) => Number(b === "rmeta") - Number(a === "rmeta"));
  for (const [role, data] of files) entries.push({ name: `out.${role}`, data });
  const archive = packTar(entries);
  // Deno's node:zlib takes Node's pledgedSrcSize option, though the types it ships lack it.
  const zstdOptions: ZstdOptions & { pledgedSrcSize: number } = {
    chunkSize: ZSTD_CHUNK,
    // Writes the archive's size into the frame header, where openBundle bounds decompression by it.
    pledgedSrcSize: archive.length,
    params: {
      [constants.ZSTD_c_compressionLevel]: options.compressionLevel ?? DEFAULT_LEVEL,
      // An rlib embeds the crate's metadata, which the .rmeta beside it repeats: a long window
      // finds that copy and halves the bundle, for little extra time.
      [constants.ZSTD_c_enableLongDistanceMatching]: 1,
      [constants.ZSTD_c_windowLog]: WINDOW_LOG,
    },
  };
  const payload = zstdCompressSync(archive, zstdOptions);
  const limit = unpackLimit(payload.length);
  if (archive.length > limit) {
    // Every reader would refuse it: better not stored than fetched, refused and compiled again.
    throw new BundleError(
      `Bundle would unpack to ${archive.length} bytes from ${payload.length}, over its limit of ${limit}`,
    );
  }

  return await sealEnvelope(payload, bundle.meta.key, options);
}

/**
 * Verifies and unpacks stored bytes: its content hash, the cache key it was signed for, and the
 * signature `options` ask for (envelope.ts). Throws {@linkcode BundleError} for anything not
 * servable.
 */
export async function openBundle(
  bytes: Uint8Array,
  expectedKey: string,
  options: BundleCodecOptions = {},
): Promise<Bundle> {
  return unpackPayload(await openEnvelope(bytes, expectedKey, options), expectedKey);
}

/**
 * The bundle in an envelope's payload (see {@linkcode openEnvelope}, which checks the payload's
 * integrity and signature first): decompressed within its bounds and parsed. The costly half of
 * {@linkcode openBundle}, done apart for staging (src/cache/staging.ts) in a worker.
 */
export async function unpackPayload(payload: Uint8Array, expectedKey: string): Promise<Bundle> {
  const limit = unpackLimit(payload.length);
  const declared = declaredSize(payload);
  if (declared !== undefined && declared > limit) {
    throw new BundleError(
      `Bundle declares ${declared} unpacked bytes from ${payload.length}, over its limit of ${limit}`,
    );
  }
  const { constants, zstdDecompressSync } = await loadZlib();
  let archive: Uint8Array;
  try {
    archive = zstdDecompressSync(payload, {
      // At least 1, which the option requires: a payload declaring 0 bytes fails as a tar instead.
      maxOutputLength: Math.max(declared ?? limit, 1),
      // One buffer of the declared size (plus the byte that shows the frame ended) is about a
      // fifth faster than collecting 4 MiB chunks and joining them.
      chunkSize: declared === undefined
        ? ZSTD_CHUNK
        : Math.max(declared + 1, constants.Z_MIN_CHUNK),
      params: { [constants.ZSTD_d_windowLogMax]: MAX_WINDOW_LOG },
    });
  } catch (error) {
    if ((error as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE") {
      const bound = declared === undefined ? `its limit of ${limit}` : "its declared size";
      throw new BundleError(`Bundle unpacks to more than ${declared ?? limit} bytes, ${bound}`, {
        cause: error,
      });
    }
    // Given the declared size as its one buffer, zstd itself stops a frame that outgrows it.
    const declaring = declared === undefined ? "" : ` declaring ${declared} bytes`;
    throw new BundleError(`Cannot unpack bundle${declaring}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  let entries: TarEntry[];
  try {
    entries = unpackTar(archive);
  } catch (error) {
    throw new BundleError(`Cannot unpack bundle: ${errorMessage(error)}`, { cause: error });
  }
  const byName = new Map(entries.map((entry) => [entry.name, entry.data]));
  const text = (name: string) => {
    const data = byName.get(name);
    if (data === undefined) throw new BundleError(`Bundle has no "${name}"`);
    return new TextDecoder().decode(data);
  };

  let meta: BundleMeta;
  try {
    meta = JSON.parse(text("meta.json"));
  } catch (error) {
    if (error instanceof BundleError) throw error;
    throw new BundleError("Bundle meta.json is not valid JSON", { cause: error });
  }
  if (meta.format !== 1 || meta.key !== expectedKey) {
    throw new BundleError(`Bundle is for key "${meta.key}", not "${expectedKey}"`);
  }
  const records = [meta, ...(Array.isArray(meta.variants) ? meta.variants : [])];
  if (
    (meta.variants !== undefined && !Array.isArray(meta.variants)) ||
    !records.every((record) => Array.isArray(record.sources) && Array.isArray(record.envDeps))
  ) {
    throw new BundleError("Bundle meta.json has malformed input records");
  }
  if (
    meta.exitCode !== undefined &&
    !(Number.isInteger(meta.exitCode) && meta.exitCode >= 1 && meta.exitCode <= 255)
  ) {
    throw new BundleError(`Bundle meta.json has a bad exit code ${meta.exitCode}`);
  }
  const files = new Map<OutputRole, Uint8Array>();
  for (const output of meta.outputs ?? []) {
    const data = byName.get(`out.${output.role}`);
    if (!OUTPUT_ROLES.has(output.role) || data === undefined) {
      throw new BundleError(`Bundle output "${output.role}" is missing or unknown`);
    }
    files.set(output.role, data);
  }
  const bundle: Bundle = { meta, files, stdout: text("stdout.tmpl"), stderr: text("stderr.tmpl") };
  if (byName.has("dep-info.tmpl")) bundle.depInfo = text("dep-info.tmpl");
  return bundle;
}

/** The most a payload of `compressedBytes` may unpack to. */
function unpackLimit(compressedBytes: number): number {
  return Math.min(MAX_UNPACKED_BYTES, compressedBytes * MAX_INFLATION + INFLATION_SLACK);
}

/**
 * The unpacked size a zstd frame header declares (RFC 8878, section 3.1.1.1), or undefined when it
 * declares none, as bundles written before sizes were declared do. Refuses anything but a zstd
 * frame: a skippable frame first would hide the real header.
 */
function declaredSize(payload: Uint8Array): number | undefined {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (payload.length < 6 || view.getUint32(0, true) !== ZSTD_FRAME_MAGIC) {
    throw new BundleError("Bundle payload is not a zstd frame");
  }
  const descriptor = payload[4]!;
  const sizeFlag = descriptor >> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][sizeFlag]!;
  if (sizeBytes === 0) return undefined;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
  const at = 5 + (singleSegment ? 0 : 1) + dictionaryBytes;
  if (payload.length < at + sizeBytes) {
    throw new BundleError("Bundle zstd frame header is truncated");
  }
  switch (sizeBytes) {
    case 1:
      return view.getUint8(at);
    case 2:
      // The 2-byte form counts from 256 (the 1-byte form covers what is below).
      return view.getUint16(at, true) + 256;
    case 4:
      return view.getUint32(at, true);
    default:
      return Number(view.getBigUint64(at, true));
  }
}

/** node:zlib costs a process ~15 ms to load: only bundle packing and unpacking need it. */
function loadZlib() {
  return import("node:zlib");
}
