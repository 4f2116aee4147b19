/** The program's version, printed by `--version` and recorded nowhere else. @module */

/** cargo-warmup's version. */
export const VERSION = "0.1.0";
