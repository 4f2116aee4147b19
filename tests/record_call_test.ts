// A call's kind in the journal (src/dispatch/record_call.ts): a call the cache cannot parse is
// named by the same rule as one it can (unitKindOf), so `explain` never sees one crate's check
// as "lib" in one build and "check" in the next.

import assert from "node:assert/strict";
import { kindOfCall } from "../src/dispatch/record_call.ts";
import { unitKindOf } from "../src/dispatch/outputs.ts";
import { parseRustcArgs } from "../src/dispatch/rustc_args.ts";

const CHECK = [
  "--crate-name",
  "itoa",
  "src/lib.rs",
  "--crate-type",
  "lib",
  "--emit=dep-info,metadata",
];

Deno.test("an unparsed call's kind is a parsed call's: a check is a check, not a lib", () => {
  const parsed = parseRustcArgs([...CHECK, "--out-dir", "/t/deps"]);
  assert.ok(parsed.cacheable);
  assert.equal(unitKindOf(parsed.args), "check");
  assert.equal(kindOfCall(CHECK), "check");
  assert.equal(kindOfCall([...CHECK.slice(0, -1), "--emit=dep-info,metadata,link"]), "lib");
  // rustc's default is to link.
  assert.equal(kindOfCall(CHECK.slice(0, -1)), "lib");
  assert.equal(kindOfCall(["--crate-name", "x", "--crate-type=proc-macro"]), "proc-macro");
  assert.equal(kindOfCall(["--crate-name", "build_script_build", "build.rs"]), "build-script");
  assert.equal(kindOfCall(["-vV"]), "other");
});
