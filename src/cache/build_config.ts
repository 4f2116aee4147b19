/**
 * The configuration of a build, as the dispatcher resolves it for each call: the `[warmup]` tables
 * of the `.cargo/config.toml` files cargo reads (looked up from where cargo was started) and the
 * `CARGO_WARMUP_*` environment. Cargo reads its configuration once per build; a long-lived
 * dispatcher (the daemon) does the same, remembering each build's result.
 * @module
 */

import { HTTP_TOKEN_VARIABLE } from "../../backends/open_store.ts";
import { loadConfig } from "../config/config.ts";
import type { WarmupConfig } from "../config/warmup_config.ts";
import { sha256Hex } from "../digest.ts";
import type { CacheCall } from "./call.ts";

/** Environment that can change the configuration of a build. */
const CONFIG_ENV = /^(CARGO_WARMUP_|CARGO_HOME$|HOME$|AWS_REGION$|AWS_DEFAULT_REGION$)/;
/** Environment that S3 credentials come from: a different value is a different store. */
const AWS_CREDENTIAL_ENV = /^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|PROFILE)$/;
/** Builds come and go: the memo is dropped whole when it holds this many. */
const MAX_REMEMBERED_BUILDS = 64;

/** Each build's configuration, read once per build when `remember` is set. */
export class BuildConfigs {
  readonly #configs = new Map<string, Promise<WarmupConfig>>();
  readonly #remember: boolean;

  constructor(remember: boolean) {
    this.#remember = remember;
  }

  /** The configuration of `request`'s build; rejects when a configuration file is malformed. */
  configOf(request: CacheCall): Promise<WarmupConfig> {
    const load = () =>
      loadConfig({ cwd: request.cargoCwd, env: request.env }).then((loaded) => loaded.config);
    if (!this.#remember) return load();
    const settings = Object.entries(request.env).filter(([name]) => CONFIG_ENV.test(name)).sort();
    const key = JSON.stringify([request.buildId, request.cargoCwd, settings]);
    let config = this.#configs.get(key);
    if (config === undefined) {
      if (this.#configs.size >= MAX_REMEMBERED_BUILDS) this.#configs.clear();
      config = load();
      this.#configs.set(key, config);
      // A configuration that failed to load is read again by the next call.
      config.catch(() => this.#configs.delete(key));
    }
    return config;
  }
}

/**
 * Which cache a configuration uses: two requests with the same store settings and credentials
 * share one cache (settings of what is cached or warmed, like `workspace`, are each build's own).
 */
export function cacheIdentity(config: WarmupConfig, env: Record<string, string>): string {
  const credentials = config.backend === "s3"
    ? Object.entries(env).filter(([name]) => AWS_CREDENTIAL_ENV.test(name)).sort()
    : config.backend === "http"
    ? [env[HTTP_TOKEN_VARIABLE] ?? ""]
    : [];
  const { workspace: _, projects: _projects, autoRewarm: _autoRewarm, place: _place, ...store } =
    config;
  return sha256Hex(JSON.stringify([store, credentials]));
}
