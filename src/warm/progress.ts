/**
 * Warm-up progress: the line `init` shows (units done / total, current crate, elapsed,
 * estimate) and the state file `warm/state.json` in the cache dir that `status` reads while a
 * warm-up runs, in the foreground or the background.
 * @module
 */

import { join } from "node:path";
import { formatDuration } from "../units.ts";
import { warmDir } from "./warm_dir.ts";
import { writeFileAtomicSync } from "../write_atomic.ts";

/** What `warm/state.json` holds. */
export interface WarmState {
  pid: number;
  /** The command line, e.g. `init --tier=1`. */
  command: string;
  startedAt: string;
  updatedAt: string;
  phase: "resolving" | "building" | "done" | "failed";
  done: number;
  total: number;
  current: string;
  /** The background log, when there is one. */
  log?: string;
  /** The rustc release the warm-up builds with. */
  rustc?: string;
  summary?: string;
}

/** The state file of the current or last warm-up. */
export function statePath(cacheDir: string): string {
  return join(warmDir(cacheDir), "state.json");
}

/** Reads the state file; undefined when no warm-up ever ran or it is unreadable. */
export async function readWarmState(cacheDir: string): Promise<WarmState | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(statePath(cacheDir))) as WarmState;
  } catch {
    return undefined;
  }
}

/**
 * Renders a progress line.
 *
 * @example
 * ```ts
 * import { progressLine } from "./progress.ts";
 * console.log(progressLine({ done: 30, total: 120, current: "syn v2.0.1", elapsedMs: 20_000 }));
 * // [######··················]  30/120 units  syn v2.0.1  20.0 s elapsed, ~1m 0s left
 * ```
 */
export function progressLine(
  progress: { done: number; total: number; current: string; elapsedMs: number },
): string {
  const { done, elapsedMs } = progress;
  const total = Math.max(progress.total, done);
  const width = 24;
  const filled = total === 0 ? 0 : Math.round((done / total) * width);
  const bar = "#".repeat(filled) + "·".repeat(width - filled);
  const estimate = done === 0 || done >= total
    ? ""
    : `, ~${formatDuration((elapsedMs / done) * (total - done))} left`;
  const count = `${String(done).padStart(String(total).length)}/${total} units`;
  return `[${bar}] ${count}  ${progress.current}  ${formatDuration(elapsedMs)} elapsed${estimate}`;
}

/** Shows progress on stderr (redrawn in place on a terminal) and keeps the state file current. */
export class ProgressReporter {
  readonly #cacheDir: string;
  readonly #state: WarmState;
  readonly #started = performance.now();
  readonly #interactive: boolean;
  readonly #quiet: boolean;
  #lastWrite = 0;
  #lastPrinted = "";

  constructor(
    cacheDir: string,
    state: Omit<WarmState, "pid" | "startedAt" | "updatedAt" | "done" | "total" | "current">,
    options: { quiet?: boolean } = {},
  ) {
    this.#cacheDir = cacheDir;
    const now = new Date().toISOString();
    this.#state = {
      pid: Deno.pid,
      startedAt: now,
      updatedAt: now,
      done: 0,
      total: 0,
      current: "",
      ...state,
    };
    this.#interactive = Deno.stderr.isTerminal();
    this.#quiet = options.quiet ?? false;
  }

  get elapsedMs(): number {
    return performance.now() - this.#started;
  }

  /** Updates the figures; redraws at most every 100 ms and saves the state every second. */
  update(change: Partial<Pick<WarmState, "done" | "total" | "current" | "phase" | "rustc">>): void {
    Object.assign(this.#state, change);
    const now = performance.now();
    if (this.#interactive && !this.#quiet && now - this.#lastWrite > 100) {
      this.#draw();
    }
    if (now - this.#lastWrite > 1000 || change.phase !== undefined) {
      this.#lastWrite = now;
      this.#save();
    }
  }

  /** Prints a message on its own line (above the progress line on a terminal). */
  note(message: string): void {
    if (this.#interactive && this.#lastPrinted) Deno.stderr.writeSync(encode("\r\x1b[2K"));
    console.error(message);
    this.#lastPrinted = "";
  }

  /** A line for logs: printed when not on a terminal, at milestones. */
  milestone(): void {
    if (!this.#interactive && !this.#quiet) console.error(this.line());
  }

  line(): string {
    return progressLine({ ...this.#state, elapsedMs: this.elapsedMs });
  }

  /** Final state: clears the progress line and records the outcome. */
  finish(phase: "done" | "failed", summary: string): void {
    if (this.#interactive && this.#lastPrinted) Deno.stderr.writeSync(encode("\r\x1b[2K"));
    this.#lastPrinted = "";
    this.#state.phase = phase;
    this.#state.summary = summary;
    this.#save();
  }

  #draw(): void {
    const columns = (() => {
      try {
        return Deno.consoleSize().columns;
      } catch {
        return 100;
      }
    })();
    const line = this.line().slice(0, columns - 1);
    Deno.stderr.writeSync(encode(`\r\x1b[2K${line}`));
    this.#lastPrinted = line;
  }

  #save(): void {
    this.#state.updatedAt = new Date().toISOString();
    try {
      Deno.mkdirSync(warmDir(this.#cacheDir), { recursive: true });
      writeFileAtomicSync(statePath(this.#cacheDir), JSON.stringify(this.#state, null, 2) + "\n");
    } catch {
      // The state file only feeds `status`; a read-only cache dir must not stop the warm-up.
    }
  }
}

function encode(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
