/**
 * How a call asks for its diagnostics to be shown (`--error-format`, the `diagnostic-*` values of
 * `--json`, `--diagnostic-width`, `--color`) is not in the key: `cargo check` and
 * `cargo check --message-format=short` build the same artefacts. An entry records the rendering
 * its stored diagnostics were written in, and is served to a call that asks for another only when
 * it stored no diagnostics at all (a registry crate under `--cap-lints allow` usually has none):
 * stored diagnostics are never replayed in the wrong form.
 * @module
 */

import type { RustcArgs } from "./rustc_args.ts";

/** A rustc artifact notification: the only stderr line that does not depend on the rendering. */
const ARTIFACT_LINE = /^\{"\$message_type":"artifact",/;

/**
 * The rendering an entry of `args` records (in its meta's `rendering`): the call's rendering
 * flags, sorted; "" for rustc's defaults.
 *
 * @example
 * ```ts
 * import { renderingOf } from "./diagnostic_rendering.ts";
 * import { parseRustcArgs } from "./rustc_args.ts";
 * const parsed = parseRustcArgs(["--crate-name", "a", "src/lib.rs", "--out-dir", "/o",
 *   "--error-format=json", "--json=diagnostic-short,artifacts"]);
 * if (parsed.cacheable) console.log(renderingOf(parsed.args));
 * // "--error-format=json --json=diagnostic-short"
 * ```
 */
export function renderingOf(args: RustcArgs): string {
  return args.rendering.join(" ");
}

/**
 * Why a stored entry may not be replayed to a call of `args`: its diagnostics were rendered
 * otherwise (or it does not say how, being older than the record); undefined when it may be,
 * because the renderings agree or it stored no diagnostics (its stderr holds only artifact
 * notifications).
 *
 * @example
 * ```ts
 * import { whyRenderedDifferently } from "./diagnostic_rendering.ts";
 * import { parseRustcArgs } from "./rustc_args.ts";
 * const parsed = parseRustcArgs(["--crate-name", "a", "src/lib.rs", "--out-dir", "/o",
 *   "--error-format=json", "--json=diagnostic-short"]);
 * const stored = {
 *   meta: { rendering: "--error-format=json" },
 *   stderr: '{"$message_type":"diagnostic","rendered":"warning: unused variable"}\n',
 * };
 * if (parsed.cacheable) console.log(whyRenderedDifferently(stored, parsed.args));
 * // "diagnostics rendered otherwise (--error-format=json)"
 * ```
 */
export function whyRenderedDifferently(
  stored: { meta: { rendering?: string }; stderr: string },
  args: RustcArgs,
): string | undefined {
  const wanted = renderingOf(args);
  if (stored.meta.rendering === wanted || !hasDiagnostics(stored.stderr)) return undefined;
  return `diagnostics rendered otherwise (${stored.meta.rendering ?? "not recorded"})`;
}

/**
 * Whether rustc's stderr holds anything whose form depends on the rendering: every line but
 * artifact notifications (diagnostics, future-incompatibility reports, plain text).
 *
 * @example
 * ```ts
 * import { hasDiagnostics } from "./diagnostic_rendering.ts";
 * const notice = '{"$message_type":"artifact","artifact":"/t/liba.rmeta","emit":"metadata"}';
 * console.log(hasDiagnostics(`${notice}\n`)); // false
 * ```
 */
export function hasDiagnostics(stderr: string): boolean {
  return stderr.split("\n").some((line) => line.trim() !== "" && !ARTIFACT_LINE.test(line));
}
