// Tests for reading rustc command lines the way cargo writes them.
import assert from "node:assert/strict";
import { parseRustcArgs } from "../src/dispatch/rustc_args.ts";

const SERDE_JSON = [
  "--crate-name",
  "serde_json",
  "--edition=2018",
  "/reg/serde_json-1.0.87/src/lib.rs",
  "--error-format=json",
  "--json=diagnostic-rendered-ansi,artifacts,future-incompat",
  "--diagnostic-width=120",
  "--crate-type",
  "lib",
  "--emit=dep-info,metadata,link",
  "-C",
  "embed-bitcode=no",
  "-C",
  "debuginfo=2",
  "--cfg",
  'feature="std"',
  "--cfg",
  'feature="default"',
  "-C",
  "metadata=b493e989fd5c1152",
  "-C",
  "extra-filename=-3c23961d078da5a3",
  "--out-dir",
  "/p/target/debug/deps",
  "-L",
  "dependency=/p/target/debug/deps",
  "--extern",
  "itoa=/p/target/debug/deps/libitoa-0fcf.rmeta",
  "--cap-lints",
  "allow",
];

Deno.test("a registry library invocation is cacheable and taken apart", () => {
  const parsed = parseRustcArgs(SERDE_JSON);
  assert.ok(parsed.cacheable);
  const args = parsed.args;
  assert.equal(args.crateName, "serde_json");
  assert.equal(args.edition, "2018");
  assert.deepEqual(args.crateTypes, ["lib"]);
  assert.deepEqual(args.emit, ["dep-info", "link", "metadata"]);
  assert.equal(args.outDir, "/p/target/debug/deps");
  assert.equal(args.extraFilename, "-3c23961d078da5a3");
  assert.deepEqual(args.externs, [{
    options: "",
    name: "itoa",
    path: "/p/target/debug/deps/libitoa-0fcf.rmeta",
  }]);
  assert.ok(args.keyed.includes("-C debuginfo=2"));
  assert.ok(args.keyed.includes("--cap-lints allow"));
});

Deno.test("metadata, extra-filename, out-dir and diagnostic width stay out of the keyed args", () => {
  const parsed = parseRustcArgs(SERDE_JSON);
  assert.ok(parsed.cacheable);
  const keyed = [...parsed.args.keyed, ...parsed.args.keyedUnordered].join(" ");
  for (const word of ["metadata=", "extra-filename", "/p/target", "diagnostic-width", "120"]) {
    assert.ok(!keyed.includes(word), `"${word}" leaked into ${keyed}`);
  }
});

Deno.test("glued short flags read the same as separated ones", () => {
  const glued = parseRustcArgs([
    "--crate-name",
    "a",
    "a.rs",
    "-Copt-level=3",
    "-Ldependency=/d",
    "--out-dir",
    "/o",
  ]);
  const apart = parseRustcArgs([
    "--crate-name",
    "a",
    "a.rs",
    "-C",
    "opt-level=3",
    "-L",
    "dependency=/d",
    "--out-dir",
    "/o",
  ]);
  assert.deepEqual(glued, apart);
});

Deno.test("uncacheable invocations say why", () => {
  const reasonOf = (argv: string[]) => {
    const parsed = parseRustcArgs(argv);
    return parsed.cacheable ? "cacheable" : parsed.reason;
  };
  const base = ["--crate-name", "a", "src/lib.rs", "--out-dir", "/o"];
  assert.equal(reasonOf(["-vV"]), "version query");
  assert.equal(reasonOf(["-", "--print=cfg"]), "input from stdin or an @file");
  assert.equal(reasonOf([...base, "--print", "cfg"]), "--print query");
  assert.equal(reasonOf([...base, "--crate-type", "cdylib"]), "crate type cdylib");
  assert.equal(reasonOf([...base, "--emit=asm"]), "--emit asm");
  assert.equal(reasonOf([...base, "--frobnicate"]), 'unknown flag "--frobnicate"');
  assert.equal(reasonOf([...base, "-o", "x"]), "explicit -o output");
  assert.equal(reasonOf([...base, "-C", "split-debuginfo=packed"]), "split debuginfo");
  assert.equal(reasonOf(["src/lib.rs", "--out-dir", "/o"]), "no crate name");
});

// `cargo check` and `cargo check --message-format=short` build the same artefacts: how diagnostics
// are shown is kept apart from the key, while what rustc emits (artifact notifications) stays in.
Deno.test("rendering flags leave the keyed args for the rendering, emitted --json kinds stay", () => {
  const withRendering = (extra: string[]) => {
    const parsed = parseRustcArgs([...SERDE_JSON, ...extra]);
    assert.ok(parsed.cacheable);
    return parsed.args;
  };
  const args = withRendering(["--color", "always", "--json=diagnostic-short"]);
  assert.deepEqual(args.rendering, [
    "--color=always",
    "--diagnostic-width=120",
    "--error-format=json",
    "--json=diagnostic-rendered-ansi",
    "--json=diagnostic-short",
  ]);
  const keyed = args.keyed.join(" ");
  for (const word of ["error-format", "diagnostic-", "color", "always"]) {
    assert.ok(!keyed.includes(word), `"${word}" leaked into ${keyed}`);
  }
  assert.ok(args.keyed.includes("--json artifacts,future-incompat"), keyed);
  // Rendering alone differs: the keyed args are the same.
  const short = withRendering(["--json=diagnostic-short,diagnostic-unicode"]);
  assert.deepEqual(short.keyed, withRendering([]).keyed);
  assert.notDeepEqual(short.rendering, withRendering([]).rendering);
});

// An incremental compile is keyed as one (its crate hash differs from a non-incremental one's),
// but its directory is the build's scratch space: two worktrees share the entry.
Deno.test("incremental compiles are keyed as such, without their directory", () => {
  const keyedOf = (argv: string[]) => {
    const parsed = parseRustcArgs(argv);
    assert.ok(parsed.cacheable, parsed.cacheable ? "" : parsed.reason);
    return parsed.args.keyed;
  };
  const base = ["--crate-name", "a", "src/lib.rs", "--out-dir", "/o", "-C", "debuginfo=2"];
  const first = keyedOf([...base, "-C", "incremental=/wt-1/target/debug/incremental"]);
  assert.deepEqual(first, ["-C debuginfo=2", "-C incremental"]);
  assert.deepEqual(keyedOf([...base, "-Cincremental=/wt-2/target/debug/incremental"]), first);
  assert.deepEqual(keyedOf(base), ["-C debuginfo=2"]);
});
