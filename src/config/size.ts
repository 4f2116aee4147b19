/**
 * Byte sizes as people write them in configuration and on the command line: `10G`, `500M`.
 * @module
 */

const UNITS: Record<string, number> = {
  "": 1,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/**
 * Parses a size: a number of bytes with an optional binary unit `K`, `M`, `G` or `T` (any case,
 * optionally followed by `B` or `iB`), like sccache's `SCCACHE_CACHE_SIZE`. Fractions are allowed
 * with a unit (`1.5G`).
 *
 * @throws {RangeError} When `text` is not such a size.
 *
 * @example
 * ```ts
 * import { parseSize } from "./size.ts";
 * console.log(parseSize("10G")); // 10737418240
 * console.log(parseSize("500M")); // 524288000
 * console.log(parseSize("4096")); // 4096
 * ```
 */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  const unit = match?.[2]?.toUpperCase() ?? "";
  if (!match || (match[3] && unit === "" && match[3].toLowerCase() === "ib")) {
    throw new RangeError(
      `Invalid size "${text}": expected a number of bytes with an optional unit K, M, G or T, such as "10G"`,
    );
  }
  const bytes = Math.round(Number(match[1]) * UNITS[unit]!);
  if (unit === "" && !Number.isInteger(Number(match[1]))) {
    throw new RangeError(`Invalid size "${text}": a size in bytes must be a whole number`);
  }
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`Invalid size "${text}": too large`);
  return bytes;
}

/**
 * Formats a byte count the way {@linkcode parseSize} reads it back, to one decimal.
 *
 * @example
 * ```ts
 * import { formatSize } from "./size.ts";
 * console.log(formatSize(10737418240)); // "10G"
 * console.log(formatSize(1536)); // "1.5K"
 * ```
 */
export function formatSize(bytes: number): string {
  for (const unit of ["T", "G", "M", "K"]) {
    const scale = UNITS[unit]!;
    if (bytes >= scale) return `${Number((bytes / scale).toFixed(1))}${unit}`;
  }
  return String(bytes);
}
