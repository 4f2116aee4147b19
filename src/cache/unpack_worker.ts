/**
 * The worker staging unpacks bundles in (staging.ts), on the daemon's second core: given a
 * verified envelope payload and its key, it posts back the bundle, its buffers transferred.
 * @module
 */

/// <reference lib="deno.worker" />

import { unpackPayload } from "../bundle/bundle.ts";
import { errorMessage } from "../error_message.ts";

/** What the daemon asks. */
export interface UnpackRequest {
  id: number;
  payload: Uint8Array;
  key: string;
}

self.onmessage = async (event: MessageEvent<UnpackRequest>) => {
  const { id, payload, key } = event.data;
  try {
    const bundle = await unpackPayload(payload, key);
    // The files are views of one unpacked archive: its buffer moves once, without a copy.
    const buffers = new Set([...bundle.files.values()].map((bytes) => bytes.buffer as ArrayBuffer));
    self.postMessage({ id, bundle }, { transfer: [...buffers] });
  } catch (error) {
    self.postMessage({ id, error: errorMessage(error) });
  }
};
