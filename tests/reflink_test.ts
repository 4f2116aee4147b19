// Where the target dir and the cache share a file system with reflinks (XFS here, btrfs alike), a
// hit from a hot copy clones its files instead of copying them: the restored rlib shares its
// blocks with the cache. Needs root, a loop device and mkfs.xfs; elsewhere the test shows as
// ignored.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  copyFixture,
  copySharedWarmCache,
  countOutcomes,
  createCargoHome,
  readDispatchLog,
  runCargo,
  stopDaemonsUnder,
  tempDir,
  warmupEnv,
} from "./_harness.ts";
import { skipUnless } from "./_skip.ts";

/** Makes an XFS image of `megabytes` and loop-mounts it at `dir`; false where that is refused. */
async function mountXfs(image: string, dir: string, megabytes: number): Promise<boolean> {
  await Deno.mkdir(dir, { recursive: true });
  const run = (command: string, args: string[]) =>
    new Deno.Command(command, { args, stdout: "null", stderr: "null" }).output()
      .then((output) => output.success, () => false);
  await Deno.writeFile(image, new Uint8Array(0));
  await Deno.truncate(image, megabytes * 1024 * 1024);
  return await run("mkfs.xfs", ["-q", "-m", "reflink=1", image]) &&
    await run("mount", ["-o", "loop", image, dir]);
}

// Decided up front, by mounting once.
const canMountXfs = await (async () => {
  const probe = await Deno.makeTempDir({ prefix: "cargo-warmup-xfs-probe-" });
  try {
    if (!(await mountXfs(join(probe, "image"), join(probe, "mnt"), 300))) return false;
    await new Deno.Command("umount", { args: [join(probe, "mnt")] }).output();
    return true;
  } finally {
    await Deno.remove(probe, { recursive: true }).catch(() => {});
  }
})();

/** Whether every extent of `path` is shared with another file (filefrag's "shared" flag). */
async function sharesAllBlocks(path: string): Promise<boolean> {
  const output = await new Deno.Command("filefrag", { args: ["-v", path] }).output();
  const extents = new TextDecoder().decode(output.stdout).split("\n")
    .filter((line) => /^\s*\d+:/.test(line));
  return extents.length > 0 && extents.every((line) => line.includes("shared"));
}

const CLONES = "on XFS a hit from a hot copy clones the rlib instead of copying it";
Deno.test({
  name: CLONES,
  ignore: skipUnless(
    canMountXfs,
    CLONES,
    "it mounts an XFS image with reflinks (mkfs.xfs, a loop device, root), refused here",
  ),
  async fn() {
    await using dir = await tempDir();
    const mnt = join(dir.path, "xfs");
    assert.ok(await mountXfs(join(dir.path, "image"), mnt, 600), "mounted for the probe only");
    try {
      const cacheDir = await copySharedWarmCache(join(mnt, "cache"));
      const cargoHome = await createCargoHome(join(dir.path, "cargo-home"));
      const log = join(dir.path, "dispatch.jsonl");
      // A budget for every entry: the first build's hits (from bundles) leave hot copies, the
      // second build's hits copy those.
      const env = { ...warmupEnv({ cacheDir, cargoHome, log }), CARGO_WARMUP_HOT_SIZE: "1G" };
      for (const name of ["first", "project"]) {
        const copy = await copyFixture("seed003", join(mnt, name));
        const build = await runCargo(["build", "--locked"], { cwd: copy, env });
        assert.equal(build.code, 0, build.stderr);
      }
      assert.equal(countOutcomes(await readDispatchLog(log)).miss, 0);

      const project = join(mnt, "project");
      const deps = join(project, "target/debug/deps");
      const rlibs = [...Deno.readDirSync(deps)].map((entry) => entry.name)
        .filter((name) => /^libtokio-.*\.rlib$/.test(name));
      assert.equal(rlibs.length, 1, rlibs.join(", "));
      const hot = [...Deno.readDirSync(join(cacheDir, "unpacked"))].length;
      assert.ok(hot > 0, "the cache has hot copies");
      assert.ok(
        await sharesAllBlocks(join(deps, rlibs[0]!)),
        "tokio's rlib was copied, not cloned",
      );
    } finally {
      // The daemon's socket lives on the mount: it goes first.
      await stopDaemonsUnder(mnt);
      await new Deno.Command("umount", { args: [mnt] }).output();
    }
  },
});
