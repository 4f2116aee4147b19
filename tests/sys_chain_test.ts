// Crates downstream of C libraries, served in a second checkout, with real cargo, cc and
// pkg-config: the syschain fixture's `cmath` is compiled with `-L native=` cmath-sys's OUT_DIR (a
// path inside the target dir), and zprobe-sys's build script finds zlib through pkg-config and
// names the system's library and include dirs. Projects in other directories, on one CARGO_HOME
// backed by the loopback registry, share one cache.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  type DispatchLogEntry,
  readDispatchLog,
  registryMisses,
  runBinary,
  runCargo,
  runWarmup,
  stopDaemons,
  tempDir,
  warmupEnv,
} from "./_harness.ts";
import { runtimeDirFor } from "./_daemons.ts";
import { createRegistryCargoHome, startSparseRegistry } from "./_sparse_registry.ts";

/** The run of zprobe-sys's build script in a build's dispatch log. */
function zprobeRun(entries: DispatchLogEntry[]): DispatchLogEntry | undefined {
  return entries.find((entry) => entry.kind === "build-run" && entry.crate === "zprobe-sys");
}

/** What pkg-config says of the system's zlib. */
async function pkgConfig(...args: string[]): Promise<string> {
  const output = await new Deno.Command("pkg-config", { args: [...args, "zlib"] }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout).trim();
}

/**
 * A zlib installed under `prefix` (a copy of the system's library and headers, with its own .pc
 * file), so the test can change what a build script's output names.
 */
async function installZlibCopy(prefix: string): Promise<{ library: string; include: string }> {
  const library = join(prefix, "lib/libz.so");
  const include = join(prefix, "include");
  await Deno.mkdir(join(prefix, "lib"), { recursive: true });
  await Deno.mkdir(include, { recursive: true });
  await Deno.mkdir(join(prefix, "pkgconfig"), { recursive: true });
  await Deno.copyFile(join(await pkgConfig("--variable=libdir"), "libz.so"), library);
  const systemInclude = await pkgConfig("--variable=includedir");
  for (const header of ["zlib.h", "zconf.h"]) {
    await Deno.copyFile(join(systemInclude, header), join(include, header));
  }
  const pc = [
    `prefix=${prefix}`,
    "libdir=${prefix}/lib",
    "includedir=${prefix}/include",
    "Name: zlib",
    "Description: a copy of the system's zlib for cargo-warmup's tests",
    `Version: ${await pkgConfig("--modversion")}`,
    "Libs: -L${libdir} -lz",
    "Cflags: -I${includedir}",
    "",
  ].join("\n");
  await Deno.writeTextFile(join(prefix, "pkgconfig/zlib.pc"), pc);
  return { library, include };
}

Deno.test("a workspace downstream of a cc-built and a pkg-config library is served in a second checkout", async (t) => {
  await using dir = await tempDir("cargo-warmup-syschain-");
  await using registry = await startSparseRegistry();
  const cargoHome = await createRegistryCargoHome(join(dir.path, "cargo-home"), registry.indexUrl);
  const cacheDir = join(dir.path, "cache");
  let builds = 0;

  /** A fresh copy of the syschain fixture built through the cache. */
  const build = async (env: Record<string, string> = {}) => {
    const project = await copyFixture("syschain", join(dir.path, `project-${++builds}`));
    const log = join(dir.path, `build-${builds}.jsonl`);
    const buildEnv = { ...warmupEnv({ cacheDir, cargoHome, log, workspace: "default" }), ...env };
    const result = await runCargo(["build"], { cwd: project, env: buildEnv });
    assert.equal(result.code, 0, result.stderr);
    const entries = await readDispatchLog(log);
    return {
      entries,
      project,
      env: buildEnv,
      run: zprobeRun(entries),
      printed: await runBinary(join(project, "target/debug/app")),
    };
  };

  try {
    const first = await build();
    await t.step("the first checkout compiles and runs everything", () => {
      assert.match(first.printed, /^syschain 18 weight-20 [0-9a-f]{8} zlib \S+ \(header \S+\)\n$/);
      assert.equal(first.run?.outcome, "miss", JSON.stringify(first.run));
      // Stored: the run names /usr/lib/… and /usr/include, by identity now.
      assert.equal(first.run?.reason, undefined, JSON.stringify(first.run));
      const cmath = first.entries.find((entry) => entry.crate === "cmath");
      assert.equal(cmath?.outcome, "miss", JSON.stringify(cmath));
    });

    await t.step(
      "a second checkout is served every unit and run, and prints the same",
      async () => {
        const second = await build();
        assert.deepEqual(registryMisses(second.entries), []);
        const missed = second.entries.filter((entry) => entry.outcome === "miss");
        assert.deepEqual(missed, [], JSON.stringify(missed));
        assert.equal(second.run?.outcome, "hit", JSON.stringify(second.run));
        const cmath = second.entries.find((entry) => entry.crate === "cmath");
        assert.equal(cmath?.outcome, "hit", JSON.stringify(cmath));
        assert.equal(second.printed, first.printed);
        // explain sees nothing compiled, so no path of either checkout as a cause.
        const explain = await runWarmup(["explain", "--last", "--json"], {
          cwd: second.project,
          env: second.env,
        });
        assert.equal(explain.code, 0, explain.stderr);
        const report = JSON.parse(explain.stdout) as {
          build: { compiled: number };
          rootCauses: unknown[];
        };
        assert.equal(report.build.compiled, 0, explain.stdout);
        assert.deepEqual(report.rootCauses, []);
      },
    );

    await t.step("a run is served only where what it names resolves the same", async () => {
      const { library, include } = await installZlibCopy(join(dir.path, "zlib-copy"));
      const copyEnv = { PKG_CONFIG_PATH: join(dir.path, "zlib-copy/pkgconfig") };
      const stored = await build(copyEnv);
      assert.equal(stored.run?.outcome, "miss", JSON.stringify(stored.run));
      const served = await build(copyEnv);
      assert.equal(served.run?.outcome, "hit", JSON.stringify(served.run));
      assert.equal(served.printed, first.printed);

      // Another library behind the same path (an upgrade): the run is not served.
      await Deno.writeFile(library, new TextEncoder().encode("\0another build"), { append: true });
      const upgraded = await build(copyEnv);
      assert.equal(upgraded.run?.outcome, "miss", JSON.stringify(upgraded.run));
      assert.equal(upgraded.run?.reason, `source changed: ${library}`);
      assert.equal((await build(copyEnv)).run?.outcome, "hit");

      // A header installed in the include dir it names: not served either.
      await Deno.writeTextFile(join(include, "zextra.h"), "/* installed later */\n");
      const headers = await build(copyEnv);
      assert.equal(headers.run?.outcome, "miss", JSON.stringify(headers.run));
      assert.equal(headers.run?.reason, `source changed: ${include}/`);
    });
  } finally {
    await stopDaemons([runtimeDirFor(cacheDir)]);
  }
});
