/**
 * The keys of a team cache: the Ed25519 private key a trusted writer (CI) signs the bundles it
 * stores with, the public keys readers accept signatures of, the files they live in, and the id a
 * signed bundle names its signer by (the first 8 bytes of the SHA-256 of the raw public key).
 * `signing-key-file` may instead hold an older shared HMAC secret. Web Crypto does the signing.
 *
 * Files: a private key is PKCS#8 in PEM (`-----BEGIN PRIVATE KEY-----`), as `cargo-warmup keygen`
 * and `openssl genpkey -algorithm ed25519` write it; a public key is the base64 of its 32 raw
 * bytes (`cargo-warmup.pub`), or SPKI in PEM (`-----BEGIN PUBLIC KEY-----`, `openssl pkey -pubout`).
 * @module
 */

import { sha256Hex } from "../digest.ts";
import { errorMessage } from "../error_message.ts";

/** A private key that signs bundles, with the id of its public half. */
export interface BundleSigner {
  /** The key id: 16 hex digits. */
  id: string;
  privateKey: CryptoKey;
  /** The public half, base64 of its raw bytes (what readers list in `trusted-keys`). */
  publicKey: string;
}

/** Public keys by id (16 hex digits): the writers whose signatures a reader accepts. */
export type TrustedKeys = ReadonlyMap<string, CryptoKey>;

/** What `signing-key-file` holds: an Ed25519 private key, or a shared HMAC secret. */
export type SigningKey = { signer: BundleSigner } | { secret: Uint8Array };

/** The keys a cache signs and checks bundles with, read from the files its settings name. */
export interface CacheKeys {
  /** A shared HMAC secret (`signing-key-file` holding anything but a PEM private key). */
  signingKey?: Uint8Array;
  /** An Ed25519 private key (`signing-key-file` holding a PEM private key): a trusted writer. */
  signer?: BundleSigner;
  /**
   * Whose signatures bundles from the shared level must carry: `trusted-keys` and the signer's
   * own public key; undefined when neither is configured.
   */
  trustedKeys?: TrustedKeys;
}

/** DER of a PKCS#8 Ed25519 private key before its 32 bytes (RFC 8410). */
const PKCS8_PREFIX = "302e020100300506032b657004220420";
/** DER of an SPKI Ed25519 public key before its 32 bytes (RFC 8410). */
const SPKI_PREFIX = "302a300506032b6570032100";
const ED25519 = { name: "Ed25519" } as const;

/**
 * Whether `text` is a public key written inline: the base64 of 32 bytes (43 characters and `=`).
 * Anything else in `trusted-keys` is a file's path.
 *
 * @example
 * ```ts
 * import { isPublicKeyText } from "./keys.ts";
 * console.log(isPublicKeyText("A".repeat(43) + "="), isPublicKeyText("keys/ci.pub")); // true false
 * ```
 */
export function isPublicKeyText(text: string): boolean {
  return /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(text);
}

/**
 * The id bundles name a signer by: the first 8 bytes of the SHA-256 of its raw public key, in hex.
 *
 * @example
 * ```ts
 * import { keyIdOf } from "./keys.ts";
 * console.log(keyIdOf(new Uint8Array(32)).length); // 16
 * ```
 */
export function keyIdOf(rawPublicKey: Uint8Array): string {
  return sha256Hex(rawPublicKey).slice(0, 16);
}

/**
 * A new Ed25519 key pair: the private key as a PKCS#8 PEM file's text, the public key as base64
 * of its raw 32 bytes.
 *
 * @example
 * ```ts
 * import { generateKeyPair } from "./keys.ts";
 * const { privateKeyPem, publicKey } = await generateKeyPair();
 * console.log(privateKeyPem.startsWith("-----BEGIN PRIVATE KEY-----"), publicKey.length); // true 44
 * ```
 */
export async function generateKeyPair(): Promise<{ privateKeyPem: string; publicKey: string }> {
  const pair = await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"]) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return {
    privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${toBase64(pkcs8)}\n-----END PRIVATE KEY-----\n`,
    publicKey: toBase64(raw),
  };
}

/**
 * Reads `signing-key-file`: a PEM private key must be an Ed25519 one; any other file is a shared
 * HMAC secret, as before Ed25519 keys.
 *
 * @throws {Error} When the file cannot be read, or is a private key cargo-warmup cannot use.
 *
 * @example
 * ```ts
 * import { generateKeyPair, readSigningKeyFile } from "./keys.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, (await generateKeyPair()).privateKeyPem);
 * console.log("signer" in await readSigningKeyFile(path)); // true
 * ```
 */
export async function readSigningKeyFile(path: string): Promise<SigningKey> {
  const bytes = await Deno.readFile(path);
  const text = new TextDecoder().decode(bytes);
  if (!/-----BEGIN PRIVATE KEY-----/.test(text)) return { secret: bytes };
  const der = pemBody(text, "PRIVATE KEY");
  if (der?.length !== 48 || hex(der.subarray(0, 16)) !== PKCS8_PREFIX) {
    throw new SyntaxError(`"${path}" holds a private key that is not an Ed25519 one`);
  }
  // The public half is in the private key's JWK form (x), which needs an extractable key.
  const extractable = await crypto.subtle.importKey("pkcs8", der, ED25519, true, ["sign"]);
  const { x } = await crypto.subtle.exportKey("jwk", extractable);
  const raw = Uint8Array.fromBase64(x!, { alphabet: "base64url" });
  const privateKey = await crypto.subtle.importKey("pkcs8", der, ED25519, false, ["sign"]);
  return { signer: { id: keyIdOf(raw), privateKey, publicKey: toBase64(raw) } };
}

/**
 * The keys `trusted-keys` lists, each inline (base64 of the 32 raw bytes) or a file holding one
 * (that base64, or a PEM public key).
 *
 * @throws {Error} Naming the entry, when a file cannot be read or an entry is no Ed25519 key.
 *
 * @example
 * ```ts
 * import { generateKeyPair, readTrustedKeys } from "./keys.ts";
 * const { publicKey } = await generateKeyPair();
 * console.log((await readTrustedKeys([publicKey])).size); // 1
 * ```
 */
export async function readTrustedKeys(entries: readonly string[]): Promise<TrustedKeys> {
  const keys = new Map<string, CryptoKey>();
  for (const entry of entries) {
    let raw: Uint8Array<ArrayBuffer>;
    try {
      raw = isPublicKeyText(entry) ? Uint8Array.fromBase64(entry) : await readPublicKeyFile(entry);
    } catch (error) {
      throw new Error(`Cannot read trusted key "${entry}": ${errorMessage(error)}`, {
        cause: error,
      });
    }
    keys.set(keyIdOf(raw), await importPublicKey(raw));
  }
  return keys;
}

/**
 * Reads the keys `settings` name (see {@linkcode CacheKeys}).
 *
 * @throws {Error} Naming the file or entry that cannot be read or used.
 *
 * @example
 * ```ts
 * import { generateKeyPair, readCacheKeys } from "./keys.ts";
 * const { publicKey } = await generateKeyPair();
 * const keys = await readCacheKeys({ signingKeyFile: undefined, trustedKeys: [publicKey] });
 * console.log(keys.signer, keys.trustedKeys?.size); // undefined 1
 * ```
 */
export async function readCacheKeys(settings: {
  signingKeyFile: string | undefined;
  trustedKeys: readonly string[] | undefined;
}): Promise<CacheKeys> {
  const keys: CacheKeys = {};
  const trusted = new Map<string, CryptoKey>();
  if (settings.signingKeyFile !== undefined) {
    let signing: SigningKey;
    try {
      signing = await readSigningKeyFile(settings.signingKeyFile);
    } catch (error) {
      throw new Error(
        `Cannot read signing key "${settings.signingKeyFile}": ${errorMessage(error)}`,
        { cause: error },
      );
    }
    if ("secret" in signing) keys.signingKey = signing.secret;
    else {
      keys.signer = signing.signer;
      // What this writer stores, it may read back from the shared level.
      const raw = Uint8Array.fromBase64(signing.signer.publicKey);
      trusted.set(signing.signer.id, await importPublicKey(raw));
    }
  }
  for (const [id, key] of await readTrustedKeys(settings.trustedKeys ?? [])) trusted.set(id, key);
  if (trusted.size > 0) keys.trustedKeys = trusted;
  return keys;
}

/** Imports 32 raw bytes as an Ed25519 public key that verifies. */
export function importPublicKey(raw: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw, ED25519, false, ["verify"]);
}

/** A public key file's 32 raw bytes. */
async function readPublicKeyFile(path: string): Promise<Uint8Array<ArrayBuffer>> {
  const text = (await Deno.readTextFile(path)).trim();
  if (isPublicKeyText(text)) return Uint8Array.fromBase64(text);
  const der = pemBody(text, "PUBLIC KEY");
  if (der?.length === 44 && hex(der.subarray(0, 12)) === SPKI_PREFIX) return der.subarray(12);
  throw new SyntaxError(
    "not an Ed25519 public key: expected the base64 of 32 bytes (a cargo-warmup.pub) or a PEM public key",
  );
}

/** The bytes of the one PEM block labelled `label` in `text`, or undefined. */
function pemBody(text: string, label: string): Uint8Array<ArrayBuffer> | undefined {
  const match = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*)-----END ${label}-----`)
    .exec(text);
  if (!match) return undefined;
  try {
    return Uint8Array.fromBase64(match[1]!.replace(/\s+/g, ""));
  } catch {
    return undefined;
  }
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
