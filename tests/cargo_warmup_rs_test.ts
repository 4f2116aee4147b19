// The front door's own unit tests (the `#[cfg(test)] mod tests` of src/frontdoor/cargo_warmup.rs:
// quoting, jobserver flags, frames, exit codes), compiled with the real rustc as `cargo test`
// would (`rustc --test`) and run; any failing #[test] fails this test with rustc's report.

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "./_fixtures.ts";

const SOURCE = fileURLToPath(new URL("../src/frontdoor/cargo_warmup.rs", import.meta.url));

Deno.test("the front door's #[test]s pass under rustc --test", async () => {
  await using dir = await tempDir("cargo-warmup-frontdoor-tests-");
  const binary = join(dir.path, "cargo_warmup_tests");
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const compile = await new Deno.Command(Deno.env.get("RUSTC") ?? "rustc", {
    args: ["--test", "--edition", "2021", "-o", binary, SOURCE],
    // What build.ts sets at compile time: values the pure functions do not read.
    env: { CARGO_WARMUP_TAG: "test-tag", CARGO_WARMUP_PROGRAM: "/nonexistent/cargo-warmup" },
    stdin: "null",
  }).output();
  assert.equal(compile.code, 0, `rustc --test failed:\n${decode(compile.stderr)}`);
  const run = await new Deno.Command(binary, { args: ["--test-threads=1"], stdin: "null" })
    .output();
  const report = decode(run.stdout) + decode(run.stderr);
  assert.equal(run.code, 0, report);
  // Some tests ran, and none was filtered out or ignored: a file without them passes nothing.
  const result = report.match(/test result: ok\. (\d+) passed; 0 failed; 0 ignored/);
  assert.ok(result && Number(result[1]) > 0, report);
});
