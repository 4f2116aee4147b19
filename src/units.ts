/**
 * Sizes, durations and times as people read them: `1.4 GiB`, `3m 12s`, `2026-11-29 04:07:15 UTC`. (Sizes people write, like
 * `2G`, are parsed by src/config/size.ts.)
 * @module
 */

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

/** Formats milliseconds since the epoch as `2026-11-29 04:07:15 UTC`. */
export function formatUtcTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}
