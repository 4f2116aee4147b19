// A call for the cache layer's unit tests: a request of one build whose stderr (where the cache's
// warnings go) is kept for the test to read, with its runtime dir (the warn-once markers) in a
// directory of the test's.

import { type DispatchRequest, PhaseClock } from "../src/dispatch/request.ts";

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
  options: { buildId?: number; env?: Record<string, string> } = {},
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
    stdout: { write: () => Promise.resolve() },
    // Kept as written, so that a warning is there as soon as the cache has given it.
    stderr: { write: (bytes) => Promise.resolve(void (stderr += decoder.decode(bytes))) },
    phases: new PhaseClock(),
    via: "in-process",
    afterReply: [],
  };
  return { request, stderr: () => stderr };
}
