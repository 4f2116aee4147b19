// Unit tests of src/dispatch/workspace_unit.ts: which workspace compiles are cached, their
// path-free source identity, and the build-script results their key holds.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  buildScriptInputs,
  workspacePolicyOf,
  workspaceSourceOf,
} from "../src/dispatch/workspace_unit.ts";
import { pathRootsOf } from "../src/cache/path_roots.ts";
import { parseRustcArgs, type RustcArgs } from "../src/dispatch/rustc_args.ts";
import { tempDir } from "./_fixtures.ts";

function argsOf(crateType: string): RustcArgs {
  const parsed = parseRustcArgs([
    "--crate-name",
    "model",
    "--edition=2021",
    "crates/model/src/lib.rs",
    "--crate-type",
    crateType,
    "--emit=dep-info,metadata,link",
    "--out-dir",
    "/w/target/debug/deps",
  ]);
  assert.ok(parsed.cacheable);
  return parsed.args;
}

Deno.test("only library compiles of the workspace are cached", () => {
  assert.deepEqual(workspacePolicyOf(argsOf("lib"), true, true), { localOnly: false });
  assert.deepEqual(workspacePolicyOf(argsOf("proc-macro"), true, true), { localOnly: false });
  assert.deepEqual(workspacePolicyOf(argsOf("bin"), true, true), { reason: "workspace binary" });
  assert.deepEqual(workspacePolicyOf(argsOf("lib"), false, true), { reason: "workspace member" });
  assert.deepEqual(workspacePolicyOf(argsOf("lib"), false, false), { reason: "path crate" });
  // By default only incremental compiles (a developer's), and only on local disk.
  assert.deepEqual(workspacePolicyOf(argsOf("lib"), "incremental", true), {
    reason: "non-incremental workspace member",
  });
});

Deno.test("a workspace crate is named by its place in the workspace, not its path", () => {
  assert.equal(workspaceSourceOf("/ci/job-1/crates/model", "/ci/job-1"), "workspace:crates/model");
  assert.equal(
    workspaceSourceOf("/home/me/model/crates/model", "/home/me/model"),
    "workspace:crates/model",
  );
  assert.equal(workspaceSourceOf("/ci/job-1", "/ci/job-1"), "workspace:.");
  assert.equal(workspaceSourceOf("/elsewhere/dep", "/ci/job-1"), "path:outside-workspace");
});

/** A package with a build script's results, as cargo leaves them, in a fresh directory. */
async function packageWithBuildScript(root: string, directives: string) {
  const pkg = join(root, "crates/model");
  const outDir = join(root, "target/debug/build/model-1234/out");
  await Deno.mkdir(join(pkg, "data"), { recursive: true });
  await Deno.mkdir(join(pkg, "target"), { recursive: true });
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.writeTextFile(join(pkg, "data/units.txt"), "metre\n");
  await Deno.writeTextFile(join(pkg, "README.md"), "model\n");
  await Deno.writeTextFile(join(pkg, "target/scratch"), "build output\n");
  await Deno.writeTextFile(join(outDir, "units.rs"), 'pub const UNITS: &[&str] = &["metre"];\n');
  await Deno.writeTextFile(join(outDir, "../output"), directives);
  const roots = pathRootsOf({
    outDir: join(root, "target/debug/deps"),
    outputStem: "model-abc",
    extraFilename: "-abc",
    manifestDir: pkg,
    outDirEnv: outDir,
    workspaceRoot: root,
  });
  const memo = { lookup: () => undefined, remember: () => {} };
  return { pkg, outDir, inputs: () => buildScriptInputs(outDir, pkg, roots, memo) };
}

Deno.test("the key holds a build script's directives, OUT_DIR and watched files", async () => {
  await using dir = await tempDir();
  const { pkg, outDir, inputs } = await packageWithBuildScript(
    dir.path,
    `cargo:rerun-if-changed=data/units.txt\ncargo:rustc-link-search=native=${dir.path}/target/debug/build/model-1234/out\n`,
  );
  const before = inputs();
  assert.ok(before.some((input) => input.includes("@@WARMUP_OUT_DIR_ENV@@")), "templated");
  assert.ok(!before.some((input) => input.includes(dir.path)), "no absolute path");

  // Cargo watches only data/units.txt: another file of the package changes nothing.
  await Deno.writeTextFile(join(pkg, "README.md"), "model, edited\n");
  assert.deepEqual(inputs(), before);

  await Deno.writeTextFile(join(pkg, "data/units.txt"), "kelvin\n");
  const watchedChanged = inputs();
  assert.notDeepEqual(watchedChanged, before);

  await Deno.writeTextFile(join(outDir, "units.rs"), 'pub const UNITS: &[&str] = &["kelvin"];\n');
  assert.notDeepEqual(inputs(), watchedChanged);

  await Deno.writeTextFile(join(outDir, "../output"), "cargo:rustc-cfg=other\n");
  assert.notDeepEqual(inputs(), watchedChanged);
});

Deno.test("without rerun-if directives the whole package is keyed, as cargo watches it", async () => {
  await using dir = await tempDir();
  const { pkg, inputs } = await packageWithBuildScript(dir.path, "cargo:rustc-cfg=fast\n");
  const before = inputs();
  // Build output and hidden files are not the package's.
  await Deno.writeTextFile(join(pkg, "target/scratch"), "other build output\n");
  await Deno.mkdir(join(pkg, ".git"));
  await Deno.writeTextFile(join(pkg, ".git/HEAD"), "ref: refs/heads/main\n");
  assert.deepEqual(inputs(), before);
  await Deno.writeTextFile(join(pkg, "README.md"), "model, edited\n");
  assert.notDeepEqual(inputs(), before);
});

Deno.test("a crate without a build script has no build-script inputs", () => {
  const memo = { lookup: () => undefined, remember: () => {} };
  assert.deepEqual(buildScriptInputs(undefined, "/w/crates/base", [], memo), []);
});
