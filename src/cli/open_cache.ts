/**
 * The cache as the manager's commands see it: the effective configuration, the configured store
 * (local disk, with the remote behind it when one is configured) and the index.
 * @module
 */

import { openStore } from "../../backends/open_store.ts";
import type { LocalStore } from "../../backends/local.ts";
import type { Store } from "../../backends/store.ts";
import { loadConfig } from "../config/config.ts";
import type { WarmupConfig } from "../config/warmup_config.ts";

/** The configured cache, opened for a manager command. */
export interface ManagedCache {
  config: WarmupConfig;
  /** The local level. */
  local: LocalStore;
  /** The remote level, opened, when one is configured. */
  remote?: Store;
  close(): Promise<void>;
}

/** Opens the cache configured for the current directory and environment. */
export async function openManagedCache(
  env: Record<string, string> = Deno.env.toObject(),
): Promise<ManagedCache> {
  const { config } = await loadConfig({ env });
  const levels = openStore(config, {
    warn: (message) => console.error(`warning: ${message}`),
  });
  const remote = await levels.openRemote();
  return {
    config,
    local: levels.local,
    ...(remote ? { remote } : {}),
    close: () => levels.close(),
  };
}
