// Where a crate comes from, without its path: registry, git checkout, vendored or directory
// source; a path or workspace crate has no identity and is never cached.

import assert from "node:assert/strict";
import { join } from "node:path";
import { sourceIdentity } from "../src/dispatch/source_identity.ts";
import { tempDir } from "./_fixtures.ts";

Deno.test("a crates.io crate is known by its registry, wherever CARGO_HOME is", () => {
  const index = "index.crates.io-1949cf8c6b5b557f";
  assert.equal(
    sourceIdentity(`/home/a/.cargo/registry/src/${index}/itoa-1.0.1`, "/home/a/.cargo"),
    `registry:${index}`,
  );
  assert.equal(
    sourceIdentity(`/ci/cache/cargo/registry/src/${index}/itoa-1.0.1`, "/ci/cache/cargo"),
    `registry:${index}`,
  );
});

Deno.test("a git checkout is known by its repository and revision", () => {
  assert.equal(
    sourceIdentity("/h/.cargo/git/checkouts/serde-1a2b3c/4d5e6f7/serde", "/h/.cargo"),
    "git:serde-1a2b3c/4d5e6f7/serde",
  );
});

Deno.test("vendored and directory sources are known by their checksums", async () => {
  await using dir = await tempDir();
  const withPackage = join(dir.path, "vendor/itoa");
  await Deno.mkdir(withPackage, { recursive: true });
  const sum = "a".repeat(64);
  await Deno.writeTextFile(
    join(withPackage, ".cargo-checksum.json"),
    JSON.stringify({ files: {}, package: sum }),
  );
  assert.equal(sourceIdentity(withPackage, join(dir.path, "home")), `checksum:${sum}`);

  // Debian's directory registry has per-file checksums only: the file's digest identifies it.
  const filesOnly = join(dir.path, "debian/itoa-1.0.1");
  await Deno.mkdir(filesOnly, { recursive: true });
  await Deno.writeTextFile(
    join(filesOnly, ".cargo-checksum.json"),
    JSON.stringify({ files: { "src/lib.rs": "b".repeat(64) }, package: null }),
  );
  const identity = sourceIdentity(filesOnly, join(dir.path, "home"));
  assert.match(identity ?? "", /^vendored:[0-9a-f]{64}$/);
  // The same checksums in another directory: the same identity.
  const copy = join(dir.path, "elsewhere/itoa-1.0.1");
  await Deno.mkdir(copy, { recursive: true });
  await Deno.copyFile(join(filesOnly, ".cargo-checksum.json"), join(copy, ".cargo-checksum.json"));
  assert.equal(sourceIdentity(copy, join(dir.path, "other-home")), identity);
});

Deno.test("a path or workspace crate has no identity", async () => {
  await using dir = await tempDir();
  assert.equal(
    sourceIdentity(join(dir.path, "my-project/shared"), join(dir.path, "home")),
    undefined,
  );
});
