// A call for the cache layer's unit tests: a request of one build whose stderr (where the cache's
// warnings go) is kept for the test to read, with its runtime dir (the warn-once markers) in a
// directory of the test's; and a cache on local disk opened for it as a build's first call would.

import { join } from "node:path";
import type { BundleMeta } from "../src/bundle/bundle.ts";
import type { Cache } from "../src/cache/cache.ts";
import { CacheSession } from "../src/cache/session.ts";
import type { ArtefactRow } from "../src/index/index_db.ts";
import { Builds } from "../src/cache/build_of.ts";
import { PhaseClock } from "../src/cache/call.ts";
import type { DispatchRequest } from "../src/dispatch/request.ts";

/** A {@linkcode testCall}'s request and what it was told. */
export interface TestCall {
  request: DispatchRequest;
  /** Everything written to the call's stderr so far (the cache's warnings). */
  stderr(): string;
}

/**
 * A call of build `buildId` (a live pid: a build is known by its process and when it started;
 * default this process) in `runtimeDir`, with `env` added to its environment.
 *
 * @example
 * ```ts ignore
 * const call = testCall(join(dir.path, "run"));
 * index.use(call.request, () => { throw new Error("database is locked"); });
 * assert.match(call.stderr(), /locked or broken/);
 * ```
 */
export function testCall(
  runtimeDir: string,
  options: { buildId?: number; env?: Record<string, string>; builds?: Builds } = {},
): TestCall {
  let stderr = "";
  const decoder = new TextDecoder();
  const request: DispatchRequest = {
    rustc: "rustc",
    argv: [],
    env: { CARGO_WARMUP_RUNTIME_DIR: runtimeDir, ...options.env },
    cwd: "/",
    cargoCwd: "/",
    buildId: String(options.buildId ?? Deno.pid),
    builds: options.builds ?? new Builds(),
    stdout: { write: () => Promise.resolve() },
    // Kept as written, so that a warning is there as soon as the cache has given it.
    stderr: { write: (bytes) => Promise.resolve(void (stderr += decoder.decode(bytes))) },
    phases: new PhaseClock(),
    via: "in-process",
    afterReply: [],
  };
  return { request, stderr: () => stderr };
}

/** A cache opened by {@linkcode openTestCache}; dispose of it to close it. */
export interface TestCache extends AsyncDisposable {
  cache: Cache;
  call: TestCall;
  session: CacheSession;
}

/**
 * The local cache `dir/cache` as a call of this process's build gets it from a session (its
 * runtime dir `dir/run`, a private CARGO_HOME), with `env` added to the call's environment.
 *
 * @example
 * ```ts ignore
 * await using test = await openTestCache(dir.path);
 * await storeEntry(entry, test.cache, test.call.request);
 * ```
 */
export async function openTestCache(
  dir: string,
  env: Record<string, string> = {},
): Promise<TestCache> {
  const session = new CacheSession();
  const call = testCall(join(dir, "run"), {
    builds: session.builds,
    env: { CARGO_HOME: join(dir, "cargo-home"), CARGO_WARMUP_DIR: join(dir, "cache"), ...env },
  });
  const got = await session.cacheFor(call.request);
  if (!("config" in got)) throw new Error(`No cache for the test: ${got.reason}`);
  return {
    cache: got.cache,
    call,
    session,
    async [Symbol.asyncDispose]() {
      session.release(call.request);
      await session.close();
    },
  };
}

/** An index row for an entry of `meta`, as the dispatcher records one (values of a sample unit). */
export function rowOfSample(meta: BundleMeta, size: number): ArtefactRow {
  return {
    key: meta.key,
    crate: meta.crate,
    version: meta.version,
    kind: meta.kind,
    crateTypes: "lib",
    source: "registry+https://github.com/rust-lang/crates.io-index",
    features: "",
    profile: "dev",
    target: "x86_64-unknown-linux-gnu",
    rustc: "1.95.0",
    size,
    compileMs: meta.compileMs,
  };
}
