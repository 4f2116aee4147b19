/**
 * The bundle: one cached compilation as bytes, self-verifying wherever it was stored.
 *
 * Layout: a 70-byte envelope (magic `CWUB`, format 1, flags, SHA-256 of the payload, HMAC of the
 * cache key and that hash when signed), then the payload: a zstd-compressed ustar archive of
 * `meta.json`, one `out.<role>` file per output, and the dep-info, stdout and stderr templates.
 * @module
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { packTar, type TarEntry, unpackTar } from "./_tar.ts";
import { sha256Hex } from "../digest.ts";
import { errorMessage } from "../error_message.ts";

const MAGIC = new TextEncoder().encode("CWUB");
const FORMAT = 1;
const FLAG_SIGNED = 1;
const HEADER_SIZE = 4 + 1 + 1 + 32 + 32;
/** A bundle that inflates past this is refused rather than exhausting memory. */
const MAX_UNPACKED_BYTES = 2 ** 31 - 1;
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
/** Every role a bundle (or its unpacked mirror) may hold: anything else is refused. */
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
   * see src/dispatch/variants.ts.
   */
  variants?: Array<{ id: string } & Pick<BundleMeta, "sources" | "envDeps">>;
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

/** A bundle that must not be served: truncated, altered, unsigned, hostile or for another key. */
export class BundleError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BundleError";
  }
}

/** Options for packing and opening bundles. */
export interface BundleCodecOptions {
  /** zstd level for packing; 1 when not given. */
  compressionLevel?: number;
  /** When set, packed bundles are signed and opened bundles must carry a valid signature. */
  signingKey?: Uint8Array | undefined;
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
  const payload = zstdCompressSync(packTar(entries), {
    chunkSize: ZSTD_CHUNK,
    params: {
      [constants.ZSTD_c_compressionLevel]: options.compressionLevel ?? DEFAULT_LEVEL,
      // An rlib embeds the crate's metadata, which the .rmeta beside it repeats: a long window
      // finds that copy and halves the bundle, for little extra time.
      [constants.ZSTD_c_enableLongDistanceMatching]: 1,
      [constants.ZSTD_c_windowLog]: WINDOW_LOG,
    },
  });

  const hash = Buffer.from(sha256Hex(payload), "hex");
  const envelope = new Uint8Array(HEADER_SIZE + payload.length);
  envelope.set(MAGIC, 0);
  envelope[4] = FORMAT;
  envelope[5] = options.signingKey ? FLAG_SIGNED : 0;
  envelope.set(hash, 6);
  if (options.signingKey) envelope.set(signature(options.signingKey, bundle.meta.key, hash), 38);
  envelope.set(payload, HEADER_SIZE);
  return envelope;
}

/** Verifies and unpacks stored bytes; throws {@linkcode BundleError} for anything not servable. */
export async function openBundle(
  bytes: Uint8Array,
  expectedKey: string,
  options: BundleCodecOptions = {},
): Promise<Bundle> {
  if (bytes.length < HEADER_SIZE || !MAGIC.every((byte, i) => bytes[i] === byte)) {
    throw new BundleError("Not a cargo-warmup bundle: bad magic or truncated header");
  }
  if (bytes[4] !== FORMAT) throw new BundleError(`Unknown bundle format ${bytes[4]}`);
  const hash = bytes.subarray(6, 38);
  const payload = bytes.subarray(HEADER_SIZE);
  if (sha256Hex(payload) !== Buffer.from(hash).toString("hex")) {
    throw new BundleError("Content hash mismatch: the bundle is truncated or altered");
  }
  if (options.signingKey) {
    const signed = (bytes[5]! & FLAG_SIGNED) !== 0;
    const expected = signature(options.signingKey, expectedKey, hash);
    if (!signed || !timingSafeEqual(expected, bytes.subarray(38, 70))) {
      throw new BundleError("Bad signature: the bundle was not written by a holder of the key");
    }
  }

  const { constants, zstdDecompressSync } = await loadZlib();
  let entries: TarEntry[];
  try {
    entries = unpackTar(
      zstdDecompressSync(payload, {
        maxOutputLength: MAX_UNPACKED_BYTES,
        chunkSize: ZSTD_CHUNK,
        params: { [constants.ZSTD_d_windowLogMax]: MAX_WINDOW_LOG },
      }),
    );
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

/** node:zlib costs a process ~15 ms to load: only bundle packing and unpacking need it. */
function loadZlib() {
  return import("node:zlib");
}

function signature(key: Uint8Array, cacheKey: string, hash: Uint8Array): Uint8Array {
  return createHmac("sha256", key).update(cacheKey).update(hash).digest();
}
