/**
 * The storage interface every cache backend implements: a flat map from cache key to bundle bytes.
 * Integrity (content hash, signature) lives in the bundle itself, so a store only moves bytes.
 * Beside the bundles, a store keeps what the cache puts under reserved names (`manifest-<64 hex>`,
 * local_layout.ts): through the same get, put and delete, listed apart, never counted as bundles.
 * @module
 */

/** One bundle as a store lists it, for `status` and `gc`. */
export interface StoredEntry {
  /** The cache key: 64 lowercase hex characters. */
  key: string;
  /** Size of the stored bundle in bytes (locally with its hot copy, see `hotSize`). */
  size: number;
  /** Local store: the bytes of the entry's unpacked hot copy, included in `size` (0: none). */
  hotSize?: number;
  /** When the bundle was last read or written, in milliseconds since the epoch. */
  lastUsed: number;
}

/** The result of a store's health check. */
export interface StoreHealth {
  ok: boolean;
  /** A short human sentence: "reachable, 12 ms" or the error met. */
  detail: string;
}

/**
 * A place bundles are kept. Methods reject with {@linkcode StoreUnavailableError} when the
 * backend cannot be reached or refuses the request; callers on the build path turn that into a
 * miss, never into a failed build.
 */
export interface Store {
  /** "local", "redis", "s3" or "http". */
  readonly kind: string;
  /** Where the store lives, for status lines: a directory, `redis://host:6379/0`, `s3://bucket/prefix`. */
  readonly location: string;
  /** The bundle stored under `key` (or reserved name), or `undefined` when there is none. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Stores `bundle` under `key`, replacing what was there; atomic for readers. */
  put(key: string, bundle: Uint8Array): Promise<void>;
  has(key: string): Promise<boolean>;
  /** Removes `key`; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Every stored bundle with its size and last use (never what reserved names hold). */
  list(): Promise<StoredEntry[]>;
  /**
   * What is stored under the reserved names `<word>-…`, with its size and when it was written
   * where the store knows (else 0); `key` holds the name. Empty where the store cannot list (an
   * HTTP cache without a JSON index).
   */
  listReserved(word: string): Promise<StoredEntry[]>;
  health(): Promise<StoreHealth>;
  /** Releases connections; the store is not used afterwards. */
  close(): Promise<void>;
}

/** A backend could not be reached or refused a request. */
export class StoreUnavailableError extends Error {
  constructor(location: string, detail: string, options?: ErrorOptions) {
    super(`Cannot reach cache store "${location}": ${detail}`, options);
    this.name = "StoreUnavailableError";
  }
}
