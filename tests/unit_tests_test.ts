// The fast loop's rule (scripts/unit_tests.ts): a test file drives cargo exactly when its imports
// reach tests/_run.ts. These keep the rule honest both ways: no file picked starts cargo by
// another road, and no file is left out of the fast loop that uses nothing of that road.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CARGO_ROAD,
  drivesCargo,
  relativeImports,
  testFiles,
  unitTestFiles,
} from "../scripts/unit_tests.ts";
import { ROOT, tempDir } from "./_fixtures.ts";

/** Starting cargo (or rustup's, or Debian's) as a program, by name or path. */
const STARTS_CARGO = /Command\(\s*["'`](?:[^"'`]*\/)?cargo["'`]/;
/** What tests/_run.ts and the shared warm cache give a test that drives cargo. */
const USES_THE_ROAD =
  /\b(runCargo|runOldCargo|runWarmup|warmupEnv|sharedWarmCache|buildFrontDoorForTests|FRONT_DOOR|runBinary|cleanEnv)\b/;

Deno.test("no test file of the fast loop starts cargo, nor does a helper it imports", async () => {
  const picked = await unitTestFiles();
  assert.ok(picked.length > 0);
  for (const file of picked) {
    const source = await Deno.readTextFile(join(ROOT, file));
    assert.doesNotMatch(source, STARTS_CARGO, `${file} starts cargo but is in the fast loop`);
    for (const helper of relativeImports(source).filter((path) => /\/_[^/]+\.ts$/.test(path))) {
      const helperSource = await Deno.readTextFile(join(ROOT, file, "..", helper));
      assert.doesNotMatch(helperSource, STARTS_CARGO, `${helper} (imported by ${file})`);
    }
  }
});

Deno.test("every test file left out of the fast loop uses what drives cargo", async () => {
  const picked = new Set(await unitTestFiles());
  const left = (await testFiles()).filter((file) => !picked.has(file));
  assert.ok(left.length > 0);
  for (const file of left) {
    const source = await Deno.readTextFile(join(ROOT, file));
    assert.match(source, USES_THE_ROAD, `${file} imports ${CARGO_ROAD} for nothing`);
  }
});

Deno.test("the rule follows static, re-exported and dynamic imports through helpers", async () => {
  await using dir = await tempDir("unit-rule-");
  const write = async (path: string, text: string) => {
    await Deno.mkdir(join(dir.path, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir.path, path), text);
  };
  await write(CARGO_ROAD, "export const x = 1;\n");
  await write("tests/_reexport.ts", 'export * from "./_run.ts";\n');
  await write("tests/_late.ts", 'export const f = () => import("./_run.ts");\n');
  await write("tests/_cycle_a.ts", 'import "./_cycle_b.ts";\n');
  await write("tests/_cycle_b.ts", 'import "./_cycle_a.ts";\nimport "../src/x.ts";\n');
  await write("tests/direct_test.ts", 'import { x } from "./_run.ts";\n');
  await write("tests/through_test.ts", 'import { x } from "./_reexport.ts";\n');
  await write("tests/backends/dynamic_test.ts", 'import { f } from "../_late.ts";\n');
  await write("tests/plain_test.ts", 'import { a } from "./_cycle_a.ts";\n');
  const drives = async (file: string) => await drivesCargo(file, dir.path);
  assert.equal(await drives("tests/direct_test.ts"), true);
  assert.equal(await drives("tests/through_test.ts"), true);
  assert.equal(await drives("tests/backends/dynamic_test.ts"), true);
  assert.equal(await drives("tests/plain_test.ts"), false);
  assert.deepEqual(await unitTestFiles(dir.path), ["tests/plain_test.ts"]);
});
