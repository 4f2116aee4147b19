// The copy-only wrapper of the benchmark's "limit" row (copy_only.rs beside this file): compiling
// it, reading what it did, and checking that the binaries it helped build behave as plain cargo's.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanEnv } from "../../tests/_harness.ts";

const SOURCE = fileURLToPath(new URL("copy_only.rs", import.meta.url));

/** Compiles the wrapper into `dir` with the current rustc; returns the binary's path. */
export async function compileCopyOnly(dir: string): Promise<string> {
  const binary = join(dir, "copy_only");
  const output = await new Deno.Command("rustc", {
    args: ["-O", "--edition", "2021", "-o", binary, SOURCE],
    clearEnv: true,
    env: cleanEnv(),
    stdin: "null",
  }).output();
  if (!output.success) {
    throw new Error(`Cannot compile "${SOURCE}": ${new TextDecoder().decode(output.stderr)}`);
  }
  return binary;
}

/** The registry crates' calls of a build: outputs copied, and crates that went to rustc. */
export async function readCopyOnlyLog(path: string): Promise<{ copied: number; real: string[] }> {
  const lines = (await Deno.readTextFile(path).catch(() => "")).split("\n").filter(Boolean);
  return {
    copied: lines.filter((line) => line.startsWith("copied ")).length,
    real: lines.filter((line) => line.startsWith("real ")).map((line) => line.slice(5)),
  };
}

/**
 * Runs every executable directly in `dir/target/debug` (the fixtures' binaries run offline and
 * exit) and in `reference/target/debug`, and throws unless each prints the same.
 */
export async function assertSameBinaries(dir: string, reference: string): Promise<string[]> {
  const debug = join(dir, "target", "debug");
  const names: string[] = [];
  for await (const entry of Deno.readDir(debug)) {
    if (!entry.isFile || entry.name.includes(".")) continue;
    if (((await Deno.stat(join(debug, entry.name))).mode ?? 0) & 0o111) names.push(entry.name);
  }
  if (names.length === 0) throw new Error(`No binary was built in "${debug}"`);
  for (const name of names) {
    const [built, expected] = await Promise.all(
      [dir, reference].map((root) => runBinary(join(root, "target", "debug", name))),
    );
    if (built !== expected) {
      throw new Error(`Binary "${name}" printed "${built}", plain cargo's "${expected}"`);
    }
  }
  return names.sort();
}

async function runBinary(path: string): Promise<string> {
  const output = await new Deno.Command(path, { stdin: "null" }).output();
  if (!output.success) throw new Error(`Binary "${path}" failed with code ${output.code}`);
  return new TextDecoder().decode(output.stdout);
}
