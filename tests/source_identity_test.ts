// Where a crate comes from, without its path: registry, git checkout, vendored or directory
// source; a path or workspace crate has no identity and is never cached.

import assert from "node:assert/strict";
import { join } from "node:path";
import { sourceIdentity } from "../src/dispatch/source_identity.ts";
import { tempDir } from "./_fixtures.ts";

const INDEX = "index.crates.io-1949cf8c6b5b557f";

/** Writes `checksums` as `dir`/.cargo-checksum.json (raw when a string) and returns `dir`. */
async function withChecksums(dir: string, checksums: unknown): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const text = typeof checksums === "string" ? checksums : JSON.stringify(checksums);
  await Deno.writeTextFile(join(dir, ".cargo-checksum.json"), text);
  return dir;
}

// Registry sources are immutable per index and version: the index names the source, whichever
// user's CARGO_HOME it was unpacked into.
Deno.test("a crates.io crate is known by its registry, wherever CARGO_HOME is", async () => {
  await using dir = await tempDir();
  for (const home of [join(dir.path, "home/a/.cargo"), join(dir.path, "ci/cache/cargo")]) {
    // The directories need not exist: registry crates are recognised by their place alone.
    assert.equal(
      sourceIdentity(join(home, `registry/src/${INDEX}/itoa-1.0.1`), home),
      `registry:${INDEX}`,
      home,
    );
  }
  // A registry tree under another CARGO_HOME than the build's (a shared, read-only one).
  assert.equal(
    sourceIdentity(
      join(dir.path, `shared/registry/src/${INDEX}/itoa-1.0.1`),
      join(dir.path, "home"),
    ),
    `registry:${INDEX}`,
  );
});

// A git dependency is pinned by its checkout directory: repository hash, then revision.
Deno.test("a git checkout is known by its repository and revision", () => {
  for (const home of ["/h/.cargo", "/ci/cargo-home"]) {
    assert.equal(
      sourceIdentity(`${home}/git/checkouts/serde-1a2b3c/4d5e6f7/serde`, home),
      "git:serde-1a2b3c/4d5e6f7/serde",
      home,
    );
    assert.equal(
      sourceIdentity(`${home}/git/checkouts/itoa-9f8e7d/0a1b2c3`, home),
      "git:itoa-9f8e7d/0a1b2c3",
      home,
    );
  }
});

// `cargo vendor` keeps the .crate file's checksum beside the sources: that is the identity.
Deno.test("a vendored crate with a package checksum is known by it", async () => {
  await using dir = await tempDir();
  const sum = "a".repeat(64);
  const vendored = await withChecksums(join(dir.path, "vendor/itoa"), { files: {}, package: sum });
  assert.equal(sourceIdentity(vendored, join(dir.path, "home")), `checksum:${sum}`);
});

// Debian's directory registry has per-file checksums only ("package": null): the checksum file's
// digest identifies the package, the same in any directory.
Deno.test("a directory-source crate without a package checksum is known by its file checksums", async () => {
  await using dir = await tempDir();
  const checksums = { files: { "src/lib.rs": "b".repeat(64) }, package: null };
  const debian = await withChecksums(join(dir.path, "debian/itoa-1.0.1"), checksums);
  const identity = sourceIdentity(debian, join(dir.path, "home"));
  assert.match(identity ?? "", /^vendored:[0-9a-f]{64}$/);
  const copy = await withChecksums(join(dir.path, "elsewhere/itoa-1.0.1"), checksums);
  assert.equal(sourceIdentity(copy, join(dir.path, "other-home")), identity);
  // Other file checksums (another version of the sources): another identity.
  const edited = await withChecksums(join(dir.path, "edited/itoa-1.0.1"), {
    files: { "src/lib.rs": "c".repeat(64) },
    package: null,
  });
  assert.notEqual(sourceIdentity(edited, join(dir.path, "home")), identity);
  // A checksum file that is not JSON still marks a published package, known by its text.
  const garbled = await withChecksums(join(dir.path, "garbled/itoa"), "{not json");
  assert.match(sourceIdentity(garbled, join(dir.path, "home")) ?? "", /^vendored:[0-9a-f]{64}$/);
});

// Path and workspace crates change under the user's hands: never cached.
Deno.test("a path or workspace crate has no identity", async () => {
  await using dir = await tempDir();
  const shared = join(dir.path, "my-project/shared");
  await Deno.mkdir(join(shared, "src"), { recursive: true });
  await Deno.writeTextFile(join(shared, "Cargo.toml"), '[package]\nname = "shared"\n');
  assert.equal(sourceIdentity(shared, join(dir.path, "home")), undefined);
  // Inside CARGO_HOME but not in a registry or git tree (an installed tool's sources).
  const home = join(dir.path, "home");
  assert.equal(sourceIdentity(join(home, "bin/tool-src"), home), undefined);
});
