// The cache key: the same crate built in two directories (another project, another machine's
// CARGO_HOME) gets the very same recipe, while everything that shapes the output changes it.

import assert from "node:assert/strict";
import { join } from "node:path";
import { cacheKeyOf, type KeyInputs } from "../src/dispatch/cache_key.ts";
import type { DigestMemo } from "../src/index/file_digest.ts";
import { pathRootsOf } from "../src/cache/path_roots.ts";
import { parseRustcArgs } from "../src/dispatch/rustc_args.ts";
import type { RustcIdentityRow } from "../src/index/index_db.ts";
import type { LinkerIdentity } from "../src/dispatch/machine_identity.ts";
import type { NativeCpu } from "../src/dispatch/native_cpu.ts";
import { tempDir } from "./_fixtures.ts";

const RUSTC: RustcIdentityRow = {
  identity: "rustc-1.95-identity",
  host: "x86_64-unknown-linux-gnu",
  release: "1.95.0",
};
const REGISTRY = "index.crates.io-1949cf8c6b5b557f";

/** A digest memo in memory, as the index keeps one: by path and stat signature. */
function memoryMemo(): DigestMemo {
  const known = new Map<string, string>();
  return {
    lookup: (path, signature) => known.get(`${path}\0${signature}`),
    remember: (path, signature, digest) => void known.set(`${path}\0${signature}`, digest),
  };
}

/** What may differ between two invocations of the same crate, and what the tests vary. */
interface Variant {
  /** Extra rustc arguments, after cargo's. */
  args?: string[];
  /** The `--edition` cargo passes; 2018 unless given. */
  edition?: string;
  /** `-C metadata` and `-C extra-filename` (without its dash): cargo's per-project hash. */
  metadata?: string;
  env?: Record<string, string>;
  rustc?: RustcIdentityRow;
  /** The dependencies in the order cargo lists them; `["itoa", "ryu"]` unless given. */
  externOrder?: string[];
  /** How diagnostics are shown; `["--error-format=json"]` unless given. */
  rendering?: string[];
  /** `lib` unless given. */
  crateType?: string;
  linker?: LinkerIdentity;
  nativeCpu?: NativeCpu;
}

/**
 * One serde_json-like build laid out under `root`: a project with its target dir, a CARGO_HOME
 * with the unpacked package, the build script's OUT_DIR with one generated file, and the
 * dependency artefacts (`itoa`, `ryu`) the invocation links against, as real files.
 */
async function layout(root: string) {
  const project = join(root, "project");
  const cargoHome = join(root, "cargo-home");
  const pkg = join(cargoHome, `registry/src/${REGISTRY}/serde_json-1.0.87`);
  const deps = join(project, "target/debug/deps");
  const outDirEnv = join(project, "target/debug/build/serde_json-5e8a/out");
  await Deno.mkdir(deps, { recursive: true });
  await Deno.mkdir(outDirEnv, { recursive: true });
  await Deno.mkdir(join(pkg, "src"), { recursive: true });
  const externs: Record<string, string> = {
    itoa: join(deps, "libitoa-0fcf.rmeta"),
    ryu: join(deps, "libryu-77aa.rmeta"),
  };
  await Deno.writeTextFile(externs.itoa!, "itoa 1.0.1");
  await Deno.writeTextFile(externs.ryu!, "ryu 1.0.9");
  await Deno.writeTextFile(join(outDirEnv, "generated.rs"), "pub const LIMB_WIDTH: u32 = 64;");
  const memo = memoryMemo();

  /** The key inputs of this layout's invocation, with `variant` applied. */
  function inputs(variant: Variant = {}): KeyInputs {
    const metadata = variant.metadata ?? "5e8a";
    const argv = [
      "--crate-name",
      "serde_json",
      `--edition=${variant.edition ?? "2018"}`,
      join(pkg, "src/lib.rs"),
      ...(variant.rendering ?? ["--error-format=json"]),
      "--crate-type",
      variant.crateType ?? "lib",
      "--emit=dep-info,metadata,link",
      "-C",
      "debuginfo=2",
      "--cfg",
      'feature="std"',
      "--cfg",
      'feature="default"',
      "-C",
      `metadata=${metadata}`,
      "-C",
      `extra-filename=-${metadata}`,
      "--out-dir",
      deps,
      "-L",
      `dependency=${deps}`,
      ...(variant.externOrder ?? ["itoa", "ryu"]).flatMap((name) => [
        "--extern",
        `${name}=${externs[name]}`,
      ]),
      "--cap-lints",
      "allow",
      ...(variant.args ?? []),
    ];
    const parsed = parseRustcArgs(argv);
    if (!parsed.cacheable) throw new Error(`not cacheable: ${parsed.reason}`);
    return {
      args: parsed.args,
      env: {
        CARGO_PKG_NAME: "serde_json",
        CARGO_PKG_VERSION: "1.0.87",
        CARGO_MANIFEST_DIR: pkg,
        CARGO_CRATE_NAME: "serde_json",
        OUT_DIR: outDirEnv,
        HOME: root,
        ...variant.env,
      },
      roots: pathRootsOf({
        outDir: deps,
        outputStem: `serde_json-${metadata}`,
        extraFilename: `-${metadata}`,
        manifestDir: pkg,
        outDirEnv,
        cargoHome,
      }),
      rustc: variant.rustc ?? RUSTC,
      source: `registry:${REGISTRY}`,
      memo,
      ...(variant.linker ? { linker: variant.linker } : {}),
      ...(variant.nativeCpu ? { nativeCpu: variant.nativeCpu } : {}),
    };
  }

  return { root, externs, outDirEnv, inputs };
}

// Paths never enter the key: a build in another project, with another CARGO_HOME, OUT_DIR,
// package dir and cargo metadata hash, is served the same bundle.
Deno.test("the same crate in two projects and two CARGO_HOMEs has one recipe and one key", async () => {
  await using dir = await tempDir();
  const alice = await layout(join(dir.path, "home/alice/code"));
  const ci = await layout(join(dir.path, "builds/ci-runner-7/checkout-with-a-longer-path"));
  const a = cacheKeyOf(alice.inputs({ metadata: "a1b2c3d4" }));
  const b = cacheKeyOf(ci.inputs({ metadata: "99ffee00" }));
  assert.deepEqual(a.recipe, b.recipe);
  assert.equal(a.key, b.key);
  assert.match(a.key, /^[0-9a-f]{64}$/);
  // No absolute path of either layout is left in the recipe, only placeholders.
  const recipe = JSON.stringify(a.recipe);
  assert.ok(!recipe.includes(dir.path), recipe);
  assert.match(recipe, /@@WARMUP_PKG@@\/src\/lib\.rs/);
});

// cargo's -C metadata / -C extra-filename hash differs per project and profile, not per output.
Deno.test("-C metadata and -C extra-filename do not change the key", async () => {
  await using dir = await tempDir();
  const build = await layout(dir.path);
  const one = cacheKeyOf(build.inputs({ metadata: "0123456789abcdef" }));
  const other = cacheKeyOf(build.inputs({ metadata: "fedcba9876543210" }));
  assert.deepEqual(one.recipe, other.recipe);
  assert.equal(one.key, other.key);
});

// Everything that shapes what rustc writes is in the key: each change alone gives another key.
Deno.test("what shapes the output changes the key", async () => {
  await using dir = await tempDir();
  const build = await layout(dir.path);
  const base = cacheKeyOf(build.inputs()).key;
  const variants: Record<string, Variant> = {
    "another feature": { args: ["--cfg", 'feature="float_roundtrip"'] },
    "another edition": { edition: "2021" },
    "another rustc": { rustc: { ...RUSTC, identity: "rustc-1.96-identity" } },
    "another package version": { env: { CARGO_PKG_VERSION: "1.0.88" } },
    "another opt-level": { args: ["-C", "opt-level=3"] },
    "another target": { args: ["--target", "aarch64-unknown-linux-gnu"] },
  };
  for (const [what, variant] of Object.entries(variants)) {
    assert.notEqual(cacheKeyOf(build.inputs(variant)).key, base, what);
  }
  // Nothing changed: the same key (so the differences above come from the variants alone).
  assert.equal(cacheKeyOf(build.inputs()).key, base);
});

// Dependencies are keyed by the content of the artefact on disk, not by its (per-project) path.
Deno.test("an extern's file content changes the key", async () => {
  await using dir = await tempDir();
  const build = await layout(dir.path);
  const base = cacheKeyOf(build.inputs()).key;
  await Deno.writeTextFile(build.externs.ryu!, "ryu 1.0.9 built with other flags");
  assert.notEqual(cacheKeyOf(build.inputs()).key, base);
  // Back to the same bytes (a new mtime and size): the same key again.
  await Deno.writeTextFile(build.externs.ryu!, "ryu 1.0.9");
  assert.equal(cacheKeyOf(build.inputs()).key, base);
});

// A generated file the compile reads is checked on a hit, from its dep-info (variants.ts), not
// keyed: OUT_DIR also holds build scripts' probes and scratch files, which embed machine paths.
Deno.test("OUT_DIR's files stay out of the key, except static libraries an rlib bundles", async () => {
  await using dir = await tempDir();
  const build = await layout(dir.path);
  const base = cacheKeyOf(build.inputs()).key;
  await Deno.writeTextFile(
    join(build.outDirEnv, "generated.rs"),
    "pub const LIMB_WIDTH: u32 = 32;",
  );
  await Deno.writeTextFile(join(build.outDirEnv, "librust_out.rmeta"), `probe in ${dir.path}`);
  assert.equal(cacheKeyOf(build.inputs()).key, base);

  const linked = { args: ["-L", `native=${build.outDirEnv}`, "-l", "static=zbundled"] };
  const withLibrary = cacheKeyOf(build.inputs(linked)).key;
  await Deno.writeTextFile(join(build.outDirEnv, "libzbundled.a"), "!<arch>\none");
  const libraryOne = cacheKeyOf(build.inputs(linked)).key;
  await Deno.writeTextFile(join(build.outDirEnv, "libzbundled.a"), "!<arch>\nthe second");
  const libraryTwo = cacheKeyOf(build.inputs(linked)).key;
  assert.equal(new Set([withLibrary, libraryOne, libraryTwo]).size, 3);
});

// Cargo passes every dependency's build-script output dir as `-L native=<target>/…/out`: the
// target dir is templated (a second checkout is served), and what rustc or the linker may take
// from there is keyed by content (a different library behind the same path is another key).
Deno.test("another package's OUT_DIR in -L is templated, its libraries keyed by content", async () => {
  await using dir = await tempDir();
  const builds = [join(dir.path, "a"), join(dir.path, "checkouts/b")];
  const keys = [];
  for (const root of builds) {
    const build = await layout(root);
    const sysOut = join(root, "project/target/debug/build/cmath-sys-1f2e/out");
    await Deno.mkdir(join(sysOut, "include"), { recursive: true });
    await Deno.writeTextFile(join(sysOut, "libcmath.a"), "!<arch>\ncmath");
    await Deno.writeTextFile(join(sysOut, "include/cmath.h"), `/* from ${sysOut} */`);
    const linked = { args: ["-L", `native=${sysOut}`] };
    const { key, recipe } = cacheKeyOf(build.inputs(linked));
    assert.ok(!JSON.stringify(recipe).includes(dir.path), JSON.stringify(recipe));
    await Deno.writeTextFile(join(sysOut, "libcmath.a"), "!<arch>\ncmath built otherwise");
    const changed = cacheKeyOf(build.inputs(linked)).key;
    assert.notEqual(changed, key);
    await Deno.writeTextFile(join(sysOut, "libcmath.a"), "!<arch>\ncmath");
    keys.push(key);
  }
  assert.equal(keys[0], keys[1]);
});

// cargo's order of --extern and --cfg flags carries no meaning and is not stable across versions.
Deno.test("the order of externs and of --cfg flags does not change the key", async () => {
  await using dir = await tempDir();
  const build = await layout(dir.path);
  const base = cacheKeyOf(build.inputs({ externOrder: ["itoa", "ryu"] }));
  const swapped = cacheKeyOf(build.inputs({ externOrder: ["ryu", "itoa"] }));
  assert.deepEqual(swapped.recipe, base.recipe);
  assert.equal(swapped.key, base.key);

  const ab = build.inputs({ args: ["--cfg", 'feature="a"', "--cfg", 'feature="b"'] });
  const ba = build.inputs({ args: ["--cfg", 'feature="b"', "--cfg", 'feature="a"'] });
  assert.equal(cacheKeyOf(ab).key, cacheKeyOf(ba).key);
  // A dropped extern is another key, though: the order is ignored, not the set.
  assert.notEqual(cacheKeyOf(build.inputs({ externOrder: ["itoa"] })).key, base.key);
});

// An rlib is not linked: nothing of the machine's linker or C library may enter its key, so
// machines keep sharing it. Recorded from the code before linked outputs held the linker (this
// invocation has no rendering flag, so leaving the rendering out of the key does not touch it).
Deno.test("an rlib's key is the one recorded before linked outputs were keyed on the machine", async () => {
  await using dir = await tempDir();
  const build = await layout(dir.path);
  const { key } = cacheKeyOf(build.inputs({ rendering: [] }));
  assert.equal(key, "3236d75491f93e665d8ffc70320a6ad639ad82f7c934bce6e77538fe13003734");
  // A linker identity offered for an rlib is not used.
  assert.equal(cacheKeyOf(build.inputs({ rendering: [], linker: LINKER })).key, key);
});

const LINKER: LinkerIdentity = {
  version: "cc (Debian 12.2.0-14+deb12u1) 12.2.0",
  sha256: "75e997ec62297a6484f491bae28ab0ccb489daba23e398fd10fe68e9e6f0def8",
  libc: "glibc 2.36",
};

// A proc-macro linked against a newer glibc cannot be loaded where an older one runs.
Deno.test("a linked output's key holds the linker and its C library", async () => {
  await using dir = await tempDir();
  const build = await layout(dir.path);
  const procMacro = (linker?: LinkerIdentity) =>
    cacheKeyOf(build.inputs({ crateType: "proc-macro", ...(linker ? { linker } : {}) })).key;
  const base = procMacro(LINKER);
  assert.equal(procMacro({ ...LINKER }), base);
  const others: Record<string, LinkerIdentity> = {
    "another linker binary (a wrapper)": { ...LINKER, sha256: "0".repeat(64) },
    "another linker version": { ...LINKER, version: "cc (Debian 13.2.0) 13.2.0" },
    "another glibc": { ...LINKER, libc: "glibc 2.39" },
  };
  for (const [what, linker] of Object.entries(others)) {
    assert.notEqual(procMacro(linker), base, what);
  }
  // Keying a linked output without its linker is a bug, not a key.
  assert.throws(() => procMacro(), TypeError);
  // The rlib of the same crate: no linker needed, none keyed.
  assert.equal(
    cacheKeyOf(build.inputs({ linker: others["another glibc"]! })).key,
    cacheKeyOf(build.inputs()).key,
  );
});

// `-C target-cpu=native` means this machine's CPU: keyed as what it resolves to.
Deno.test("the native CPU is keyed as the CPU and features it resolves to", async () => {
  await using dir = await tempDir();
  const build = await layout(dir.path);
  const native = ["-C", "target-cpu=native"];
  const zen: NativeCpu = { cpu: "znver4", features: ["avx", "avx2", "sse2"] };
  const base = cacheKeyOf(build.inputs({ args: native, nativeCpu: zen }));
  assert.deepEqual((base.recipe as { nativeCpu: NativeCpu }).nativeCpu, zen);
  assert.equal(cacheKeyOf(build.inputs({ args: native, nativeCpu: { ...zen } })).key, base.key);
  const masked = { ...zen, features: ["avx", "sse2"] };
  assert.notEqual(cacheKeyOf(build.inputs({ args: native, nativeCpu: masked })).key, base.key);
  const other = { ...zen, cpu: "skylake" };
  assert.notEqual(cacheKeyOf(build.inputs({ args: native, nativeCpu: other })).key, base.key);
  assert.notEqual(cacheKeyOf(build.inputs()).key, base.key);
  assert.throws(() => cacheKeyOf(build.inputs({ args: native })), TypeError);
});

// How diagnostics are shown is recorded with the entry (diagnostic_rendering.ts), not keyed.
Deno.test("rendering flags do not change the key; emitted kinds of --json do", async () => {
  await using dir = await tempDir();
  const build = await layout(dir.path);
  const cargo = [
    "--error-format=json",
    "--json=diagnostic-rendered-ansi,artifacts,future-incompat",
  ];
  const base = cacheKeyOf(build.inputs({ rendering: cargo })).key;
  const renderings = [
    ["--error-format=json", "--json=diagnostic-short,artifacts,future-incompat"],
    [...cargo, "--diagnostic-width=80", "--color=always"],
    ["--error-format=json", "--json=artifacts,future-incompat,diagnostic-unicode"],
    ["--json=artifacts,future-incompat", "--error-format=short"],
  ];
  for (const rendering of renderings) {
    assert.equal(cacheKeyOf(build.inputs({ rendering })).key, base, rendering.join(" "));
  }
  const emitsLess = ["--error-format=json", "--json=diagnostic-rendered-ansi,artifacts"];
  assert.notEqual(cacheKeyOf(build.inputs({ rendering: emitsLess })).key, base);
});
