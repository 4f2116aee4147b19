// The chain fixture (tests/fixtures/chain: four libraries in a line and a binary) as the
// workspace tests read a build of it from its dispatch log.

import type { DispatchLogEntry } from "./_dispatch_log.ts";

/** The fixture's libraries, from the bottom of the chain up. */
export const LIBRARIES: readonly string[] = ["base", "model", "logic", "report"];

/**
 * The outcome of each library's own compile (not its build script's) in a build's dispatch log:
 * `base:hit model:miss …`.
 */
export function libraryOutcomes(entries: DispatchLogEntry[]): string {
  return LIBRARIES.map((library) => {
    const entry = entries.find((found) => found.crate === library && found.kind !== "build-script");
    return `${library}:${entry?.outcome ?? "not called"}`;
  }).join(" ");
}
