// Which files an invocation writes, by role: the same prediction packs a miss and restores a hit,
// so a missing or extra file here is a bundle that cannot be restored.

import assert from "node:assert/strict";
import { depInfoPath, expectedOutputs, unitKindOf } from "../src/dispatch/outputs.ts";
import { parseRustcArgs, type RustcArgs } from "../src/dispatch/rustc_args.ts";

const LINUX = "x86_64-unknown-linux-gnu";
const MAC = "x86_64-apple-darwin";

/** cargo's command line for crate `name` of `crateType`, emitting `emit` into /t/deps. */
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

// `cargo build` of a library: the rlib to link and the rmeta dependents compile against.
Deno.test("a library writes an rlib and an rmeta, and is a lib unit", () => {
  for (const crateType of ["lib", "rlib"]) {
    const args = argsOf(crateType, "dep-info,metadata,link");
    assert.deepEqual(expectedOutputs(args, LINUX), [
      { role: "rlib", path: "/t/deps/libitoa-ab12.rlib" },
      { role: "rmeta", path: "/t/deps/libitoa-ab12.rmeta" },
    ], crateType);
    assert.equal(unitKindOf(args), "lib", crateType);
  }
  assert.equal(depInfoPath(argsOf("lib", "dep-info,metadata,link")), "/t/deps/itoa-ab12.d");
});

// `cargo check`: metadata only, no linking, so no target limits it.
Deno.test("cargo check writes only the rmeta, on any target, and is a check unit", () => {
  const args = argsOf("lib", "dep-info,metadata");
  const rmetaOnly = [{ role: "rmeta", path: "/t/deps/libitoa-ab12.rmeta" }];
  assert.deepEqual(expectedOutputs(args, LINUX), rmetaOnly);
  assert.deepEqual(expectedOutputs(args, MAC), rmetaOnly);
  assert.equal(unitKindOf(args), "check");
  assert.equal(depInfoPath(args), "/t/deps/itoa-ab12.d");
});

// Natively linked outputs: a proc-macro's shared object, a build script's and a binary's
// executable (named without a lib prefix or extension on Linux).
Deno.test("a proc-macro writes a shared object; a build script and a binary an executable", () => {
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

  const bin = argsOf("bin", "dep-info,link", "rg");
  assert.deepEqual(expectedOutputs(bin, LINUX), [{ role: "bin", path: "/t/deps/rg-ab12" }]);
  assert.equal(unitKindOf(bin), "bin");
});

// What the cache cannot predict it does not cache: other targets' linked file names (.dylib,
// .exe, split debug info) and invocations that write nothing it keeps.
Deno.test("linked outputs for other targets and invocations without outputs are not cached", () => {
  for (const crateType of ["proc-macro", "bin"]) {
    assert.deepEqual(expectedOutputs(argsOf(crateType, "link", "m"), MAC), {
      unsupported: `linked output for target ${MAC}`,
    }, crateType);
  }
  assert.deepEqual(expectedOutputs(argsOf("lib", "dep-info"), LINUX), {
    unsupported: "no output to cache",
  });
  assert.equal(depInfoPath(argsOf("lib", "metadata,link")), undefined);
});
