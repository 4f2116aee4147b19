/**
 * A bundle's envelope: what makes stored bytes self-verifying wherever they were kept. It holds
 * the payload's SHA-256 and, when signed, who signed it for which cache key.
 *
 * - Format 1, 70 bytes: magic `CWUB`, format, flags, the payload's SHA-256, then the HMAC-SHA256
 *   of the cache key and that hash when signed with a shared secret (zeros otherwise). Written
 *   whenever no Ed25519 key is configured, as before Ed25519 keys.
 * - Format 2, 142 bytes: magic, format, flags, the payload's SHA-256, the SHA-256 of the cache
 *   key, the signer's key id (keys.ts), then the Ed25519 signature of those first 78 bytes.
 *   Written by a holder of an Ed25519 private key.
 *
 * Both bind a signed bundle to its cache key: copied to another key, it is refused.
 * @module
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { sha256Hex } from "../digest.ts";
import type { BundleSigner, TrustedKeys } from "./keys.ts";

const MAGIC = new TextEncoder().encode("CWUB");
/** Unsigned, or signed with a shared HMAC secret. */
const FORMAT_HMAC = 1;
/** Signed with an Ed25519 key. */
const FORMAT_ED25519 = 2;
/** Format 1: the HMAC field holds a signature. */
const FLAG_SIGNED = 1;
/** Format 2: always set. */
const FLAG_ED25519 = 2;
const HEADER_SIZE_HMAC = 4 + 1 + 1 + 32 + 32;
/** What an Ed25519 signature covers: magic, format, flags, payload hash, key hash, key id. */
const SIGNED_PART = 4 + 1 + 1 + 32 + 32 + 8;
const HEADER_SIZE_ED25519 = SIGNED_PART + 64;

/** A bundle that must not be served: truncated, altered, unsigned, hostile or for another key. */
export class BundleError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BundleError";
  }
}

/** The keys a bundle is signed and checked with; none: unsigned, checked by its hash alone. */
export interface EnvelopeOptions {
  /**
   * A shared HMAC secret: sealed bundles are signed with it (unless `signer` is given), and opened
   * bundles must carry its signature for the key asked for.
   */
  signingKey?: Uint8Array | undefined;
  /** An Ed25519 private key: sealed bundles are written in format 2, signed with it. */
  signer?: BundleSigner | undefined;
  /**
   * Ed25519 public keys: an opened bundle in format 2 must be signed by one of them. A format 1
   * bundle is not refused for that (on local disk it is this machine's own); a bundle from a
   * shared level passes {@linkcode verifySigner} first.
   */
  trustedKeys?: TrustedKeys | undefined;
}

/**
 * Puts `payload`, the payload of `cacheKey`'s bundle, in its envelope: format 2 signed by
 * `options.signer` when given, else format 1 (HMAC-signed with `options.signingKey` when given).
 *
 * @example
 * ```ts
 * import { openEnvelope, sealEnvelope } from "./envelope.ts";
 * const key = "0".repeat(64);
 * const sealed = await sealEnvelope(new Uint8Array([1, 2, 3]), key);
 * console.log(sealed.length, (await openEnvelope(sealed, key)).length); // 73 3
 * ```
 */
export async function sealEnvelope(
  payload: Uint8Array,
  cacheKey: string,
  options: EnvelopeOptions = {},
): Promise<Uint8Array> {
  const hash = Buffer.from(sha256Hex(payload), "hex");
  const { signer, signingKey } = options;
  const envelope = new Uint8Array(
    (signer ? HEADER_SIZE_ED25519 : HEADER_SIZE_HMAC) + payload.length,
  );
  envelope.set(MAGIC, 0);
  envelope.set(hash, 6);
  if (signer) {
    envelope[4] = FORMAT_ED25519;
    envelope[5] = FLAG_ED25519;
    envelope.set(Buffer.from(sha256Hex(cacheKey), "hex"), 38);
    envelope.set(Buffer.from(signer.id, "hex"), 70);
    const signed = envelope.subarray(0, SIGNED_PART);
    const signature = await crypto.subtle.sign("Ed25519", signer.privateKey, signed);
    envelope.set(new Uint8Array(signature), SIGNED_PART);
    envelope.set(payload, HEADER_SIZE_ED25519);
  } else {
    envelope[4] = FORMAT_HMAC;
    envelope[5] = signingKey ? FLAG_SIGNED : 0;
    if (signingKey) envelope.set(hmacOf(signingKey, cacheKey, hash), 38);
    envelope.set(payload, HEADER_SIZE_HMAC);
  }
  return envelope;
}

/**
 * The payload of `bytes` once its envelope checks out for `expectedKey`: the content hash, the
 * cache key a format 2 bundle was signed for, and the signature `options` ask for.
 *
 * @throws {BundleError} For anything not servable, saying why.
 *
 * @example
 * ```ts
 * import { openEnvelope, sealEnvelope } from "./envelope.ts";
 * const key = "0".repeat(64);
 * const sealed = await sealEnvelope(new Uint8Array([1]), key);
 * console.log((await openEnvelope(sealed, key))[0]); // 1
 * ```
 */
export async function openEnvelope(
  bytes: Uint8Array,
  expectedKey: string,
  options: EnvelopeOptions = {},
): Promise<Uint8Array> {
  const { format, payload } = readEnvelope(bytes);
  if (format === FORMAT_ED25519) {
    // Signed for one cache key: moved to another, it is refused whoever signed it.
    if (sha256Hex(expectedKey) !== Buffer.from(bytes.subarray(38, 70)).toString("hex")) {
      throw new BundleError(`Bundle is signed for another key, not "${expectedKey}"`);
    }
    if (options.trustedKeys?.size) await verifyEd25519(bytes, options.trustedKeys);
    else if (options.signingKey) {
      throw new BundleError("Bad signature: the bundle was not written by a holder of the key");
    }
  } else if (options.signingKey) {
    const signed = (bytes[5]! & FLAG_SIGNED) !== 0;
    const expected = hmacOf(options.signingKey, expectedKey, bytes.subarray(6, 38));
    if (!signed || !timingSafeEqual(expected, bytes.subarray(38, 70))) {
      throw new BundleError("Bad signature: the bundle was not written by a holder of the key");
    }
  }
  return payload;
}

/**
 * Checks that a bundle from a shared level was written by a trusted writer, before it is served
 * or kept on local disk: signed with Ed25519 by one of `trustedKeys` (over its payload's hash and
 * the cache key it names), or, with a shared HMAC secret configured, carrying an HMAC signature
 * (which {@linkcode openEnvelope} checks for the key asked for on every read). Whether it is for
 * the key asked for is checked when it is opened.
 *
 * @throws {BundleError} Naming why it is refused: unsigned, signed by another key, or altered.
 *
 * @example
 * ```ts
 * import { sealEnvelope, verifySigner } from "./envelope.ts";
 * const unsigned = await sealEnvelope(new Uint8Array([1]), "0".repeat(64));
 * const error = await verifySigner(unsigned, { trustedKeys: new Map() }).catch((e) => e);
 * console.log(error.message); // "Bundle is not signed by a trusted key: it carries no signature"
 * ```
 */
export async function verifySigner(
  bytes: Uint8Array,
  options: Pick<EnvelopeOptions, "signingKey" | "trustedKeys">,
): Promise<void> {
  const { format } = readEnvelope(bytes);
  if (format === FORMAT_ED25519) await verifyEd25519(bytes, options.trustedKeys ?? new Map());
  else if (!options.signingKey || (bytes[5]! & FLAG_SIGNED) === 0) {
    throw new BundleError("Bundle is not signed by a trusted key: it carries no signature");
  }
}

/** An envelope's format and payload, its structure and content hash checked. */
function readEnvelope(bytes: Uint8Array): { format: number; payload: Uint8Array } {
  if (bytes.length < HEADER_SIZE_HMAC || !MAGIC.every((byte, i) => bytes[i] === byte)) {
    throw new BundleError("Not a cargo-warmup bundle: bad magic or truncated header");
  }
  const format = bytes[4]!;
  if (format !== FORMAT_HMAC && format !== FORMAT_ED25519) {
    throw new BundleError(`Unknown bundle format ${format}`);
  }
  const headerSize = format === FORMAT_HMAC ? HEADER_SIZE_HMAC : HEADER_SIZE_ED25519;
  if (bytes.length < headerSize || (format === FORMAT_ED25519 && bytes[5] !== FLAG_ED25519)) {
    throw new BundleError(`Bundle of format ${format} has a truncated or malformed header`);
  }
  const payload = bytes.subarray(headerSize);
  if (sha256Hex(payload) !== Buffer.from(bytes.subarray(6, 38)).toString("hex")) {
    throw new BundleError("Content hash mismatch: the bundle is truncated or altered");
  }
  return { format, payload };
}

/** Checks a format 2 envelope's signature against the key it names, which must be trusted. */
async function verifyEd25519(bytes: Uint8Array, trustedKeys: TrustedKeys): Promise<void> {
  const id = Buffer.from(bytes.subarray(70, SIGNED_PART)).toString("hex");
  const key = trustedKeys.get(id);
  if (key === undefined) {
    throw new BundleError(`Bundle is signed by key "${id}", which is not a trusted key`);
  }
  const valid = await crypto.subtle.verify(
    "Ed25519",
    key,
    bytes.slice(SIGNED_PART, HEADER_SIZE_ED25519),
    bytes.slice(0, SIGNED_PART),
  );
  if (!valid) {
    throw new BundleError(`Bad signature: the bundle names key "${id}" but was not signed by it`);
  }
}

function hmacOf(key: Uint8Array, cacheKey: string, hash: Uint8Array): Uint8Array {
  return createHmac("sha256", key).update(cacheKey).update(hash).digest();
}
