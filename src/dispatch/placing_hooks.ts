/**
 * What the dispatcher tells placing (src/place/) of a build's calls: the units they served or
 * stored (captured once the build is over) and cargo's version probe (answered once the build's
 * predicted units are placed). Whoever runs the dispatcher (the daemon, the in-process launcher)
 * hands it theirs; dispatch/ knows placing only by this, so it stands below place/.
 * @module
 */

import type { Cache } from "../cache/cache.ts";
import type { CacheSession } from "../cache/session.ts";
import type { DispatchRequest } from "./request.ts";
import type { Unit } from "./unit.ts";

/** A build-script run as the dispatcher served or stored it. */
export interface RunOfBuild {
  key: string;
  crate: string;
  version: string;
  /** The run's OUT_DIR. */
  outDir: string;
  manifestDir: string;
}

/** The dispatcher's calls into placing; none of them may fail the call. */
export interface PlacingHooks {
  /** A crate compile the cache served or stored (not a failure's replay). */
  compiled(unit: Unit, cache: Cache, request: DispatchRequest): void;
  /** A build-script run the cache served or stored. */
  ran(run: RunOfBuild, cache: Cache, request: DispatchRequest): void;
  /** Cargo's version probe (`rustc -vV`, asked for no crate): answered once this resolves. */
  probed(session: CacheSession, request: DispatchRequest): Promise<void>;
}
