// Unit tests of src/warm/project_graphs.ts: which cargo commands are remembered and with what,
// the copied tree a re-warm builds from, and the bound on remembered projects.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  parseCargoCommand,
  recordedProjects,
  recordProjectOfBuild,
} from "../src/warm/project_graphs.ts";
import { tempDir } from "./_fixtures.ts";

Deno.test("a cargo command line gives its selection, features and profile", () => {
  assert.deepEqual(parseCargoCommand(["build"]), { args: [], profile: "dev" });
  assert.deepEqual(
    parseCargoCommand([
      "--config",
      "x.toml",
      "build",
      "--locked",
      "-r",
      "-p",
      "server",
      "--features=tls,json",
      "--no-default-features",
      "--target",
      "x86_64-unknown-linux-gnu",
      "-j",
      "4",
    ]),
    {
      args: [
        "-p",
        "server",
        "--features",
        "tls,json",
        "--no-default-features",
        "--target",
        "x86_64-unknown-linux-gnu",
      ],
      profile: "release",
    },
  );
  assert.deepEqual(
    parseCargoCommand(["test", "--profile=ci", "--workspace", "--", "--nocapture"]),
    {
      args: ["--workspace"],
      profile: "ci",
    },
  );
  assert.deepEqual(parseCargoCommand(["build", "--manifest-path", "app/Cargo.toml"]), {
    args: [],
    profile: "dev",
    manifestPath: "app/Cargo.toml",
  });
  // Metadata-only and non-build commands are not remembered.
  assert.equal(parseCargoCommand(["check"]), undefined);
  assert.equal(parseCargoCommand(["metadata", "--format-version", "1"]), undefined);
});

/** A two-member workspace at `root` with a lockfile. */
async function writeWorkspace(root: string): Promise<void> {
  await Deno.mkdir(join(root, "app/src/bin"), { recursive: true });
  await Deno.mkdir(join(root, "lib/src"), { recursive: true });
  await Deno.mkdir(join(root, "target/debug"), { recursive: true });
  await Deno.writeTextFile(join(root, "Cargo.toml"), '[workspace]\nmembers = ["app", "lib"]\n');
  await Deno.writeTextFile(join(root, "Cargo.lock"), "version = 4\n");
  await Deno.writeTextFile(join(root, "app/Cargo.toml"), '[package]\nname = "app"\n');
  await Deno.writeTextFile(join(root, "app/src/main.rs"), "fn main() { secret(); }\n");
  await Deno.writeTextFile(join(root, "app/src/bin/tool.rs"), "fn main() {}\n");
  await Deno.writeTextFile(
    join(root, "lib/Cargo.toml"),
    '[package]\nname = "lib"\n[lib]\npath = "src/core.rs"\n',
  );
  await Deno.writeTextFile(join(root, "lib/src/core.rs"), "pub fn secret() {}\n");
  await Deno.writeTextFile(
    join(root, "target/debug/Cargo.toml"),
    "not a manifest of the project\n",
  );
}

Deno.test("a build's project is copied as manifests, lockfile and empty targets, once per build", async () => {
  await using dir = await tempDir();
  const root = join(dir.path, "work");
  await writeWorkspace(root);
  const cacheDir = join(dir.path, "cache");
  const build = {
    buildId: "101",
    cargoCwd: join(root, "app"),
    env: {},
    cargoArgs: ["build", "-r"],
  };
  recordProjectOfBuild(cacheDir, build, "1.95.0", 20);

  const [project] = recordedProjects(cacheDir);
  assert.equal(project?.root, root);
  assert.equal(project?.profile, "release");
  assert.equal(project?.rustc, "1.95.0");
  const tree = project!.tree;
  assert.equal(await Deno.readTextFile(join(tree, "Cargo.lock")), "version = 4\n");
  assert.match(await Deno.readTextFile(join(tree, "lib/Cargo.toml")), /src\/core\.rs/);
  // Targets are there for cargo to find, without the project's code.
  for (const target of ["app/src/main.rs", "app/src/bin/tool.rs", "lib/src/core.rs"]) {
    assert.equal(await Deno.readTextFile(join(tree, target)), "", target);
  }
  await assert.rejects(Deno.stat(join(tree, "target")));

  // The same build again changes nothing; the next build updates the record.
  recordProjectOfBuild(cacheDir, { ...build, cargoArgs: ["build"] }, "1.95.0", 20);
  assert.equal(recordedProjects(cacheDir)[0]?.profile, "release");
  recordProjectOfBuild(cacheDir, { ...build, buildId: "102", cargoArgs: ["build"] }, "1.96.0", 20);
  assert.equal(recordedProjects(cacheDir)[0]?.profile, "dev");
  assert.equal(recordedProjects(cacheDir)[0]?.rustc, "1.96.0");
  assert.equal(recordedProjects(cacheDir).length, 1);
});

/** Sets the time the record of the project at `root` says it was last built. */
async function setLastBuilt(cacheDir: string, root: string, lastUsed: string): Promise<void> {
  const project = recordedProjects(cacheDir).find((project) => project.root === root);
  assert.ok(project, `no record of ${root}`);
  const file = join(project.tree, "..", "project.json");
  const record = JSON.parse(await Deno.readTextFile(file));
  await Deno.writeTextFile(file, JSON.stringify({ ...record, lastUsed }) + "\n");
}

Deno.test("only the most recently built projects are kept", async () => {
  await using dir = await tempDir();
  const cacheDir = join(dir.path, "cache");
  // Builds a second apart, long ago; the third is built now.
  const builtAt = ["2001-01-01T00:00:01.000Z", "2001-01-01T00:00:02.000Z", undefined];
  for (const [i, name] of ["one", "two", "three"].entries()) {
    const root = join(dir.path, name);
    await writeWorkspace(root);
    recordProjectOfBuild(
      cacheDir,
      { buildId: name, cargoCwd: root, env: {}, cargoArgs: ["build"] },
      "1.95.0",
      2,
    );
    if (builtAt[i]) await setLastBuilt(cacheDir, root, builtAt[i]);
  }
  assert.deepEqual(
    recordedProjects(cacheDir).map((project) => project.root),
    [join(dir.path, "three"), join(dir.path, "two")],
  );
});

Deno.test("the warm-up's own builds and a limit of 0 remember nothing", async () => {
  await using dir = await tempDir();
  const root = join(dir.path, "work");
  await writeWorkspace(root);
  const cacheDir = join(dir.path, "cache");
  const build = { buildId: "1", cargoCwd: root, cargoArgs: ["build"] };
  recordProjectOfBuild(cacheDir, { ...build, env: { CARGO_WARMUP_WARMING: "1" } }, "1.95.0", 20);
  recordProjectOfBuild(cacheDir, { ...build, env: {} }, "1.95.0", 0);
  assert.deepEqual(recordedProjects(cacheDir), []);
});
