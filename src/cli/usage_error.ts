/**
 * The error for a bad command line: main() prints it as `error: …` with a hint and exits 2.
 * @module
 */

/** A command line that cannot be run as written (unknown command, flag or value). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
