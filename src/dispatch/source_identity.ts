/**
 * Where a crate's sources come from, and whether that place is immutable: a registry, a git
 * checkout, or a vendored/directory source with a package checksum. Workspace and path crates
 * have no such identity and are never cached.
 * @module
 */

import { join, relative } from "node:path";
import { sha256Hex } from "../digest.ts";

/**
 * A path-free identity for the crate at `manifestDir`, or undefined when it is not from an
 * immutable source.
 *
 * @example
 * ```ts
 * import { sourceIdentity } from "./source_identity.ts";
 * const id = sourceIdentity("/h/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/itoa-1.0.1", "/h/.cargo");
 * console.log(id); // "registry:index.crates.io-1949cf8c6b5b557f"
 * ```
 */
export function sourceIdentity(
  manifestDir: string,
  cargoHome: string,
): string | undefined {
  const inHome = relative(cargoHome, manifestDir);
  const registry = /^registry\/src\/([^/]+)\/[^/]+$/.exec(inHome) ??
    /\/registry\/src\/([^/]+)\/[^/]+$/.exec(manifestDir);
  if (registry) return `registry:${registry[1]}`;
  const git = /^git\/checkouts\/([^/]+\/[^/]+)(\/.*)?$/.exec(inHome);
  if (git) return `git:${git[1]}${git[2] ?? ""}`;
  // `cargo vendor` and directory registries keep a checksum file beside the sources: the
  // .crate file's checksum when known, else (some distributions) only per-file checksums or
  // none. Either way the directory is a published package, and the sources a bundle was built
  // from are verified on every hit (see whyStale in serve_hit.ts).
  let checksumText: string;
  try {
    checksumText = Deno.readTextFileSync(join(manifestDir, ".cargo-checksum.json"));
  } catch {
    return undefined; // no checksum file: a path or workspace crate
  }
  try {
    const checksums = JSON.parse(checksumText);
    if (typeof checksums.package === "string" && /^[0-9a-f]{64}$/.test(checksums.package)) {
      return `checksum:${checksums.package}`;
    }
  } catch {
    // unreadable JSON still marks a vendored package; its text identifies it
  }
  return `vendored:${sha256Hex(checksumText)}`;
}
