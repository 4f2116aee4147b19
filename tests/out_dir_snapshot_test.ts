// Tests of src/dispatch/out_dir_snapshot.ts: what a build script wrote to OUT_DIR comes back
// whole in another build's OUT_DIR; and a blob read from a shared, untrusted cache, whatever it
// claims and whatever OUT_DIR already holds, is refused before it writes anything, and never
// writes outside OUT_DIR.

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { restoreOutDir, snapshotOutDir } from "../src/dispatch/out_dir_snapshot.ts";
import type { PathRoots } from "../src/cache/path_roots.ts";
import { tempDir } from "./_fixtures.ts";

const OUT_DIR_ENV = "@@WARMUP_OUT_DIR_ENV@@";
const encoder = new TextEncoder();

/** One file record of a hand-made blob; `size` and `mode` may lie, `body` is what follows. */
interface BlobFile {
  path: unknown;
  body?: string;
  size?: unknown;
  mode?: unknown;
  template?: unknown;
}

/**
 * A blob as the format says (a big-endian u32 header length, the JSON header, the bodies), made
 * by hand so that it can say anything; `headerLength` overrides the length field.
 */
function blobOf(files: BlobFile[], options: { headerLength?: number } = {}): Uint8Array {
  const records = files.map((file) => ({
    path: file.path,
    size: "size" in file ? file.size : encoder.encode(file.body ?? "").length,
    mode: "mode" in file ? file.mode : 0o644,
    template: "template" in file ? file.template : false,
  }));
  return rawBlob({ files: records }, files.map((file) => file.body ?? "").join(""), options);
}

/** A blob of any header (JSON) and body. */
function rawBlob(
  header: unknown,
  body: string,
  options: { headerLength?: number } = {},
): Uint8Array {
  const json = encoder.encode(JSON.stringify(header));
  const bytes = encoder.encode(body);
  const blob = new Uint8Array(4 + json.length + bytes.length);
  new DataView(blob.buffer).setUint32(0, options.headerLength ?? json.length);
  blob.set(json, 4);
  blob.set(bytes, 4 + json.length);
  return blob;
}

/** A scratch dir with an empty OUT_DIR and, beside it, a file no blob may reach. */
async function scene() {
  const dir = await tempDir("warmup-out-dir-");
  const outDir = join(dir.path, "out");
  const outside = join(dir.path, "outside");
  const victim = join(outside, "victim");
  await Deno.mkdir(outDir);
  await Deno.mkdir(outside);
  await Deno.writeTextFile(victim, "precious\n");
  return { dir, outDir, outside, victim, roots: [[OUT_DIR_ENV, outDir]] as PathRoots };
}
type Scene = Awaited<ReturnType<typeof scene>>;

/**
 * Everything under `root` but `skip`, as path → what it is (a directory, a file's mode and
 * bytes, a link's target), without following links: any write shows.
 */
async function treeOf(root: string, skip?: string): Promise<Record<string, string>> {
  const tree: Record<string, string> = {};
  const visit = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (path === skip) continue;
      const info = await Deno.lstat(path);
      const name = relative(root, path);
      if (info.isSymlink) tree[name] = `link to ${await Deno.readLink(path)}`;
      else if (info.isDirectory) {
        tree[name] = "dir";
        await visit(path);
      } else {
        const bytes = await Deno.readFile(path);
        tree[name] = `file ${(info.mode! & 0o7777).toString(8)} ${
          JSON.stringify(
            new TextDecoder().decode(bytes),
          )
        }`;
      }
    }
  };
  await visit(root);
  return tree;
}

/**
 * Restoring `blob` (or the blob it makes for the scene) into a fresh scene, after `prepare`,
 * throws `pattern`, and writes nothing: not outside OUT_DIR, not in it.
 */
async function assertRefused(
  blob: Uint8Array | ((scene: Scene) => Uint8Array),
  pattern: RegExp | typeof SyntaxError,
  prepare?: (scene: Scene) => Promise<void>,
): Promise<void> {
  const s = await scene();
  await using _ = s.dir;
  await prepare?.(s);
  const bytes = typeof blob === "function" ? blob(s) : blob;
  const outsideBefore = await treeOf(s.dir.path, s.outDir);
  const insideBefore = await treeOf(s.outDir);
  assert.throws(() => restoreOutDir(bytes, s.outDir, s.roots), pattern);
  assert.deepEqual(await treeOf(s.dir.path, s.outDir), outsideBefore, "written outside OUT_DIR");
  assert.deepEqual(await treeOf(s.outDir), insideBefore, "written into OUT_DIR");
  assert.equal(await Deno.readTextFile(s.victim), "precious\n");
}

const BAD_ENTRY = /OUT_DIR blob has a bad entry/;

Deno.test("OUT_DIR round trip: files, modes, nesting and templates come back", async () => {
  const s = await scene();
  await using _ = s.dir;
  const source = join(s.dir.path, "source-out");
  await Deno.mkdir(join(source, "gen", "deep"), { recursive: true });
  const binary = new Uint8Array([0, 1, 2, 0xff, 0xfe, ...encoder.encode(source)]);
  await Deno.writeTextFile(join(source, "gen", "bindings.rs"), `include!("${source}/x.rs");\n`);
  await Deno.writeTextFile(join(source, "gen", "deep", "plain.txt"), "no path here\n");
  await Deno.writeFile(join(source, "data.bin"), binary);
  await Deno.writeFile(join(source, "empty"), new Uint8Array());
  await Deno.writeTextFile(join(source, "tool"), "#!/bin/sh\n", { mode: 0o755 });
  await Deno.chmod(join(source, "tool"), 0o755);

  const snapshot = snapshotOutDir(source, [[OUT_DIR_ENV, source]]);
  assert.ok("blob" in snapshot, JSON.stringify(snapshot));
  assert.equal(snapshot.files, 5);
  const stored = new TextDecoder().decode(snapshot.blob);
  assert.ok(stored.includes(`"${OUT_DIR_ENV}/x.rs`), "text naming OUT_DIR is kept as a template");

  // What an earlier run left is replaced.
  await Deno.mkdir(join(s.outDir, "gen"));
  await Deno.writeTextFile(join(s.outDir, "gen", "bindings.rs"), "stale, and longer than that\n");
  assert.equal(restoreOutDir(snapshot.blob, s.outDir, s.roots), 5);
  assert.deepEqual(await treeOf(s.outDir), {
    "data.bin": `file 644 ${JSON.stringify(new TextDecoder().decode(binary))}`,
    "empty": 'file 644 ""',
    "gen": "dir",
    "gen/bindings.rs": `file 644 ${JSON.stringify(`include!("${s.outDir}/x.rs");\n`)}`,
    "gen/deep": "dir",
    "gen/deep/plain.txt": 'file 644 "no path here\\n"',
    "tool": 'file 755 "#!/bin/sh\\n"',
  });
  // Bytes that are not text keep the path they hold: only text is a template.
  assert.deepEqual(await Deno.readFile(join(s.outDir, "data.bin")), binary);
});

Deno.test("OUT_DIR with a symlink is not snapshotted", async () => {
  const s = await scene();
  await using _ = s.dir;
  await Deno.symlink(s.victim, join(s.outDir, "link"));
  assert.deepEqual(snapshotOutDir(s.outDir, s.roots), {
    uncacheable: "OUT_DIR holds a symlink (link)",
  });
});

Deno.test("OUT_DIR blob: a file already there is replaced, never written through", async () => {
  // An earlier run's build script hard-linked a file from outside into OUT_DIR: restoring over
  // that name must not change the file outside.
  const s = await scene();
  await using _ = s.dir;
  await Deno.link(s.victim, join(s.outDir, "linked"));
  restoreOutDir(blobOf([{ path: "linked", body: "from the cache\n" }]), s.outDir, s.roots);
  assert.equal(await Deno.readTextFile(join(s.outDir, "linked")), "from the cache\n");
  assert.equal(await Deno.readTextFile(s.victim), "precious\n");
  assert.equal((await Deno.lstat(s.victim)).nlink, 1);
});

Deno.test("OUT_DIR blob: a path with `..` is refused", async () => {
  for (const path of ["../outside/victim", "a/../../outside/victim", "..", "a/.."]) {
    await assertRefused(blobOf([{ path, body: "evil\n" }]), BAD_ENTRY);
  }
});

Deno.test("OUT_DIR blob: an absolute path is refused", async () => {
  await assertRefused((s) => blobOf([{ path: s.victim, body: "evil\n" }]), BAD_ENTRY);
  await assertRefused(blobOf([{ path: "/", body: "" }]), BAD_ENTRY);
});

Deno.test("OUT_DIR blob: an empty or `.` path component is refused", async () => {
  for (const path of ["", ".", "./a", "a/./b", "a//b", "a/", "./"]) {
    await assertRefused(blobOf([{ path, body: "evil\n" }]), BAD_ENTRY);
  }
});

Deno.test("OUT_DIR blob: a NUL in a path is refused", async () => {
  for (const path of ["a\0b", "\0", "victim\0/x"]) {
    await assertRefused(blobOf([{ path, body: "evil\n" }]), BAD_ENTRY);
  }
});

Deno.test("OUT_DIR blob: a mode other than 0644 and 0755 is refused", async () => {
  for (const mode of [0o4755, 0o2755, 0o777, 0o666, 0o600, 0o1644, "0644", 420.5, null]) {
    await assertRefused(blobOf([{ path: "a", body: "evil\n", mode }]), BAD_ENTRY);
  }
});

Deno.test("OUT_DIR blob: a record without its fields is refused", async () => {
  for (const record of [{ path: 7 }, { path: "a", template: "yes" }, { path: "a", size: "5" }]) {
    await assertRefused(blobOf([{ body: "evil\n", ...record }]), BAD_ENTRY);
  }
  await assertRefused(rawBlob({ files: [null] }, ""), BAD_ENTRY);
  for (const header of [null, {}, [], { files: {} }, { files: "a" }]) {
    await assertRefused(rawBlob(header, ""), /OUT_DIR blob has no valid file list/);
  }
});

Deno.test("OUT_DIR blob: sizes that do not add up to the blob are refused", async () => {
  const lies: BlobFile[][] = [
    [{ path: "a", body: "12345", size: 6 }], // more than the blob holds
    [{ path: "a", body: "12345", size: 4 }], // bytes left over
    [{ path: "a", body: "123", size: 3 }, { path: "b", body: "45", size: 3 }],
    [{ path: "a", body: "", size: 2 ** 32 }],
  ];
  for (const files of lies) {
    await assertRefused(blobOf(files), /OUT_DIR blob size mismatch/);
  }
  // Sizes that do add up, one of them impossible: each record is checked, not only the sum.
  const impossible: BlobFile[][] = [
    [{ path: "a", body: "", size: -1 }, { path: "b", body: "12345", size: 6 }],
    [{ path: "a", body: "", size: 1.5 }, { path: "b", body: "12345", size: 3.5 }],
    [{ path: "a", body: "12345", size: 2 ** 53 }],
  ];
  for (const files of impossible) await assertRefused(blobOf(files), BAD_ENTRY);
});

Deno.test("OUT_DIR blob: a header length past the blob (up to 4 GiB) is refused", async () => {
  const files = [{ path: "a", body: "12345" }];
  const honest = blobOf(files);
  const headerLength = new DataView(honest.buffer).getUint32(0);
  for (const claimed of [2 ** 32 - 1, 2 ** 31, honest.length - 4 + 1]) {
    await assertRefused(blobOf(files, { headerLength: claimed }), /header is truncated/);
  }
  // Shorter than the header is: the rest of it is not JSON.
  await assertRefused(blobOf(files, { headerLength: headerLength - 1 }), SyntaxError);
});

Deno.test("OUT_DIR blob: every truncation of a blob is refused", async () => {
  const blob = blobOf([{ path: "a", body: "12345" }, { path: "b/c", body: "678" }]);
  const headerEnd = 4 + new DataView(blob.buffer).getUint32(0);
  for (let length = 0; length < blob.length; length++) {
    const expected = length < 4
      ? /OUT_DIR blob is truncated/
      : length < headerEnd
      ? /OUT_DIR blob header is truncated/
      : /OUT_DIR blob size mismatch/;
    await assertRefused(blob.slice(0, length), expected);
  }
});

Deno.test("OUT_DIR blob: more files than the limit are refused", async () => {
  const files = Array.from({ length: 20_001 }, (_, i) => ({ path: `f${i}`, body: "" }));
  await assertRefused(blobOf(files), /OUT_DIR blob has no valid file list/);
});

Deno.test("OUT_DIR blob: a symlink in OUT_DIR where a file would go is refused", async () => {
  const body = "evil\n";
  await assertRefused(blobOf([{ path: "victim", body }]), /victim is a symlink/, async (s) => {
    await Deno.symlink(s.victim, join(s.outDir, "victim"));
  });
  // Dangling: writing through it would create the file outside.
  await assertRefused(blobOf([{ path: "new", body }]), /new is a symlink/, async (s) => {
    await Deno.symlink(join(s.outside, "new"), join(s.outDir, "new"));
  });
});

Deno.test("OUT_DIR blob: a symlinked directory on the way is refused", async () => {
  const body = "evil\n";
  const linkTo = (name: string) => async (s: Scene) => {
    await Deno.mkdir(join(s.outDir, "a"));
    await Deno.symlink(s.outside, join(s.outDir, name));
  };
  await assertRefused(blobOf([{ path: "sub/victim", body }]), /sub is a symlink/, linkTo("sub"));
  await assertRefused(blobOf([{ path: "sub/new/x", body }]), /sub is a symlink/, linkTo("sub"));
  await assertRefused(blobOf([{ path: "a/b/victim", body }]), /a\/b is a symlink/, linkTo("a/b"));
});
