/** The message of anything thrown, for warnings and `error: …` lines. @module */

/** `error.message` for an Error, else the value as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
