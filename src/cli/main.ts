/**
 * The program's front door. Cargo runs it as RUSTC_WRAPPER with a rustc path first (dispatch
 * mode); people run `cargo-warmup <command>` or `cargo warmup <command>` (manager mode).
 * @module
 */

import { basename } from "node:path";
import { VERSION } from "../version.ts";
import { UsageError } from "./usage_error.ts";
import { errorMessage } from "../error_message.ts";

export const MAIN_HELP = `cargo-warmup ${VERSION}: serve compiled registry crates to every build

Usage:
  RUSTC_WRAPPER=cargo-warmup cargo build    Use the cache in a build
  cargo-warmup <command> [options]          Manage the cache (also: cargo warmup <command>)

Commands:
  init      Pre-warm the cache (--tier=N, --lockfile PATH, --manifest PATH, --rewarm)
  status    Show what is cached, hits, misses and time saved
  explain   Why crates were compiled, not served (--last, or a crate)
  report    Write a build's timeline as an HTML page (--last, --build ID, --open)
  gc        Evict least recently used entries (--max-size SIZE)
  config    Show the effective configuration and where each value came from
  daemon    Run, start, stop or show the warm-cache daemon (run|start|stop|status)
  frontdoor Build the native RUSTC_WRAPPER that talks to the daemon; print its path
  keygen    Make an Ed25519 key pair for the writers a team cache trusts (--out DIR)
  prepare   Place the dependencies an earlier build of this Cargo.lock used in target/

Options:
  -h, --help       Print help (also: cargo-warmup <command> --help)
  -V, --version    Print the version`;

type Command = (argv: string[]) => Promise<number>;

/** Manager commands, each loaded only when asked for so that dispatch stays light. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  status: async () => (await import("./status.ts")).runStatus,
  explain: async () => (await import("./explain.ts")).runExplain,
  report: async () => (await import("./report.ts")).runReport,
  gc: async () => (await import("./gc.ts")).runGc,
  config: async () => (await import("./config_command.ts")).runConfigCommand,
  init: async () => (await import("./init.ts")).runInit,
  daemon: async () => (await import("./daemon.ts")).runDaemonCommand,
  frontdoor: async () => (await import("./frontdoor.ts")).runFrontDoorCommand,
  keygen: async () => (await import("./keygen.ts")).runKeygen,
  prepare: async () => (await import("./prepare.ts")).runPrepare,
};

/** Runs the program with `argv`; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first !== undefined && isCompiler(first)) {
    const [{ dispatchInProcess }, { Placing }] = await Promise.all([
      import("../dispatch/dispatch.ts"),
      import("../place/placing.ts"),
    ]);
    return await dispatchInProcess(first, rest, new Placing());
  }
  // `cargo warmup status` runs `cargo-warmup warmup status`.
  return await manage(first === "warmup" ? rest : argv);
}

async function manage(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === "help" || command === "-h" || command === "--help") {
      console.log(MAIN_HELP);
      return command === undefined ? 2 : 0;
    }
    if (command === "-V" || command === "--version") {
      console.log(`cargo-warmup ${VERSION}`);
      return 0;
    }
    const load = COMMANDS[command];
    if (load === undefined) {
      throw new UsageError(
        command.startsWith("-") ? `unexpected option "${command}"` : `unknown command "${command}"`,
      );
    }
    return await (await load())(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`error: ${error.message}\n\nRun 'cargo-warmup --help' for usage.`);
      return 2;
    }
    // Known faults (a bad config file, an unreachable store) read best without a stack trace.
    console.error(`error: ${errorMessage(error)}`);
    return 1;
  }
}

/**
 * Cargo passes the compiler as the first argument: a path, or a name like `rustc`. The one rule
 * of "is this a compiler call": the front door (src/frontdoor/cargo_warmup.rs) and the launcher
 * (bin/cargo-warmup), which decide before this program runs, spell it the same in their languages.
 */
function isCompiler(arg: string): boolean {
  if (arg.startsWith("-") || arg in COMMANDS || arg === "warmup" || arg === "help") return false;
  const name = basename(arg);
  return arg.includes("/") || /rustc|clippy-driver/.test(name);
}
