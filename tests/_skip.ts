// A test that cannot run on this machine says so: `ignore: skipUnless(canMount, why)` prints why
// it is skipped (deno test itself only marks it "ignored"), so a skip never passes for a pass.

/**
 * Whether to ignore the test `name`: when `possible` is false, prints a line naming the test and
 * `why` (what it needs that this machine refuses) and returns true.
 *
 * @example
 * ```ts ignore
 * Deno.test({ name, ignore: skipUnless(canMount, name, "mount is refused (needs root)"), fn });
 * ```
 */
export function skipUnless(possible: boolean, name: string, why: string): boolean {
  if (!possible) console.warn(`skipped "${name}": ${why}`);
  return !possible;
}
