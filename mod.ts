/**
 * cargo-warmup: a RUSTC_WRAPPER that compiles registry crates once and serves the artefacts to
 * every later build, and the manager of that cache. Run as a program, this is the entry point
 * of both the launcher (bin/cargo-warmup) and the compiled binary.
 * @module
 */

import { main } from "./src/cli/main.ts";

export { main };
export type { Store, StoredEntry, StoreHealth } from "./backends/store.ts";
export { createLocalStore } from "./backends/local.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
