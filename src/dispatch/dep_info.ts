/**
 * Reads rustc's Makefile-style dep-info (`.d`) files: the source files a crate was compiled from
 * and the environment variables it read. A hit is only served when both still match.
 * @module
 */

/** What a dep-info file says a compilation read. */
export interface DepInfo {
  /** Every source file, as written in the file (absolute for registry crates). */
  sources: string[];
  /** Environment variables read through `env!`/`option_env!`; value undefined when it was unset. */
  envDeps: Array<{ name: string; value?: string }>;
}

/**
 * Parses the text of a dep-info file.
 *
 * @example
 * ```ts
 * import { parseDepInfo } from "./dep_info.ts";
 * const info = parseDepInfo("/t/a.d: /src/lib.rs /src/my\\ mod.rs\n\n# env-dep:CARGO_PKG_NAME=a\n");
 * console.log(info.sources); // ["/src/lib.rs", "/src/my mod.rs"]
 * ```
 */
export function parseDepInfo(text: string): DepInfo {
  const lines = text.split("\n");
  const sources: string[] = [];
  const envDeps: DepInfo["envDeps"] = [];
  const firstRule = lines.find((line) => line.trim() !== "" && !line.startsWith("#"));
  if (firstRule !== undefined) {
    const separator = firstRule.search(/:(\s|$)/);
    if (separator !== -1) sources.push(...splitEscaped(firstRule.slice(separator + 1)));
  }
  for (const line of lines) {
    if (!line.startsWith("# env-dep:")) continue;
    const entry = line.slice("# env-dep:".length);
    const eq = entry.indexOf("=");
    envDeps.push(
      eq === -1 ? { name: entry } : { name: entry.slice(0, eq), value: entry.slice(eq + 1) },
    );
  }
  return { sources, envDeps };
}

/** Splits a dependency list on spaces that are not escaped as `\ `. */
function splitEscaped(list: string): string[] {
  const paths: string[] = [];
  let current = "";
  for (let i = 0; i < list.length; i++) {
    const char = list[i]!;
    if (char === "\\" && list[i + 1] === " ") {
      current += " ";
      i++;
    } else if (char === " " || char === "\t") {
      if (current) paths.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  if (current) paths.push(current);
  return paths;
}
