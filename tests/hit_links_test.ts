// Hits by link: a hit from a hot copy hard-links the rlib (and whatever keeps cargo's mtime order)
// into target/, a miss's outputs become the hot copy by link, and nothing a build does to
// target/ changes a byte of the cache: a rebuild, `cargo clean`, a `strip` through a link (found
// by the hot copy's stat signature: the bundle serves). Across devices, hits copy.

import assert from "node:assert/strict";
import { join } from "node:path";
import { createHash } from "node:crypto";
import {
  cleanEnv,
  copyFixture,
  copySharedWarmCache,
  createCargoHome,
  readDispatchLog,
  removeAll,
  runBinary,
  runCargo,
  runtimeDirFor,
  stopDaemonsUnder,
  tempDir,
  warmupEnv,
} from "./_harness.ts";
import { settleDaemons } from "../src/daemon/settle.ts";

/** Waits for what the daemon of `cacheDir` does after its builds (hot copies, stores). */
const settleDaemonsOf = (cacheDir: string) => settleDaemons(runtimeDirFor(cacheDir));

/** Every hot copy file of the cache, by path, with its digest. */
function hotDigests(cacheDir: string): Map<string, string> {
  const digests = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) walk(path);
      else if (entry.name.startsWith("out.")) {
        digests.set(path, createHash("sha256").update(Deno.readFileSync(path)).digest("hex"));
      }
    }
  };
  walk(join(cacheDir, "unpacked"));
  return digests;
}

/** Inode numbers of the cache's hot files. */
function hotInodes(cacheDir: string): Set<number> {
  const inodes = new Set<number>();
  for (const path of hotDigests(cacheDir).keys()) inodes.add(Deno.statSync(path).ino!);
  return inodes;
}

/** The one file in `deps` whose name matches `pattern`. */
function depFile(project: string, pattern: RegExp): string {
  const deps = join(project, "target/debug/deps");
  const names = [...Deno.readDirSync(deps)].map((entry) => entry.name)
    .filter((name) => pattern.test(name));
  assert.equal(names.length, 1, `${pattern}: ${names.join(", ")}`);
  return join(deps, names[0]!);
}

function sha256(path: string): string {
  return createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
}

/** Crates cargo compiled or ran again in a build that should be a no-op (`cargo build -v`). */
function rebuilt(stderr: string): string[] {
  return stderr.split("\n").filter((line) => /^\s*(Compiling|Running) /.test(line));
}

Deno.test("seed001: hits link rlibs from hot copies, a second build is fresh, rebuilds and clean leave the cache alone", async () => {
  await using dir = await tempDir();
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const log = join(dir.path, "dispatch.jsonl");
  const env = warmupEnv({ cacheDir, cargoHome, log });
  const projects = [];
  for (const name of ["a", "b"]) {
    const project = await copyFixture("seed001", join(dir.path, name));
    const build = await runCargo(["build", "--locked"], { cwd: project, env });
    assert.equal(build.code, 0, build.stderr);
    // The first build's hits from bundles leave hot copies: the second links them.
    await settleDaemonsOf(cacheDir);
    projects.push(project);
  }
  const [a, b] = projects as [string, string];
  const entries = await readDispatchLog(log);
  assert.deepEqual(entries.filter((entry) => entry.outcome === "miss").map((e) => e.crate), []);

  const hot = hotInodes(cacheDir);
  const serde = depFile(b, /^libserde-.*\.rlib$/);
  assert.ok(hot.has(Deno.statSync(serde).ino!), "serde's rlib is a link to its hot copy");
  assert.ok(Deno.statSync(serde).nlink! >= 2);

  // Links keep cargo's mtime order: nothing is dirty in either target dir.
  for (const project of projects) {
    const again = await runCargo(["build", "--locked", "-v"], { cwd: project, env });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(rebuilt(again.stderr), [], `${project} rebuilt units`);
    assert.match(await runBinary(join(project, "target/debug/worker")), /\S/);
  }

  const before = hotDigests(cacheDir);
  assert.ok(before.size > 10, `${before.size} hot files`);
  // A rebuild of every unit by rustc itself, in place: rustc and the linker replace what they
  // write through a new inode, and rewrite the `.d` files in place (never linked).
  await Deno.remove(join(a, "target/debug/.fingerprint"), { recursive: true });
  const plain = { ...cleanEnv(), CARGO_HOME: cargoHome, CARGO_TERM_COLOR: "never" };
  const rebuild = await runCargo(["build", "--locked"], { cwd: a, env: plain });
  assert.equal(rebuild.code, 0, rebuild.stderr);
  const clean = await runCargo(["clean"], { cwd: b, env: plain });
  assert.equal(clean.code, 0, clean.stderr);
  assert.deepEqual(hotDigests(cacheDir), before);
  await stopDaemonsUnder(dir.path);
});

Deno.test("tiny: a strip through a link voids that hot copy and the bundle serves", async () => {
  await using dir = await tempDir();
  const cacheDir = join(dir.path, "cache");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const log = join(dir.path, "dispatch.jsonl");
  const env = warmupEnv({ cacheDir, cargoHome, log });
  const build = async (name: string) => {
    const project = await copyFixture("tiny", join(dir.path, name));
    const run = await runCargo(["build", "--locked"], { cwd: project, env });
    assert.equal(run.code, 0, run.stderr);
    await settleDaemonsOf(cacheDir);
    return project;
  };
  // The misses' outputs become the hot copies, by link.
  const first = await build("first");
  const original = sha256(depFile(first, /^libmemchr-.*\.rlib$/));
  const linked = depFile(await build("linked"), /^libmemchr-.*\.rlib$/);
  assert.ok(hotInodes(cacheDir).has(Deno.statSync(linked).ino!), "memchr's rlib is linked");

  // binutils keeps a file's other links: it writes the stripped archive through them.
  const strip = await new Deno.Command("strip", { args: ["--strip-debug", linked] }).output();
  assert.ok(strip.success, new TextDecoder().decode(strip.stderr));
  assert.notEqual(sha256(linked), original, "strip changed the file");

  const served = depFile(await build("served"), /^libmemchr-.*\.rlib$/);
  assert.equal(sha256(served), original, "the stripped hot copy was served");
  const memchr = (await readDispatchLog(log)).filter((entry) =>
    entry.crate === "memchr" && entry.kind === "lib"
  );
  assert.deepEqual(memchr.map((entry) => entry.outcome), ["miss", "hit", "hit"]);
  // The last hit read the bundle, and its files are the hot copy now.
  assert.ok("fetched" in (memchr[2]!.phases as Record<string, number>), "not from the bundle");
  for (const digest of hotDigests(cacheDir).values()) assert.notEqual(digest, sha256(linked));
  await stopDaemonsUnder(dir.path);
});

Deno.test("tiny: a target dir on another file system is served by copy", async () => {
  await using dir = await tempDir();
  // /dev/shm is a tmpfs: another device than the temp dir's.
  const shmPath = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "cargo-warmup-test-" });
  await using shm = { path: shmPath, [Symbol.asyncDispose]: () => removeAll(shmPath) };
  assert.notEqual(Deno.statSync(dir.path).dev, Deno.statSync(shm.path).dev, "one device");
  const cacheDir = join(dir.path, "cache");
  const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
  const log = join(dir.path, "dispatch.jsonl");
  const env = warmupEnv({ cacheDir, cargoHome, log });
  const build = async (parent: string, name: string) => {
    const project = await copyFixture("tiny", join(parent, name));
    const run = await runCargo(["build", "--locked"], { cwd: project, env });
    assert.equal(run.code, 0, run.stderr);
    await settleDaemonsOf(cacheDir);
    assert.match(await runBinary(join(project, "target/debug/tiny")), /\S/);
    return depFile(project, /^libmemchr-.*\.rlib$/);
  };
  // A miss on the other device: its hot copy is a copy.
  const missed = await build(shm.path, "first");
  assert.equal(Deno.statSync(missed).nlink, 1);
  const other = await build(shm.path, "second");
  assert.equal(Deno.statSync(other).nlink, 1, "linked across devices");
  assert.equal(sha256(other), sha256(missed));
  // The same hot copy, on the cache's device: linked.
  const same = await build(dir.path, "same-device");
  assert.ok(hotInodes(cacheDir).has(Deno.statSync(same).ino!), "copied on one device");
  const hits = (await readDispatchLog(log)).filter((entry) =>
    entry.crate === "memchr" && entry.kind === "lib"
  );
  assert.deepEqual(hits.map((entry) => entry.outcome), ["miss", "hit", "hit"]);
  await stopDaemonsUnder(dir.path);
});
