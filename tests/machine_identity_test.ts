// The machine's part of a linked output's key (src/dispatch/machine_identity.ts): the linker rustc
// runs and the C library it links against, asked once per linker and remembered across processes.

import assert from "node:assert/strict";
import { join } from "node:path";
import { libcOf, linkerIdentity } from "../src/dispatch/machine_identity.ts";
import type { RustcIdentityMemo } from "../src/index/index_db.ts";
import type { RustcIdentityRow } from "../src/index/index_db.ts";
import { ROOT, tempDir } from "./_fixtures.ts";

/** A memo in memory, as the index keeps one; `rows` is what it was told. */
function memoryMemo(rows = new Map<string, RustcIdentityRow>()) {
  const memo: RustcIdentityMemo = {
    lookup: (probe) => rows.get(probe),
    remember: (probe, row) => void rows.set(probe, row),
  };
  return { memo, rows };
}

async function writeScript(path: string, body: string): Promise<string> {
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

async function shell(command: string): Promise<string> {
  const output = await new Deno.Command("sh", { args: ["-c", command] }).output();
  assert.ok(output.success, `${command} failed`);
  return new TextDecoder().decode(output.stdout).trim();
}

/**
 * A `cc` that logs each call to `log` and execs the real one: another linker binary, the same
 * compiler behind it.
 */
async function loggingWrapper(dir: string, log: string): Promise<Record<string, string>> {
  const realCc = await shell("command -v cc");
  await writeScript(join(dir, "cc"), `echo "$*" >> '${log}'\nexec '${realCc}' "$@"`);
  return { ...Deno.env.toObject(), PATH: `${dir}:${Deno.env.get("PATH")}` };
}

const calls = async (log: string) =>
  (await Deno.readTextFile(log).catch(() => "")).split("\n").filter((line) => line !== "");

Deno.test("the linker's C library is this machine's glibc release", async () => {
  const env = Deno.env.toObject();
  const identity = await linkerIdentity("cc", env, Deno.cwd());
  assert.equal(identity.libc, await shell("getconf GNU_LIBC_VERSION"));
  assert.match(identity.sha256, /^[0-9a-f]{64}$/);
  assert.match(identity.version, /\d+\.\d+/);
});

Deno.test("a wrapper cc first on PATH is another linker, asked once however often it is keyed", async () => {
  await using dir = await tempDir();
  const log = join(dir.path, "calls.log");
  const env = await loggingWrapper(dir.path, log);
  const real = await linkerIdentity("cc", Deno.env.toObject(), Deno.cwd());
  const keyings = await Promise.all(
    Array.from({ length: 5 }, () => linkerIdentity("cc", env, dir.path)),
  );
  for (const wrapped of keyings) {
    assert.notEqual(wrapped.sha256, real.sha256);
    assert.equal(wrapped.version, real.version);
    assert.equal(wrapped.libc, real.libc);
  }
  assert.deepEqual(await calls(log), ["--version", "-print-file-name=libc.so.6"]);
  await linkerIdentity("cc", env, dir.path);
  assert.equal((await calls(log)).length, 2);
});

// The in-process dispatcher is one process per call: the index memo carries the answer over.
Deno.test("another process takes the linker's identity from the memo, without running it", async () => {
  await using dir = await tempDir();
  const log = join(dir.path, "calls.log");
  const env = await loggingWrapper(dir.path, log);
  const { memo, rows } = memoryMemo();
  const here = await linkerIdentity("cc", env, dir.path, memo);
  assert.equal((await calls(log)).length, 2);
  assert.ok(rows.size >= 2, "the linker and its libc are remembered");

  const program = `
    import { linkerIdentity } from "${ROOT}/src/dispatch/machine_identity.ts";
    const rows = new Map(JSON.parse(Deno.env.get("MEMO_ROWS")));
    const memo = { lookup: (probe) => rows.get(probe), remember: () => {} };
    console.log(JSON.stringify(await linkerIdentity("cc", Deno.env.toObject(), Deno.cwd(), memo)));
  `;
  const other = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", program],
    cwd: dir.path,
    env: { ...env, MEMO_ROWS: JSON.stringify([...rows]) },
    clearEnv: true,
  }).output();
  assert.ok(other.success, new TextDecoder().decode(other.stderr));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(other.stdout)), here);
  assert.equal((await calls(log)).length, 2, "the other process ran the linker");
});

Deno.test("a C library upgraded under a remembered compiler is asked again", async () => {
  await using dir = await tempDir();
  const libc = join(dir.path, "libc.so.6");
  const banner = (release: string) =>
    `\x7fELF\0\0GNU C Library (Fake GLIBC ${release}) stable release version ${release}.\n\0`;
  await Deno.writeTextFile(libc, banner("2.99"));
  const compiler = await writeScript(
    join(dir.path, "fake-cc"),
    `case "$1" in -print-file-name=libc.so.6) echo '${libc}';; *) echo fake-cc 1.0;; esac`,
  );
  const { memo } = memoryMemo();
  const env = Deno.env.toObject();
  assert.equal(await libcOf(compiler, env, dir.path, memo), "glibc 2.99");
  await Deno.writeTextFile(libc, banner("2.100"));
  assert.equal(await libcOf(compiler, env, dir.path, memo), "glibc 2.100");
});

Deno.test("a libc without a glibc release is its digest; no libc at all is the system's", async () => {
  await using dir = await tempDir();
  const musl = join(dir.path, "libc.so");
  await Deno.writeFile(musl, new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]));
  const muslCc = await writeScript(
    join(dir.path, "musl-cc"),
    // Like a compiler that has no libc.so.6: it prints the name it was asked for.
    `case "$1" in -print-file-name=libc.so) echo '${musl}';; -print-file-name=*) echo "\${1#*=}";; esac`,
  );
  const env = Deno.env.toObject();
  assert.match(await libcOf(muslCc, env, dir.path), /^sha256:[0-9a-f]{64}$/);
  const lost = await writeScript(join(dir.path, "lost-cc"), `echo "\${1#*=}"`);
  assert.equal(await libcOf(lost, env, dir.path), await shell("getconf GNU_LIBC_VERSION"));
});

// A PATH search is remembered by the directories it passed over: a cc put into one of them, or
// taken away, is the linker of the very next call.
Deno.test("a cc put earlier on PATH is the next call's linker, and gone again when removed", async () => {
  await using dir = await tempDir();
  const [early, late] = [join(dir.path, "early"), join(dir.path, "late")];
  await Deno.mkdir(early);
  await Deno.mkdir(late);
  const realCc = await shell("command -v cc");
  await writeScript(join(late, "cc"), `exec '${realCc}' "$@"`);
  const env = { ...Deno.env.toObject(), PATH: `${early}:${late}:${Deno.env.get("PATH")}` };
  const lateCc = await linkerIdentity("cc", env, dir.path);
  assert.equal((await linkerIdentity("cc", env, dir.path)).sha256, lateCc.sha256);

  await writeScript(join(early, "cc"), `# the early one\nexec '${realCc}' "$@"`);
  const earlyCc = await linkerIdentity("cc", env, dir.path);
  assert.notEqual(earlyCc.sha256, lateCc.sha256);
  await Deno.remove(join(early, "cc"));
  assert.equal((await linkerIdentity("cc", env, dir.path)).sha256, lateCc.sha256);
});
