// The index beside the bundles takes disk too: `gc` and the daemon's size keeper count
// `index.db` and its write-ahead log against max-size.

import assert from "node:assert/strict";
import { join } from "node:path";
import { createLocalStore } from "../backends/local.ts";
import { runWarmup, tempDir } from "./_harness.ts";

Deno.test("gc counts the index's write-ahead log against the cap", async () => {
  await using dir = await tempDir();
  const store = createLocalStore({ dir: dir.path });
  for (const c of ["a", "b", "c"]) await store.put(c.repeat(64), new Uint8Array(1000));
  await store.close();
  // A log as a long-lived writer leaves it between checkpoints.
  await Deno.writeFile(join(dir.path, "index.db-wal"), new Uint8Array(1500));

  const gc = await runWarmup(["gc", "--max-size", "3000"], {
    env: { CARGO_WARMUP_DIR: dir.path, CARGO_HOME: dir.path },
  });
  assert.equal(gc.code, 0, gc.stderr);
  const left = await createLocalStore({ dir: dir.path }).list();
  assert.equal(left.length, 1, `3000 bytes less 1500 of index leave one bundle: ${gc.stdout}`);
});
