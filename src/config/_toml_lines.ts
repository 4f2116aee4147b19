/**
 * Finds the line a TOML key is written on, for error messages and `cargo-warmup config`: the
 * parser gives values, not positions. A line scan that understands table headers and dotted
 * keys, which is all a `[warmup]` table needs.
 * @module
 */

/** Splits a dotted TOML key (`a."b.c".d`) into its parts. */
function splitDotted(text: string): string[] {
  const parts: string[] = [];
  const pattern = /\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(\.|$)/y;
  let match: RegExpExecArray | null;
  while (pattern.lastIndex < text.length && (match = pattern.exec(text))) {
    parts.push(match[1] ?? match[2] ?? match[3] ?? "");
    if (match[4] === "") break;
  }
  return parts;
}

/** Where each key path is first written: `"warmup.redis.url"` → 1-based line. */
export function keyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let table: string[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const header = /^\[\[?([^\]]*)\]\]?/.exec(line);
    if (header) {
      table = splitDotted(header[1]!);
      remember(lines, table, index + 1);
      return;
    }
    const assignment = /^((?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_.\s-])+?)\s*=/.exec(line);
    if (assignment) remember(lines, [...table, ...splitDotted(assignment[1]!)], index + 1);
  });
  return lines;
}

/** Records the path and every shorter prefix of it not yet seen (an implied table). */
function remember(lines: Map<string, number>, path: string[], line: number): void {
  for (let length = 1; length <= path.length; length++) {
    const key = path.slice(0, length).join(".");
    if (!lines.has(key)) lines.set(key, line);
  }
}
