// Linked outputs carry the machine's linker and C library: with another `cc` first on PATH (a
// wrapper around the real one is another linker identity), a warm cache serves the libraries but
// not the proc-macros, build scripts and their runs, which are linked (or compile C) anew.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  copySharedWarmCache,
  createCargoHome,
  type DispatchLogEntry,
  readDispatchLog,
  runBinary,
  runCargo,
  tempDir,
  warmupEnv,
} from "./_harness.ts";

async function realCc(): Promise<string> {
  const output = await new Deno.Command("sh", { args: ["-c", "command -v cc"] }).output();
  assert.ok(output.success, "no cc on PATH");
  return new TextDecoder().decode(output.stdout).trim();
}

Deno.test("another cc first on PATH: proc-macros and build scripts miss, libraries hit", async () => {
  await using dir = await tempDir();
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  const wrapperDir = join(dir.path, "other-cc");
  const linked = join(dir.path, "linked.log");
  await Deno.mkdir(wrapperDir);
  await Deno.writeTextFile(
    join(wrapperDir, "cc"),
    `#!/bin/sh\necho "$*" >> '${linked}'\nexec '${await realCc()}' "$@"\n`,
  );
  await Deno.chmod(join(wrapperDir, "cc"), 0o755);

  const build = async (extraEnv: Record<string, string>) => {
    const id = crypto.randomUUID().slice(0, 8);
    const project = await copyFixture("seed001", join(dir.path, `seed001-${id}`));
    const cargoHome = await createCargoHome(join(dir.path, `cargo-home-${id}`));
    const log = join(dir.path, `dispatch-${id}.jsonl`);
    const env = { ...warmupEnv({ cacheDir, cargoHome, log }), ...extraEnv };
    const run = await runCargo(["build", "--locked"], { cwd: project, env });
    assert.equal(run.code, 0, run.stderr);
    assert.match(await runBinary(join(project, "target/debug/worker")), /\S/);
    return await readDispatchLog(log);
  };
  const outcomes = (entries: DispatchLogEntry[], kinds: string[]) =>
    entries.filter((entry) => kinds.includes(entry.kind ?? "")).map((entry) =>
      `${entry.crate} ${entry.kind} ${entry.outcome}`
    );
  const registry = (entries: DispatchLogEntry[]) =>
    entries.filter((entry) => entry.outcome !== "not-cacheable");

  // The shared cache was warmed with this machine's cc: everything is served.
  const same = registry(await build({}));
  assert.deepEqual(same.filter((entry) => entry.outcome !== "hit"), []);
  const linkedKinds = ["proc-macro", "build-script", "build-run"];
  assert.ok(outcomes(same, ["proc-macro"]).length >= 2, "seed001 has proc-macros");
  assert.ok(outcomes(same, ["build-script"]).length >= 2, "seed001 has build scripts");

  const other = registry(
    await build({ PATH: `${wrapperDir}:${Deno.env.get("PATH")}` }),
  );
  const misses = outcomes(other, linkedKinds).filter((line) => !line.endsWith(" miss"));
  assert.deepEqual(misses, [], "linked outputs and runs served across linkers");
  const libraries = outcomes(other, ["lib"]);
  assert.ok(libraries.length >= 10, libraries.join("; "));
  assert.deepEqual(libraries.filter((line) => !line.endsWith(" hit")), []);
  // rustc really linked through the other cc.
  assert.ok((await Deno.readTextFile(linked)).length > 0);
});
