/**
 * Sizes and durations as people write and read them: `2G` in, `1.4 GiB` and `3m 12s` out.
 * @module
 */

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  B: 1,
  K: 1024,
  KB: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1024 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TB: 1024 ** 4,
  TIB: 1024 ** 4,
};

/**
 * Parses a size such as `500M`, `2G` or `1048576` into bytes (binary units).
 *
 * @example
 * ```ts
 * import { parseSize } from "./units.ts";
 * console.log(parseSize("2G")); // 2147483648
 * ```
 */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const factor = match ? SIZE_UNITS[match[2]!.toUpperCase()] : undefined;
  if (!match || factor === undefined) {
    throw new RangeError(
      `Invalid size "${text}": expected a number with an optional unit like 500M or 2G`,
    );
  }
  return Math.floor(Number(match[1]) * factor);
}

/** Formats bytes with a binary unit, e.g. `1.4 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Formats milliseconds as `850 ms`, `12.3 s` or `3m 12s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes}m ${Math.round((ms % 60_000) / 1000)}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}
