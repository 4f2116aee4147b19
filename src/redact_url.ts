/** URLs in messages and status lines: a password never leaves the configuration. @module */

/**
 * `url` with its password replaced by `mask` (removed when `mask` is empty); text that is not a
 * URL comes back as it is.
 *
 * @example
 * ```ts
 * import { redactUrl } from "./redact_url.ts";
 * console.log(redactUrl("redis://ci:secret@cache:6380/2")); // "redis://ci@cache:6380/2"
 * console.log(redactUrl("redis://ci:secret@cache:6380/2", "***")); // "redis://ci:***@cache:6380/2"
 * ```
 */
export function redactUrl(url: string, mask = ""): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = mask;
    return parsed.href.replace(/\/$/, "");
  } catch {
    return url;
  }
}
