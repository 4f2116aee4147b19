// A build-script run's key (src/dispatch/run_key.ts) holds what the script's C toolchain resolves
// to on this machine: the C library CC links against, and what `-march=native` in its flags means.

import assert from "node:assert/strict";
import { join } from "node:path";
import { runKeyOf, runRootsOf } from "../src/dispatch/run_key.ts";
import type { DigestMemo } from "../src/index/file_digest.ts";
import type { RustcIdentityMemo } from "../src/index/index_db.ts";
import type { RustcIdentityRow } from "../src/index/index_db.ts";
import { tempDir } from "./_fixtures.ts";

function memos(): { memo: DigestMemo; rustcMemo: RustcIdentityMemo } {
  const digests = new Map<string, string>();
  const rows = new Map<string, RustcIdentityRow>();
  return {
    memo: {
      lookup: (path, signature) => digests.get(`${path}\0${signature}`),
      remember: (path, signature, digest) => void digests.set(`${path}\0${signature}`, digest),
    },
    rustcMemo: {
      lookup: (probe) => rows.get(probe),
      remember: (probe, row) => rows.set(probe, row),
    },
  };
}

/**
 * A build script's surroundings under `root`, with a fake C compiler `cc` first on PATH that
 * answers from files beside it: `libc-path` for `-print-file-name=libc.so.6`, `cpu-line` for
 * `-###`. Rewriting those answers and touching the compiler is what another machine looks like.
 */
async function scriptRun(root: string) {
  const bin = join(root, "bin");
  const pkg = join(root, "registry/src/x/zstd-sys-2.0.0");
  const outDir = join(root, "target/debug/build/zstd-sys-ab12/out");
  await Deno.mkdir(bin, { recursive: true });
  await Deno.mkdir(pkg, { recursive: true });
  await Deno.mkdir(outDir, { recursive: true });
  const binary = join(root, "target/debug/build/zstd-sys-ab12/build-script-build");
  await Deno.writeTextFile(binary, "the build script");
  const cc = join(bin, "cc");
  const script = `#!/bin/sh
here=$(dirname "$0")
case "$1" in
  -print-file-name=libc.so.6) cat "$here/libc-path";;
  -print-file-name=*) echo "\${1#*=}";;
  *) cat "$here/cpu-line" >&2;;
esac
`;
  const libc = join(root, "libc.so.6");
  let rewrites = 0;
  const answer = async (release: string, cpu: string) => {
    await Deno.writeTextFile(libc, `\0GNU C Library (Fake) stable release version ${release}.\n`);
    await Deno.writeTextFile(join(bin, "libc-path"), `${libc}\n`);
    await Deno.writeTextFile(
      join(bin, "cpu-line"),
      ` /usr/lib/gcc/cc1 -E "-march=${cpu}" -mavx2\n`,
    );
    // The same compiler, rewritten: its stat changes, its path and content do not.
    await Deno.writeTextFile(cc, script);
    await Deno.chmod(cc, 0o755);
    // Two rewrites within one millisecond would look unchanged.
    await Deno.utime(cc, new Date(), new Date(Date.UTC(2020, 0, 1) + 1000 * rewrites++));
  };
  await answer("2.36", "znver3");
  const { memo, rustcMemo } = memos();
  const keyOf = async (extra: Record<string, string> = {}) => {
    const env = {
      PATH: `${bin}:${Deno.env.get("PATH")}`,
      CARGO_MANIFEST_DIR: pkg,
      CARGO_PKG_NAME: "zstd-sys",
      OUT_DIR: outDir,
      TARGET: "x86_64-unknown-linux-gnu",
      ...extra,
    };
    const roots = runRootsOf({ outDir, manifestDir: pkg, cargoHome: root });
    return (await runKeyOf({ binary, env, roots, source: "registry:x", memo, rustcMemo })).key;
  };
  return { answer, keyOf };
}

Deno.test("a build-script run's key holds the C library its C compiler links against", async () => {
  await using dir = await tempDir();
  const run = await scriptRun(dir.path);
  const before = await run.keyOf();
  assert.equal(await run.keyOf(), before);
  await run.answer("2.39", "znver3");
  assert.notEqual(await run.keyOf(), before);
  await run.answer("2.36", "znver3");
  assert.equal(await run.keyOf(), before);
});

Deno.test("-march=native in a run's C flags is keyed as what the compiler resolves it to", async () => {
  await using dir = await tempDir();
  const run = await scriptRun(dir.path);
  const nativeFlags: Array<Record<string, string>> = [
    { CFLAGS: "-O2 -march=native" },
    { CXX: "cc", CXXFLAGS_x86_64_unknown_linux_gnu: "-mcpu=native" },
  ];
  for (const flags of nativeFlags) {
    const zen3 = await run.keyOf(flags);
    await run.answer("2.36", "skylake");
    const skylake = await run.keyOf(flags);
    assert.notEqual(skylake, zen3, JSON.stringify(flags));
    await run.answer("2.36", "znver3");
    assert.equal(await run.keyOf(flags), zen3, JSON.stringify(flags));
  }
  // Without a native flag, the compiler's CPU is not asked and not keyed.
  const plain = await run.keyOf({ CFLAGS: "-O2" });
  await run.answer("2.36", "skylake");
  assert.equal(await run.keyOf({ CFLAGS: "-O2" }), plain);
});
