/**
 * `cargo-warmup report`: writes a build's timeline from the build journal as one self-contained
 * HTML page (src/journal/report_html.ts), prints its path and, with `--open`, shows it in a
 * browser.
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { findProgram } from "../processes.ts";
import { openManagedCache } from "./open_cache.ts";
import { openIndex } from "../index/index_db.ts";
import { settleDaemons } from "../daemon/settle.ts";
import { runtimeDirOf } from "../runtime_dir.ts";
import { parseFlags } from "./parse_flags.ts";
import { UsageError } from "./usage_error.ts";
import { candidateBuilds, noBuildMessage } from "../journal/pick_build.ts";
import { renderReport } from "../journal/report_html.ts";
import { workspaceRootFrom } from "../workspace_root.ts";

/** The page's file name in its default directory. */
export const REPORT_FILE = "cargo-warmup-report.html";

const REPORT_HELP = `Usage: cargo-warmup report [--last | --build ID] [--all] [--out PATH] [--open]

Writes a build's timeline as one self-contained HTML page (no network needed) and prints its
path: a bar per rustc call and build-script run, placed by start and duration and coloured
served / compiled and stored / not cacheable (hover for the reason and details), with the time
saved, bytes restored, what a hit cost (p50, p90) and the counts.

Options:
  --last        The most recent build of the project in this directory (the default)
  --build ID    That build (ids as 'explain' and 'report' print them)
  --all         The most recent build of any project
  --out PATH    Write the page there (default: target/${REPORT_FILE} of the project
                in this directory, else ${REPORT_FILE} in the cache directory)
  --open        Open the page in a browser ($BROWSER, else xdg-open or open)
  -h, --help    Print help`;

/** Runs `report`; resolves to the exit code. */
export async function runReport(argv: string[]): Promise<number> {
  const { values } = parseFlags("report", argv, {
    last: { type: "boolean" },
    build: { type: "string" },
    all: { type: "boolean" },
    out: { type: "string" },
    open: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(REPORT_HELP);
    return 0;
  }
  if (values.last && values.build !== undefined) {
    throw new UsageError("report: --last or --build ID, not both");
  }
  if (values.out === "") throw new UsageError("report: --out needs a path");
  const env = Deno.env.toObject();
  // What the last build left the daemon to write is in the journal too.
  await settleDaemons(runtimeDirOf(env), 5_000);
  const cache = await openManagedCache(env);
  const index = openIndex(cache.config.dir, (message) => console.error(`warning: ${message}`));
  let path: string;
  try {
    const choice = {
      ...(values.build !== undefined ? { build: values.build } : {}),
      ...(values.all ? { all: true } : {}),
    };
    const build = candidateBuilds(index.journal, choice)[0];
    if (build === undefined) {
      console.error(`error: ${noBuildMessage(choice)}`);
      return 1;
    }
    const html = renderReport(build, index.journal.callsOf(build.id));
    path = values.out === undefined
      ? defaultReportPath(Deno.cwd(), cache.config.dir, env)
      : resolve(values.out);
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeTextFile(path, html);
  } finally {
    index.close();
    await cache.close();
  }
  console.log(path);
  if (values.open) {
    const browser = openInBrowser(path, env);
    if (browser === undefined) {
      console.error("no browser found (set $BROWSER, or install xdg-open): open the file yourself");
    }
  }
  return 0;
}

/**
 * Where the page goes without `--out`: the target directory of the project around `cwd`
 * (`$CARGO_TARGET_DIR` when set), else the cache directory.
 *
 * @example
 * ```ts
 * import { defaultReportPath } from "./report.ts";
 * const path = defaultReportPath("/", "/home/me/.cargo/warmup-cache", {});
 * if (path !== "/home/me/.cargo/warmup-cache/cargo-warmup-report.html") throw new Error(path);
 * ```
 */
export function defaultReportPath(
  cwd: string,
  cacheDir: string,
  env: Record<string, string | undefined>,
): string {
  const project = workspaceRootFrom(cwd);
  if (project === undefined) return join(cacheDir, REPORT_FILE);
  const target = env.CARGO_TARGET_DIR ? resolve(project, env.CARGO_TARGET_DIR) : "target";
  return resolve(project, target, REPORT_FILE);
}

/**
 * Starts a browser on `path` without waiting for it: each command of `$BROWSER` (colon
 * separated, `%s` standing for the file, else the file appended) that is on the PATH, else
 * `open` on macOS or `xdg-open` elsewhere. Resolves to the program started, or undefined when
 * there is none.
 *
 * @example
 * ```ts ignore
 * openInBrowser("/tmp/report.html", { BROWSER: "firefox", PATH: "/usr/bin" });
 * ```
 */
export function openInBrowser(
  path: string,
  env: Record<string, string | undefined>,
): string | undefined {
  const url = pathToFileURL(path).href;
  const commands = (env.BROWSER ?? "").split(":").map((command) => command.trim().split(/\s+/))
    .filter((words) => words[0]);
  commands.push([Deno.build.os === "darwin" ? "open" : "xdg-open"]);
  for (const [name, ...args] of commands) {
    const program = findProgram(name!, env);
    if (program === undefined) continue;
    const withUrl = args.some((arg) => arg.includes("%s"))
      ? args.map((arg) => arg.replaceAll("%s", url))
      : [...args, url];
    try {
      const child = new Deno.Command(program, {
        args: withUrl,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      child.unref();
      return program;
    } catch {
      // not runnable after all: try the next
    }
  }
  return undefined;
}
