// `native` resolved (src/dispatch/native_cpu.ts): `-C target-cpu=native` is keyed as the CPU and
// target features rustc picks on this machine, `-march=native` in C flags as what the C compiler
// expands it to; each asked once per compiler and remembered.

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cNativeFlags,
  cNativeOf,
  cpuOptionsOfDriverLine,
  nativeCpuOf,
  nativeCpuOptions,
  parseNativeCpu,
} from "../src/dispatch/native_cpu.ts";
import { parseRustcArgs, type RustcArgs } from "../src/dispatch/rustc_args.ts";
import { tempDir } from "./_fixtures.ts";

const HOST = "x86_64-unknown-linux-gnu";

function argsOf(extra: string[]): RustcArgs {
  const parsed = parseRustcArgs(["--crate-name", "a", "src/lib.rs", "--out-dir", "/o", ...extra]);
  if (!parsed.cacheable) throw new Error(parsed.reason);
  return parsed.args;
}

async function output(command: string, args: string[]): Promise<string> {
  const run = await new Deno.Command(command, { args }).output();
  assert.ok(run.success, `${command} ${args.join(" ")} failed`);
  return new TextDecoder().decode(run.stdout);
}

Deno.test("only a call that asks for the native CPU resolves it", () => {
  assert.equal(nativeCpuOptions(argsOf(["-C", "opt-level=3"])), undefined);
  assert.equal(nativeCpuOptions(argsOf(["-C", "target-cpu=x86-64-v3"])), undefined);
  // The last -C target-cpu wins, as in rustc.
  assert.equal(
    nativeCpuOptions(argsOf(["-Ctarget-cpu=native", "-C", "target-cpu=x86-64-v2"])),
    undefined,
  );
  assert.deepEqual(
    nativeCpuOptions(argsOf(["-Ctarget-cpu=native", "-C", "target-feature=+avx512f"])),
    ["-C", "target-cpu=native", "-C", "target-feature=+avx512f"],
  );
});

Deno.test("the native CPU is rustc's: its CPU name and its target features", async () => {
  await using dir = await tempDir();
  const args = argsOf(["-C", "target-cpu=native"]);
  const env = Deno.env.toObject();
  const query = { rustc: "rustc", rustcIdentity: "test-identity", args, target: HOST, env };
  const native = await nativeCpuOf({ ...query, cwd: dir.path });
  assert.ok(native);
  const cfg = await output("rustc", ["--print", "cfg", "-C", "target-cpu=native"]);
  const features = [...cfg.matchAll(/^target_feature="(.*)"$/gm)].map((match) => match[1]);
  assert.deepEqual(native.features, features.sort());
  const cpus = await output("rustc", ["--print", "target-cpus"]);
  assert.match(cpus, new RegExp(`\\(currently ${native.cpu}\\)`));
});

// Remembered per rustc identity: a call of the same compiler does not start rustc again, another
// compiler's identity is asked anew.
Deno.test("the native CPU is asked once per rustc identity", async () => {
  await using dir = await tempDir();
  const log = join(dir.path, "calls.log");
  const fakeRustc = join(dir.path, "rustc");
  await Deno.writeTextFile(
    fakeRustc,
    `#!/bin/sh\necho x >> '${log}'\necho 'target_feature="sse2"'\n` +
      `echo '    native - Select the CPU of the current host (currently fakecpu).'\n`,
  );
  await Deno.chmod(fakeRustc, 0o755);
  const args = argsOf(["-C", "target-cpu=native"]);
  const query = { rustc: fakeRustc, args, target: HOST, env: {}, cwd: dir.path };
  const identity = `fake-${crypto.randomUUID()}`;
  const answers = await Promise.all(
    [1, 2, 3].map(() => nativeCpuOf({ ...query, rustcIdentity: identity })),
  );
  for (const answer of answers) assert.deepEqual(answer, { cpu: "fakecpu", features: ["sse2"] });
  const count = async () => (await Deno.readTextFile(log)).split("\n").length - 1;
  assert.equal(await count(), 1);
  await nativeCpuOf({ ...query, rustcIdentity: `${identity}-upgraded` });
  assert.equal(await count(), 2);
});

Deno.test("rustc's answer is read for the CPU and its features", () => {
  const printed = 'debug_assertions\ntarget_feature="sse2"\ntarget_feature="avx"\nunix\n' +
    "Available CPUs for this target:\n    alderlake\n" +
    "    native                  - Select the CPU of the current host (currently znver4).\n";
  assert.deepEqual(parseNativeCpu(printed), { cpu: "znver4", features: ["avx", "sse2"] });
  assert.throws(() => parseNativeCpu('target_feature="sse2"\n'), SyntaxError);
});

Deno.test("-march=native in C flags is what the C compiler makes of it here", async () => {
  assert.deepEqual(cNativeFlags(["-O2", "-O2 -march=native -mtune=native", "-march=native"]), [
    "-march=native",
    "-mtune=native",
  ]);
  assert.deepEqual(cNativeFlags(["-march=x86-64-v3"]), []);
  await using dir = await tempDir();
  const resolved = await cNativeOf("cc", ["-march=native"], Deno.env.toObject(), dir.path);
  assert.match(resolved, /^-march=\S+/);
  assert.doesNotMatch(resolved, /native/);
  // The same question, asked again: the same answer.
  assert.equal(await cNativeOf("cc", ["-march=native"], Deno.env.toObject(), dir.path), resolved);
});

Deno.test("the compiler proper's CPU options are read from gcc's and clang's -### lines", () => {
  const gcc = "Using built-in specs.\nCOLLECT_GCC=cc\n" +
    ' /usr/lib/gcc/x86_64-linux-gnu/12/cc1 -E -quiet -imultiarch x86_64-linux-gnu /dev/null "-march=znver3" -mmmx -mno-avx512f --param "l1-cache-size=32" "-mtune=znver3" -dumpbase null\n' +
    "COMPILER_PATH=/usr/lib/gcc/\n";
  assert.deepEqual(cpuOptionsOfDriverLine(gcc), [
    "-march=znver3",
    "-mmmx",
    "-mno-avx512f",
    "--param",
    "l1-cache-size=32",
    "-mtune=znver3",
  ]);
  const clang = 'clang version 16\n "/usr/lib/llvm-16/bin/clang" "-cc1" "-triple" ' +
    '"x86_64-pc-linux-gnu" "-E" "-target-cpu" "znver3" "-target-feature" "+avx2" ' +
    '"-target-feature" "-avx512f" "-tune-cpu" "znver3" "-x" "c" "/dev/null"\n';
  assert.deepEqual(cpuOptionsOfDriverLine(clang), [
    "-target-cpu",
    "znver3",
    "-target-feature",
    "+avx2",
    "-target-feature",
    "-avx512f",
    "-tune-cpu",
    "znver3",
  ]);
  assert.deepEqual(cpuOptionsOfDriverLine("no command line here\n"), []);
});
