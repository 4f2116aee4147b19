// End-to-end tests of the dispatcher with real cargo, rustc and Debian's crates: hits across
// projects, freshness afterwards, what is and is not served, and faults that must never fail a
// build. Every test starts from a copy of the one shared warm cache.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  copyFixture,
  copySharedWarmCache,
  countOutcomes,
  createCargoHome,
  DEBIAN_REGISTRY,
  type DispatchLogEntry,
  readDispatchLog,
  removeAll,
  runBinary,
  runCargo,
  runWarmup,
  tempDir,
  warmupEnv,
} from "./_harness.ts";
import { skipUnless } from "./_skip.ts";

/** A fixture copied to a fresh path and built through cargo-warmup. */
interface CachedBuild {
  project: string;
  env: Record<string, string>;
  log: string;
  code: number;
  stderr: string;
  entries: DispatchLogEntry[];
}

async function buildThroughCache(
  workDir: string,
  fixture: string,
  cacheDir: string,
  cargoArgs: string[] = ["build", "--locked"],
  extraEnv: Record<string, string> = {},
): Promise<CachedBuild> {
  const project = join(workDir, `${fixture}-${crypto.randomUUID().slice(0, 8)}`);
  await copyFixture(fixture, project);
  const cargoHome = await createCargoHome(join(workDir, "cargo-home"));
  const log = join(workDir, `dispatch-${crypto.randomUUID().slice(0, 8)}.jsonl`);
  const env = { ...warmupEnv({ cacheDir, cargoHome, log }), ...extraEnv };
  const result = await runCargo(cargoArgs, { cwd: project, env });
  return {
    project,
    env,
    log,
    code: result.code,
    stderr: result.stderr,
    entries: await readDispatchLog(log),
  };
}

const cacheable = (entry: DispatchLogEntry) => entry.outcome !== "not-cacheable";

Deno.test("project B is served every registry unit that project A compiled, and runs the same", async () => {
  await using dir = await tempDir();
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  const b = await buildThroughCache(dir.path, "seed001", cacheDir);
  assert.equal(b.code, 0, b.stderr);

  const counts = countOutcomes(b.entries);
  assert.equal(counts.miss, 0, JSON.stringify(b.entries.filter((e) => e.outcome === "miss")));
  assert.ok(counts.hit >= 15, `only ${counts.hit} hits`);
  const kinds = new Set(b.entries.filter((e) => e.outcome === "hit").map((e) => e.kind));
  for (const kind of ["lib", "proc-macro", "build-script"]) {
    assert.ok(kinds.has(kind), `no ${kind} hit`);
  }
  // Workspace members are compiled, never cached.
  const members = b.entries.filter((e) => ["server", "worker", "shared"].includes(e.crate));
  assert.ok(members.length >= 3 && members.every((e) => e.outcome === "not-cacheable"));

  // The same project built without the cache prints the same.
  const plain = join(dir.path, "plain");
  await copyFixture("seed001", plain);
  const plainBuild = await runCargo(["build", "--locked"], {
    cwd: plain,
    env: { CARGO_HOME: b.env.CARGO_HOME!, CARGO_TERM_COLOR: "never" },
  });
  assert.equal(plainBuild.code, 0, plainBuild.stderr);
  for (const bin of ["server", "worker"]) {
    assert.equal(
      await runBinary(join(b.project, "target/debug", bin)),
      await runBinary(join(plain, "target/debug", bin)),
    );
  }

  // A second build finds everything fresh: no rustc call reaches the wrapper.
  const again = await runCargo(["build", "--locked"], { cwd: b.project, env: b.env });
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /Compiling/);
  const secondEntries = (await readDispatchLog(b.log)).slice(b.entries.length);
  assert.deepEqual(secondEntries.filter(cacheable), []);

  // status reports what the builds did.
  const status = await runWarmup(["status", "--json"], { env: b.env });
  assert.equal(status.code, 0, status.stderr);
  const report = JSON.parse(status.stdout);
  assert.ok(report.entries > 0 && report.bytes > 0);
  assert.ok(report.hits >= counts.hit);
});

Deno.test("cargo check is cached apart from cargo build", async () => {
  await using dir = await tempDir();
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  const first = await buildThroughCache(dir.path, "seed003", cacheDir, ["check", "--locked"]);
  assert.equal(first.code, 0, first.stderr);
  const checkMisses = first.entries.filter((e) => e.outcome === "miss");
  assert.ok(
    checkMisses.some((e) => e.kind === "check"),
    "metadata-only units were not new to the cache",
  );
  // Proc-macros and build scripts are the same units in check and build, so they hit.
  assert.ok(first.entries.some((e) => e.outcome === "hit" && e.kind === "proc-macro"));

  const second = await buildThroughCache(dir.path, "seed003", cacheDir, ["check", "--locked"]);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(countOutcomes(second.entries).miss, 0);
  assert.ok(second.entries.some((e) => e.outcome === "hit" && e.kind === "check"));
});

Deno.test("one more feature on a dependency misses for it and its dependents only", async () => {
  await using dir = await tempDir();
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  const build = await buildThroughCache(dir.path, "seed001_extra_feature", cacheDir);
  assert.equal(build.code, 0, build.stderr);
  const missed = new Set(build.entries.filter((e) => e.outcome === "miss").map((e) => e.crate));
  const hit = new Set(build.entries.filter((e) => e.outcome === "hit").map((e) => e.crate));
  assert.ok(missed.has("serde"), `serde with "rc" was served: ${[...missed]}`);
  assert.ok(missed.has("serde_json"), "a dependent of serde was served against the old serde");
  for (const crate of ["tokio", "proc-macro2", "serde_derive"]) {
    assert.ok(hit.has(crate), `${crate} missed`);
  }
  assert.match(
    await runBinary(join(build.project, "target/debug/server")),
    /server accepted 3 jobs/,
  );
});

Deno.test("two builds racing on an empty cache both succeed, and the next is served", async () => {
  await using dir = await tempDir();
  const cacheDir = join(dir.path, "cache");
  const [a, b] = await Promise.all([
    buildThroughCache(dir.path, "seed003", cacheDir),
    buildThroughCache(dir.path, "seed003", cacheDir),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const c = await buildThroughCache(dir.path, "seed003", cacheDir);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(
    countOutcomes(c.entries).miss,
    0,
    JSON.stringify(c.entries.filter((e) => e.outcome === "miss")),
  );
  assert.equal(
    await runBinary(join(c.project, "target/debug/template")),
    await runBinary(join(a.project, "target/debug/template")),
  );
});

Deno.test("a corrupt bundle is dropped and replaced, never served", async () => {
  await using dir = await tempDir();
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  const probe = await buildThroughCache(dir.path, "seed003", cacheDir);
  const itoa = probe.entries.find((e) => e.crate === "itoa" && e.kind === "lib");
  assert.ok(itoa?.key, "no itoa unit in seed003");
  // Only the bundle (itoa is too small for a hot copy anyway); then the bundle loses its tail.
  await removeAll(join(cacheDir, "unpacked", itoa.key.slice(0, 2), itoa.key));
  const bundlePath = join(cacheDir, "bundles", itoa.key.slice(0, 2), `${itoa.key}.tzst`);
  const bytes = await Deno.readFile(bundlePath);
  await Deno.writeFile(bundlePath, bytes.subarray(0, bytes.length - 100));

  const build = await buildThroughCache(dir.path, "seed003", cacheDir);
  assert.equal(build.code, 0, build.stderr);
  const entry = build.entries.find((e) => e.key === itoa.key);
  assert.equal(entry?.outcome, "miss");
  assert.equal(entry?.reason, "corrupt entry");
  assert.match(build.stderr, /dropping a bad cache entry for itoa/);

  const after = await buildThroughCache(dir.path, "seed003", cacheDir);
  assert.equal(after.entries.find((e) => e.key === itoa.key)?.outcome, "hit");
});

Deno.test("a hot copy changed on disk is not served, and the bundle serves instead", async () => {
  await using dir = await tempDir();
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  // Room for every hot copy: the probe build's hits from bundles leave one each.
  const probe = await buildThroughCache(dir.path, "seed003", cacheDir, undefined, {
    CARGO_WARMUP_HOT_SIZE: "1G",
  });
  // A library the daemon keeps a hot copy of.
  const hotCopyOf = (key: string) => join(cacheDir, "unpacked", key.slice(0, 2), key);
  const hotLib = probe.entries.find((e) =>
    e.kind === "lib" && e.key && existsSync(join(hotCopyOf(e.key), "out.rlib"))
  );
  assert.ok(hotLib?.key, "no library of seed003 has a hot copy");
  const rlib = join(hotCopyOf(hotLib.key), "out.rlib");
  const tampered = await Deno.readFile(rlib);
  tampered[tampered.length - 1]! ^= 0xff;
  await Deno.writeFile(rlib, tampered);

  const build = await buildThroughCache(dir.path, "seed003", cacheDir);
  assert.equal(build.code, 0, build.stderr);
  assert.equal(build.entries.find((e) => e.key === hotLib.key)?.outcome, "hit");
  const served = await Deno.readFile(
    join(
      build.project,
      "target/debug/deps",
      await rlibName(build.project, hotLib.crate.replaceAll("-", "_")),
    ),
  );
  assert.notDeepEqual(served.subarray(-1), tampered.subarray(-1));
  assert.match(await runBinary(join(build.project, "target/debug/template")), /status 200 OK/);
});

async function rlibName(project: string, crate: string): Promise<string> {
  for await (const entry of Deno.readDir(join(project, "target/debug/deps"))) {
    if (entry.name.startsWith(`lib${crate}-`) && entry.name.endsWith(".rlib")) return entry.name;
  }
  throw new Error(`no rlib of ${crate}`);
}

Deno.test("an edited registry source is recompiled, never served stale", async () => {
  await using dir = await tempDir();
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  // A private copy of the registry, so a source can be edited: the same crates elsewhere.
  const registry = join(dir.path, "registry");
  const copy = await new Deno.Command("cp", { args: ["-a", DEBIAN_REGISTRY, registry] }).output();
  assert.ok(copy.success);
  const cargoHome = await createCargoHome(join(dir.path, "edited-home"), registry);
  const build = async () => {
    const project = await copyFixture("seed003", join(dir.path, `p-${crypto.randomUUID()}`));
    const log = join(dir.path, `log-${crypto.randomUUID()}.jsonl`);
    const result = await runCargo(["build", "--locked"], {
      cwd: project,
      env: warmupEnv({ cacheDir, cargoHome, log }),
    });
    assert.equal(result.code, 0, result.stderr);
    return await readDispatchLog(log);
  };
  const before = await build();
  assert.equal(countOutcomes(before).miss, 0, "a registry elsewhere is the same registry");

  const itoaDir = (await Array.fromAsync(Deno.readDir(registry))).find((e) =>
    e.name.startsWith("itoa-")
  )!;
  const lib = join(registry, itoaDir.name, "src", "lib.rs");
  await Deno.writeTextFile(lib, (await Deno.readTextFile(lib)) + "\n// edited by hand\n");
  const edited = await build();
  const itoa = edited.find((e) => e.crate === "itoa" && e.kind === "lib");
  assert.equal(itoa?.outcome, "miss");
  assert.match(itoa?.reason ?? "", /source changed/);

  const again = await build();
  assert.equal(again.find((e) => e.crate === "itoa" && e.kind === "lib")?.outcome, "hit");
});

Deno.test("a different rustc identity misses", async () => {
  await using dir = await tempDir();
  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  // Another compiler as cargo would see it: a rustc whose `-vV` reports another build.
  const otherRustc = join(dir.path, "other-toolchain", "rustc");
  await Deno.mkdir(join(dir.path, "other-toolchain"));
  const realRustc = new TextDecoder().decode(
    (await new Deno.Command("rustup", { args: ["which", "rustc"] }).output()).stdout,
  ).trim() || "rustc";
  await Deno.writeTextFile(
    otherRustc,
    `#!/bin/sh\nif [ "$1" = "-vV" ]; then "${realRustc}" -vV; echo "patched: other build"; exit 0; fi\n` +
      `exec "${realRustc}" "$@"\n`,
  );
  await Deno.chmod(otherRustc, 0o755);
  const build = await buildThroughCache(dir.path, "seed003", cacheDir, ["build", "--locked"], {
    RUSTC: otherRustc,
  });
  assert.equal(build.code, 0, build.stderr);
  assert.equal(countOutcomes(build.entries).hit, 0);
  assert.ok(countOutcomes(build.entries).miss > 10);
});

Deno.test("an unusable cache directory or a locked index never fails the build", async () => {
  await using dir = await tempDir();
  const blocked = join(dir.path, "not-a-dir");
  await Deno.writeTextFile(blocked, "a file where the cache directory should be");
  const unusable = await buildThroughCache(dir.path, "seed003", join(blocked, "cache"));
  assert.equal(unusable.code, 0, unusable.stderr);
  assert.match(unusable.stderr, /warning: cargo-warmup:/);
  assert.ok(
    unusable.stderr.split("\n").filter((line) => line.includes("cargo-warmup:")).length <= 3,
  );

  const cacheDir = await copySharedWarmCache(join(dir.path, "cache"));
  const locker = new Deno.Command("python3", {
    args: [
      "-c",
      `import sqlite3,sys,time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(600)`,
      join(cacheDir, "index.db"),
    ],
    stdout: "piped",
  }).spawn();
  try {
    const reader = locker.stdout.getReader();
    await reader.read(); // "locked"
    const locked = await buildThroughCache(dir.path, "seed003", cacheDir);
    assert.equal(locked.code, 0, locked.stderr);
    assert.match(locked.stderr, /cache index .* (locked|unavailable)/);
    reader.releaseLock();
  } finally {
    locker.kill();
    await locker.status;
    await locker.stdout.cancel().catch(() => {});
  }
});

/** Mounts a tmpfs of `megabytes` at `dir` (root only); false where mounting is not allowed. */
async function mountTinyDisk(dir: string, megabytes: number): Promise<boolean> {
  await Deno.mkdir(dir, { recursive: true });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${megabytes}m`, "tmpfs", dir],
    stderr: "null",
  }).output();
  return mount.success;
}

// Decided up front, by mounting once: where mounting is refused the test is skipped, saying why.
const canMount = await (async () => {
  const probe = await Deno.makeTempDir({ prefix: "cargo-warmup-mount-probe-" });
  try {
    if (!(await mountTinyDisk(probe, 1))) return false;
    await new Deno.Command("umount", { args: [probe] }).output();
    return true;
  } finally {
    await Deno.remove(probe, { recursive: true }).catch(() => {});
  }
})();

const FULL_DISK =
  "a full disk under the cache never fails the build, and what was stored still serves";
Deno.test({
  name: FULL_DISK,
  ignore: skipUnless(
    canMount,
    FULL_DISK,
    "it mounts a tmpfs, and mount is refused here (root needed)",
  ),
  async fn() {
    await using dir = await tempDir();
    const cacheDir = join(dir.path, "tiny");
    assert.ok(await mountTinyDisk(cacheDir, 4), "mount worked for the probe, but not now");
    try {
      const first = await buildThroughCache(dir.path, "seed003", cacheDir);
      assert.equal(first.code, 0, first.stderr);
      // Told once that the disk is full: by the first store, or the index, that meets it.
      assert.match(
        first.stderr,
        /warning: cargo-warmup: (cannot store|cache index) .*(No space|os error 28|disk is full)/,
      );
      const warnings = first.stderr.split("\n").filter((line) => line.includes("cargo-warmup:"));
      assert.ok(warnings.length <= 3, warnings.join("\n"));
      assert.match(await runBinary(join(first.project, "target/debug/template")), /status 200 OK/);

      // Whatever made it to disk is whole: the next build is served what was stored, compiles
      // the rest, and succeeds.
      const second = await buildThroughCache(dir.path, "seed003", cacheDir);
      assert.equal(second.code, 0, second.stderr);
      assert.match(await runBinary(join(second.project, "target/debug/template")), /status 200 OK/);
      assert.ok(
        countOutcomes(second.entries).hit > 0,
        "nothing stored before the disk filled serves",
      );
      const stored = new Set(first.entries.filter((e) => e.outcome === "miss").map((e) => e.key));
      for (const entry of second.entries.filter((e) => e.outcome === "hit")) {
        assert.ok(stored.has(entry.key), `served ${entry.crate} that was never stored`);
      }
    } finally {
      await new Deno.Command("umount", { args: [cacheDir] }).output();
    }
  },
});
