/**
 * The one HTTP request the fetch-based stores (S3, plain HTTP) make: a `fetch` read in full under
 * a progress timeout, whose failures are {@linkcode StoreUnavailableError}s naming the store.
 * @module
 */

import { StoreUnavailableError } from "./store.ts";
import { errorMessage } from "../src/error_message.ts";
import { afterTimeout } from "../src/timeout.ts";

/** A response with its body read to the end. */
export interface FullResponse {
  status: number;
  statusText: string;
  headers: Headers;
  body: Uint8Array;
}

/** Options for {@linkcode fetchInFull}. */
export interface FetchInFullOptions {
  /** The store's location, for error messages. */
  location: string;
  /** Milliseconds without progress (headers, body bytes) before the request fails. */
  timeoutMs: number;
  /** Bytes sent: an upload shows no progress to watch, so each MiB adds a second to the wait. */
  uploadBytes?: number;
}

/**
 * The most a response may carry: more than any bundle (the front door's frames stop at 256 MiB),
 * so that a server streaming without end cannot run the daemon out of memory.
 */
const MAX_RESPONSE_BYTES = 512 * 1024 * 1024;
/**
 * A whole request, however steady its progress, ends after this many progress timeouts: a server
 * trickling a byte at a time must not hold a build's call for ever.
 */
const DEADLINE_TIMEOUTS = 24;

/**
 * Sends the request `makeRequest` builds (with the signal that aborts it) and reads the whole
 * answer, whatever its status.
 *
 * @throws {StoreUnavailableError} When the server cannot be reached, or stalls past the timeout.
 *
 * @example
 * ```ts ignore
 * import { fetchInFull } from "./_fetch.ts";
 * const response = await fetchInFull(
 *   (signal) => new Request("http://127.0.0.1:8080/cache/x", { signal }),
 *   { location: "http://127.0.0.1:8080/cache", timeoutMs: 5000 },
 * );
 * console.log(response.status);
 * ```
 */
export async function fetchInFull(
  makeRequest: (signal: AbortSignal) => Request | Promise<Request>,
  options: FetchInFullOptions,
): Promise<FullResponse> {
  const { location, timeoutMs } = options;
  const controller = new AbortController();
  const allowance = timeoutMs + Math.ceil((options.uploadBytes ?? 0) / 1048576) * 1000;
  let watchdog = arm(controller, allowance);
  const deadline = arm(controller, allowance + timeoutMs * DEADLINE_TIMEOUTS);
  try {
    const request = await makeRequest(controller.signal);
    const response = await fetch(request, { signal: controller.signal });
    watchdog.cancel();
    watchdog = arm(controller, timeoutMs);
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (response.body) {
      for await (const chunk of response.body) {
        chunks.push(chunk);
        size += chunk.length;
        if (size > MAX_RESPONSE_BYTES) {
          controller.abort();
          throw new StoreUnavailableError(location, `answer over ${MAX_RESPONSE_BYTES} bytes`);
        }
        watchdog.cancel();
        watchdog = arm(controller, timeoutMs);
      }
    }
    return {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
      body: concat(chunks, size),
    };
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw error;
    if (watchdog.fired || deadline.fired) {
      throw new StoreUnavailableError(location, `no answer within ${timeoutMs} ms`, {
        cause: error,
      });
    }
    // fetch wraps what happened ("Connection refused") in a generic "fetch failed".
    const detail = errorMessage(
      error instanceof Error && error.cause instanceof Error ? error.cause : error,
    );
    throw new StoreUnavailableError(location, `request failed: ${detail}`, { cause: error });
  } finally {
    watchdog.cancel();
    deadline.cancel();
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Aborts `controller` after `ms` unless cancelled; `fired` tells a timeout from other errors. */
function arm(controller: AbortController, ms: number): { cancel(): void; readonly fired: boolean } {
  let fired = false;
  const cancel = afterTimeout(ms, () => {
    fired = true;
    controller.abort();
  });
  return {
    cancel,
    get fired() {
      return fired;
    },
  };
}
