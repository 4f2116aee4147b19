// Which files an invocation writes, by role: the same prediction packs a miss and restores a hit.

import assert from "node:assert/strict";
import { depInfoPath, expectedOutputs, unitKindOf } from "../src/dispatch/outputs.ts";
import { parseRustcArgs, type RustcArgs } from "../src/dispatch/rustc_args.ts";

const LINUX = "x86_64-unknown-linux-gnu";

function argsOf(crateType: string, emit: string, name = "itoa"): RustcArgs {
  const parsed = parseRustcArgs([
    "--crate-name",
    name,
    "/reg/x/src/lib.rs",
    "--crate-type",
    crateType,
    `--emit=${emit}`,
    "-C",
    "extra-filename=-ab12",
    "--out-dir",
    "/t/deps",
  ]);
  if (!parsed.cacheable) throw new Error(parsed.reason);
  return parsed.args;
}

Deno.test("a library writes an rlib and an rmeta, and is a lib unit", () => {
  const args = argsOf("lib", "dep-info,metadata,link");
  assert.deepEqual(expectedOutputs(args, LINUX), [
    { role: "rlib", path: "/t/deps/libitoa-ab12.rlib" },
    { role: "rmeta", path: "/t/deps/libitoa-ab12.rmeta" },
  ]);
  assert.equal(unitKindOf(args), "lib");
  assert.equal(depInfoPath(args), "/t/deps/itoa-ab12.d");
});

Deno.test("cargo check writes only the rmeta, and is a check unit", () => {
  const args = argsOf("lib", "dep-info,metadata");
  assert.deepEqual(expectedOutputs(args, LINUX), [
    { role: "rmeta", path: "/t/deps/libitoa-ab12.rmeta" },
  ]);
  assert.equal(unitKindOf(args), "check");
});

Deno.test("a proc-macro writes a shared object; a build script a binary", () => {
  const macro = argsOf("proc-macro", "dep-info,link", "serde_derive");
  assert.deepEqual(expectedOutputs(macro, LINUX), [
    { role: "dylib", path: "/t/deps/libserde_derive-ab12.so" },
  ]);
  assert.equal(unitKindOf(macro), "proc-macro");
  const script = argsOf("bin", "dep-info,link", "build_script_build");
  assert.deepEqual(expectedOutputs(script, LINUX), [
    { role: "bin", path: "/t/deps/build_script_build-ab12" },
  ]);
  assert.equal(unitKindOf(script), "build-script");
});

Deno.test("linked outputs for other targets and invocations without outputs are not cached", () => {
  assert.deepEqual(
    expectedOutputs(argsOf("proc-macro", "link", "m"), "x86_64-apple-darwin"),
    { unsupported: "linked output for target x86_64-apple-darwin" },
  );
  assert.deepEqual(expectedOutputs(argsOf("lib", "dep-info"), LINUX), {
    unsupported: "no output to cache",
  });
  assert.equal(depInfoPath(argsOf("lib", "metadata,link")), undefined);
});
