// Which runtime directories the daemon refuses, and why: another user's, open to others, or too
// deep for a Unix socket's path (the daemon could not listen there, and every call would serve
// itself, slower, without a word).

import assert from "node:assert/strict";
import { join } from "node:path";
import { daemonFiles, whyRuntimeDirRefused } from "../src/runtime_dir.ts";
import { versionTag } from "../src/version.ts";
import { tempDir } from "./_fixtures.ts";

Deno.test("a runtime directory too deep for the socket is refused, saying why", async () => {
  await using dir = await tempDir();
  const private_ = join(dir.path, "rt");
  await Deno.mkdir(private_, { mode: 0o700 });
  assert.equal(whyRuntimeDirRefused(private_), undefined);
  // The socket's path is the directory, "daemon-<tag>.sock": one byte over 107 is refused.
  const socketName = daemonFiles("", versionTag()).socket.length;
  const deep = join(private_, "d".repeat(Math.max(1, 108 - private_.length - 1 - socketName)));
  await Deno.mkdir(deep, { mode: 0o700 });
  assert.ok(daemonFiles(deep, versionTag()).socket.length > 107);
  assert.match(whyRuntimeDirRefused(deep) ?? "", /too deep for the daemon's socket/);
  await Deno.chmod(private_, 0o755);
  assert.match(whyRuntimeDirRefused(private_) ?? "", /open to others/);
});
