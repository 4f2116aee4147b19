/** URLs in messages and status lines: a password never leaves the configuration. @module */

/**
 * `url` with its password replaced by `mask` (removed when `mask` is empty); in text that is not
 * a URL, whatever sits between the first `:` after `//` and the last `@` before the path is
 * masked the same way (a malformed URL is quoted in errors, and may still hold a password).
 *
 * @example
 * ```ts
 * import { redactUrl } from "./redact_url.ts";
 * console.log(redactUrl("redis://ci:secret@cache:6380/2")); // "redis://ci@cache:6380/2"
 * console.log(redactUrl("redis://ci:secret@cache:6380/2", "***")); // "redis://ci:***@cache:6380/2"
 * console.log(redactUrl("http://ci:secret@bad host/", "***")); // "http://ci:***@bad host/"
 * ```
 */
export function redactUrl(url: string, mask = ""): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = mask;
    return parsed.href.replace(/\/$/, "");
  } catch {
    return url.replace(
      /^([^:/?#]*:\/\/[^:/?#@]*):[^/?#]*@/,
      (_, start: string) => mask ? `${start}:${mask}@` : `${start}@`,
    );
  }
}
