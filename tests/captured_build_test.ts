// Which capture a build is placed from: the same cargo, command and profile dirs, the same flags
// first, else the newest; a torn capture file is skipped. No cargo needed.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type CapturedBuild,
  capturesDir,
  cargoCommandOf,
  predictedBuild,
  writeCapture,
} from "../src/place/captured_build.ts";
import { profileDirOf } from "../src/place/build_dirs.ts";
import { tempDir } from "./_fixtures.ts";

const capture = (overrides: Partial<CapturedBuild>): CapturedBuild => ({
  format: 1,
  build: "1@1",
  project: "/p",
  lockfile: "lock",
  profiles: ["debug"],
  command: "build",
  flags: [],
  cargo: "cargo 1.95.0",
  rustc: "1.95.0",
  capturedAt: 1,
  units: [],
  ...overrides,
});

Deno.test("predictedBuild: same cargo, command and profiles; same flags first, then newest", async () => {
  await using dir = await tempDir("cargo-warmup-captures-");
  const wanted = {
    lockfile: "lock",
    command: "build",
    profiles: ["debug"],
    cargo: "cargo 1.95.0",
    rustc: "1.95.0",
  };
  assert.equal(predictedBuild(dir.path, wanted), undefined);
  writeCapture(dir.path, capture({ build: "plain", capturedAt: 1 }));
  writeCapture(dir.path, capture({ build: "verbose", flags: ["-v"], capturedAt: 2 }));
  writeCapture(dir.path, capture({ build: "release", profiles: ["release"], capturedAt: 3 }));
  writeCapture(dir.path, capture({ build: "check", command: "check", capturedAt: 4 }));
  writeCapture(dir.path, capture({ build: "old cargo", cargo: "cargo 1.94.0", capturedAt: 5 }));
  writeCapture(dir.path, capture({ build: "old rustc", rustc: "1.94.0", capturedAt: 6 }));
  Deno.writeTextFileSync(join(capturesDir(dir.path, "lock"), "torn.json"), "{");
  assert.equal(predictedBuild(dir.path, { ...wanted, flags: [] })?.build, "plain");
  assert.equal(predictedBuild(dir.path, { ...wanted, flags: ["-v"] })?.build, "verbose");
  assert.equal(predictedBuild(dir.path, { ...wanted, flags: ["--locked"] })?.build, "verbose");
  assert.equal(predictedBuild(dir.path, { ...wanted, profiles: ["release"] })?.build, "release");
  assert.equal(predictedBuild(dir.path, { ...wanted, command: "check" })?.build, "check");
  assert.equal(predictedBuild(dir.path, { ...wanted, lockfile: "other" }), undefined);
});

Deno.test("cargoCommandOf and profileDirOf read cargo's arguments as cargo does", () => {
  assert.deepEqual(cargoCommandOf(["build", "--release"]), {
    command: "build",
    flags: ["--release"],
  });
  assert.deepEqual(cargoCommandOf(["-v", "t", "-p", "x"]), {
    command: "build",
    flags: ["-v", "-p", "x"],
  });
  assert.deepEqual(cargoCommandOf(["clippy"]), { command: "check", flags: [] });
  assert.equal(cargoCommandOf(["doc"]), undefined);
  assert.equal(cargoCommandOf(["+nightly", "build"]), undefined);
  assert.equal(profileDirOf([]), "debug");
  assert.equal(profileDirOf(["--release"]), "release");
  assert.equal(profileDirOf(["--profile=bench"]), "release");
  assert.equal(profileDirOf(["--profile", "ci"]), "ci");
});
