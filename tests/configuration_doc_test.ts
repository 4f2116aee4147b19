// docs/configuration.md's table against the code: every setting of src/config/settings.ts with its
// variable and default, every environment-only variable of src/config/environment.ts, and that
// list against every CARGO_WARMUP_* name the program's source mentions. Pure: no cargo, no daemon.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { SETTINGS } from "../src/config/settings.ts";
import { ENVIRONMENT_VARIABLES } from "../src/config/environment.ts";
import { formatSize } from "../src/config/size.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DOC = join(ROOT, "docs", "configuration.md");
/** Where the program's own code lives: the TypeScript, the front door's Rust, the launcher. */
const CODE_DIRS = ["src", "backends", "bin"];

interface Row {
  key: string;
  env: string;
  default: string;
  meaning: string;
}

/** The rows of the table under `heading`, each cell trimmed, a cell's backticks kept. */
async function tableUnder(heading: string): Promise<Row[]> {
  const doc = await Deno.readTextFile(DOC);
  const section = doc.split(`\n## ${heading}\n`)[1]?.split(/\n## /)[0];
  assert.ok(section !== undefined, `docs/configuration.md has no "## ${heading}" section`);
  return section.split("\n").filter((line) => line.startsWith("|")).slice(2).map((line) => {
    const [key = "", env = "", value = "", meaning = ""] = line.split("|").slice(1, -1)
      .map((cell) => cell.trim());
    return { key: key.replace(/`/g, ""), env: env.replace(/`/g, ""), default: value, meaning };
  });
}

/** Every file under `dir`, recursively. */
async function* filesUnder(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* filesUnder(path);
    else if (entry.isFile) yield path;
  }
}

/** Every `CARGO_WARMUP_*` name the program's code mentions (reads, sets, or names in help). */
async function variablesInCode(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const dir of CODE_DIRS) {
    for await (const path of filesUnder(join(ROOT, dir))) {
      for (const match of (await Deno.readTextFile(path)).matchAll(/CARGO_WARMUP_[A-Z0-9_]+/g)) {
        names.add(match[0]);
      }
    }
  }
  return names;
}

/** A default as the docs write it: sizes as people write them, a path under `$CARGO_HOME`. */
function shownDefault(setting: typeof SETTINGS[number]): string | undefined {
  const value = typeof setting.default === "function"
    ? setting.default("$CARGO_HOME")
    : setting.default;
  if (value === undefined) return undefined;
  if (setting.type === "size" && typeof value === "number") return formatSize(value);
  return String(value);
}

Deno.test("configuration doc: every setting, in order, with its variable and its default", async () => {
  const rows = (await tableUnder("Every setting and variable")).filter((row) => row.key !== "");
  assert.deepEqual(rows.map((row) => row.key), SETTINGS.map((setting) => setting.key));
  for (const setting of SETTINGS) {
    const row = rows.find((row) => row.key === setting.key)!;
    assert.equal(row.env, setting.env, `the variable of "${setting.key}"`);
    assert.notEqual(row.meaning, "", `what "${setting.key}" is for`);
    const value = shownDefault(setting);
    if (value === undefined) {
      // A value in backticks would be a default the code does not have.
      assert.doesNotMatch(row.default, /`/, `"${setting.key}" has no default value`);
      continue;
    }
    assert.ok(
      row.default.includes(`\`${value}\``) || row.default.includes(`\`"${value}"\``),
      `the default of "${setting.key}" is \`${value}\`, the doc says ${row.default}`,
    );
    for (const name of setting.defaultVariables ?? []) {
      assert.ok(row.default.includes(`\`${name}\``), `"${setting.key}" defaults to ${name} first`);
    }
  }
});

Deno.test("configuration doc: every environment-only variable, in order, and who sets it", async () => {
  const rows = (await tableUnder("Every setting and variable")).filter((row) => row.key === "");
  assert.deepEqual(rows.map((row) => row.env), ENVIRONMENT_VARIABLES.map(({ name }) => name));
  for (const variable of ENVIRONMENT_VARIABLES) {
    const row = rows.find((row) => row.env === variable.name)!;
    assert.notEqual(row.meaning, "", `what ${variable.name} is for`);
    assert.equal(
      row.default === "set by cargo-warmup",
      variable.setBy === "cargo-warmup",
      `${variable.name} is set by ${variable.setBy}`,
    );
  }
});

Deno.test("environment variables: the list names exactly the CARGO_WARMUP_* names the code has", async () => {
  const settings = new Set(SETTINGS.map((setting) => setting.env));
  const inCode = [...await variablesInCode()].filter((name) => !settings.has(name)).sort();
  const listed = ENVIRONMENT_VARIABLES.map(({ name }) => name).sort();
  assert.deepEqual(
    listed,
    inCode,
    "src/config/environment.ts against the code under src/, backends/, bin/",
  );
  assert.equal(new Set(listed).size, listed.length, "each variable listed once");
});

Deno.test("configuration doc: the other programs' variables it names are read by the code", async () => {
  const doc = await Deno.readTextFile(DOC);
  const section = doc.split("\n## Other programs' variables it reads\n")[1] ?? "";
  const named = [...section.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((match) => match[1]!);
  assert.ok(named.length > 0, "the section names variables");
  let code = "";
  for (const dir of [...CODE_DIRS, "scripts"]) {
    for await (const path of filesUnder(join(ROOT, dir))) code += await Deno.readTextFile(path);
  }
  for (const name of new Set(named)) {
    assert.match(code, new RegExp(`\\b${name}\\b`), `${name} is read somewhere in the code`);
  }
});
