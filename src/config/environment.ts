/**
 * The one list of cargo-warmup's environment-only variables: those no `[warmup]` key sets (the
 * settings' own variables follow from settings.ts). Each reader keeps its own read, since the
 * front door and the launcher are not TypeScript; this list is what `cargo-warmup config --help`
 * and docs/configuration.md show, and tests/configuration_doc_test.ts holds it to every
 * `CARGO_WARMUP_*` name the code mentions.
 * @module
 */

/** One variable: its name, what it does, and whether people set it or the program does. */
export interface EnvironmentVariable {
  name: string;
  /** One line for `cargo-warmup config --help` and the docs. */
  meaning: string;
  /** `"you"`: a user's switch; `"cargo-warmup"`: set by the program for its own processes. */
  setBy: "you" | "cargo-warmup";
}

/**
 * Every environment-only variable, people's first.
 *
 * @example
 * ```ts
 * import { ENVIRONMENT_VARIABLES } from "./environment.ts";
 * const off = ENVIRONMENT_VARIABLES.find(({ name }) => name === "CARGO_WARMUP_DISABLE")!;
 * console.log(off.setBy); // "you"
 * ```
 */
export const ENVIRONMENT_VARIABLES: readonly EnvironmentVariable[] = [
  {
    name: "CARGO_WARMUP_DISABLE",
    meaning: "1, true, yes or on: this build runs without the cache, as if there were no wrapper",
    setBy: "you",
  },
  {
    name: "CARGO_WARMUP_LOG",
    meaning: "A file every call appends one JSON line to (crate, outcome, reason, key, phases)",
    setBy: "you",
  },
  {
    name: "CARGO_WARMUP_HTTP_TOKEN",
    meaning: "A bearer token for backend http; never a setting, as a config file may be committed",
    setBy: "you",
  },
  {
    name: "CARGO_WARMUP_DAEMON",
    meaning: "0, false, off or no: no daemon, every call serves itself in a process of its own",
    setBy: "you",
  },
  {
    name: "CARGO_WARMUP_RUNTIME_DIR",
    meaning: "Where the daemon's socket and log live (default $XDG_RUNTIME_DIR/cargo-warmup)",
    setBy: "you",
  },
  {
    name: "CARGO_WARMUP_DAEMON_TIMEOUT_MS",
    meaning: "How long the front door waits on the daemon before compiling itself (60000)",
    setBy: "you",
  },
  {
    name: "CARGO_WARMUP_DAEMON_STARTUP_MS",
    meaning: "How long after starting a daemon calls wait for it to listen (1500)",
    setBy: "you",
  },
  {
    name: "CARGO_WARMUP_DENO",
    meaning: "The Deno the launcher (bin/cargo-warmup) runs, instead of the pinned one in .tools/",
    setBy: "you",
  },
  {
    name: "CARGO_WARMUP_PRINT_DENO",
    meaning: "1: the launcher prints the Deno it would run and exits (scripts/deno.sh)",
    setBy: "you",
  },
  {
    name: "CARGO_WARMUP_EXE",
    meaning: "The program to start for daemons, warm-ups and front doors (the launcher sets it)",
    setBy: "cargo-warmup",
  },
  {
    name: "CARGO_WARMUP_IN_PROCESS",
    meaning: "Set by the front door: serve this call in this process, do not hand it back",
    setBy: "cargo-warmup",
  },
  {
    name: "CARGO_WARMUP_TAG",
    meaning: "The version tag baked into the front door when it is compiled",
    setBy: "cargo-warmup",
  },
  {
    name: "CARGO_WARMUP_PROGRAM",
    meaning: "The program path baked into the front door when it is compiled",
    setBy: "cargo-warmup",
  },
  {
    name: "CARGO_WARMUP_WARMING",
    meaning:
      "Marks a warm-up's builds: counted as warmed, never predicted, their projects not kept",
    setBy: "cargo-warmup",
  },
  {
    name: "CARGO_WARMUP_INIT_LOG",
    meaning: "The log a background warm-up writes to, for status to show",
    setBy: "cargo-warmup",
  },
];
