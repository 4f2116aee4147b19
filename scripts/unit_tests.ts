/**
 * Which test files the fast loop (`deno task test:unit`, scripts/test_unit.sh) runs: every test
 * file under tests/ that drives no cargo.
 *
 * How a file is picked, by a rule rather than a list: a test file drives cargo when it imports
 * tests/_run.ts, directly or through the tests/ helpers it imports (tests/_harness.ts re-exports
 * it). That module is the one road from a test to cargo: `runCargo`, `runOldCargo`, the shared
 * warm cache and the front door it builds on import. Every other test file is a unit test. A new
 * test file so lands in the right loop by what it imports, and nobody keeps a list;
 * tests/unit_tests_test.ts checks that no file picked starts cargo by another road.
 *
 * Run it to print the picked files, one a line (scripts/test_unit.sh hands them to `deno test`).
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The module through which every test that drives cargo reaches it. */
export const CARGO_ROAD = "tests/_run.ts";

/** Relative module specifiers a file imports (static, re-exported and dynamic). */
export function relativeImports(source: string): string[] {
  const pattern = /(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+)["']/g;
  return [...source.matchAll(pattern)].map((match) => match[1]!);
}

/**
 * Whether the test file `path` (relative to `root`) reaches {@linkcode CARGO_ROAD} through its
 * imports of files under tests/ (src/ and backends/ never import tests/).
 */
export async function drivesCargo(path: string, root: string = ROOT): Promise<boolean> {
  const seen = new Set<string>();
  const visit = async (file: string): Promise<boolean> => {
    if (file === CARGO_ROAD) return true;
    if (seen.has(file) || !file.startsWith("tests/")) return false;
    seen.add(file);
    const source = await Deno.readTextFile(join(root, file));
    for (const specifier of relativeImports(source)) {
      const target = relative(root, resolve(root, dirname(file), specifier));
      if (await visit(target)) return true;
    }
    return false;
  };
  return await visit(path);
}

/** Every `*_test.ts` under tests/ (fixtures aside), relative to `root`, sorted. */
export async function testFiles(root: string = ROOT): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(join(root, dir))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory && entry.name !== "fixtures") await walk(path);
      else if (entry.isFile && entry.name.endsWith("_test.ts")) found.push(path);
    }
  };
  await walk("tests");
  return found.sort();
}

/** The test files the fast loop runs: those that do not {@linkcode drivesCargo}. */
export async function unitTestFiles(root: string = ROOT): Promise<string[]> {
  const files = await testFiles(root);
  const drives = await Promise.all(files.map((file) => drivesCargo(file, root)));
  return files.filter((_, i) => !drives[i]);
}

if (import.meta.main) {
  for (const file of await unitTestFiles()) console.log(file);
}
