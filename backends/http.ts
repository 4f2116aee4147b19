/**
 * The plain HTTP store, for the caches that speak GET/HEAD/PUT/DELETE of one URL per entry
 * (nginx WebDAV, bazel-remote's `/ac/`, Artifactory-style generic repositories): each bundle is
 * `<url><key>`. HTTP has no listing: where the server answers the directory URL with nginx's
 * `autoindex_format json` it is used, else the store lists nothing (status counts no entries, gc
 * prunes none). Last use is recorded as S3's is, with `used/<key>` markers.
 * Imported only when the HTTP backend is configured.
 * @module
 */

import type { Store, StoredEntry, StoreHealth } from "./store.ts";
import { StoreUnavailableError } from "./store.ts";
import { errorMessage } from "../src/error_message.ts";
import { redactUrl } from "../src/redact_url.ts";
import { fetchInFull, type FullResponse } from "./_fetch.ts";
import { lastUseMarkers, USED_DIR, withMarkedUse } from "./_last_use.ts";
import { assertStoreName, isCacheKey, isReservedName } from "./local_layout.ts";

/** Options for {@linkcode createHttpStore}. */
export interface HttpStoreOptions {
  /**
   * `http(s)://[user[:password]@]host[:port]/path/`: the directory the bundles are kept in (a
   * missing final `/` is added). A user and password in it are sent as basic authentication.
   */
  url: string;
  /** A bearer token (`Authorization: Bearer …`); not together with credentials in the URL. */
  token?: string;
  /** Record each read's time for LRU gc; read-only clients turn this off. Default true. */
  recordUse?: boolean;
  /** Milliseconds without progress (headers, body bytes) before a request fails; default 5000. */
  timeoutMs?: number;
}

/** What a store that answers the directory URL this way can list (nginx's JSON autoindex). */
interface IndexEntry {
  name: string;
  type: string;
  mtime: string;
  size: number;
}

/** A key no writer uses: a HEAD of it shows the server reachable and the credentials accepted. */
const PROBE_KEY = "0".repeat(64);

/**
 * A store on a plain HTTP cache server.
 *
 * @throws {TypeError} For a URL that is not one, not http(s), has a query or fragment, or has
 * credentials as well as a token; or a token that cannot be sent in a header. The messages never
 * show the password or token.
 *
 * @example
 * ```ts ignore
 * import { createHttpStore } from "./http.ts";
 * const store = createHttpStore({ url: "https://cache.example/rust/", token: Deno.env.get("TOKEN") });
 * console.log(store.location, await store.health());
 * await store.close();
 * ```
 */
export function createHttpStore(options: HttpStoreOptions): Store {
  const { base, location, authorization } = parseCacheUrl(options.url, options.token);
  const timeoutMs = options.timeoutMs ?? 5000;

  /** One request to `name` (relative to the base URL), answered in full. */
  function request(method: string, name: string, body?: Uint8Array): Promise<FullResponse> {
    return fetchInFull((signal) => {
      const headers = new Headers();
      if (authorization) headers.set("authorization", authorization);
      if (method === "GET" && name.endsWith("/")) headers.set("accept", "application/json");
      return new Request(`${base}${name}`, {
        method,
        headers,
        signal,
        // A redirect would carry the credentials elsewhere, or lose them: it is an error.
        redirect: "manual",
        ...(body ? { body: body as Uint8Array<ArrayBuffer> } : {}),
      });
    }, { location, timeoutMs, uploadBytes: body?.length ?? 0 });
  }

  /** Throws StoreUnavailableError for any status but the expected ones. */
  function check(response: FullResponse, expected: (status: number) => boolean): void {
    if (expected(response.status)) return;
    const status = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
    const detail = response.status === 401 || response.status === 403
      ? `access denied (${status}): check the credentials`
      : response.status >= 300 && response.status < 400
      ? `${status}: redirects are not followed`
      : status;
    throw new StoreUnavailableError(location, detail);
  }

  const bundleName = (key: string) => {
    assertStoreName(key);
    return key;
  };
  const markers = lastUseMarkers(
    options.recordUse ?? true,
    (key) => request("PUT", `${USED_DIR}${key}`, new Uint8Array(0)),
  );

  /**
   * The files of the directory `name` named as `wanted` accepts (bundles by default), as the
   * server's JSON index gives them, or undefined when it gives none. Refused credentials and
   * server errors are outages; any other answer: no listing.
   */
  async function listDirectory(
    name: string,
    wanted: (file: string) => boolean = isCacheKey,
  ): Promise<Map<string, StoredEntry> | undefined> {
    const response = await request("GET", name);
    check(response, (status) => status !== 401 && status < 500);
    if (response.status !== 200) return undefined;
    let index: unknown;
    try {
      index = JSON.parse(new TextDecoder().decode(response.body));
    } catch {
      return undefined;
    }
    if (!Array.isArray(index)) return undefined;
    const files = new Map<string, StoredEntry>();
    for (const item of index as Partial<IndexEntry>[]) {
      if (item?.type !== "file" || typeof item.name !== "string" || !wanted(item.name)) {
        continue;
      }
      files.set(item.name, {
        key: item.name,
        size: Number(item.size) || 0,
        lastUsed: Date.parse(item.mtime ?? "") || 0,
      });
    }
    return files;
  }

  return {
    kind: "http",
    location,

    async get(key) {
      const response = await request("GET", bundleName(key));
      if (response.status === 404) return undefined;
      check(response, (status) => status === 200);
      markers.touch(key);
      return response.body;
    },

    async put(key, bundle) {
      check(await request("PUT", bundleName(key), bundle), isSuccess);
    },

    async has(key) {
      const response = await request("HEAD", bundleName(key));
      if (response.status === 404) return false;
      check(response, (status) => status === 200);
      return true;
    },

    async delete(key) {
      const gone = (status: number) => isSuccess(status) || status === 404;
      check(await request("DELETE", bundleName(key)), gone);
      // The marker may never have been written, or the server may not take that path.
      await request("DELETE", `${USED_DIR}${key}`);
    },

    async list() {
      const bundles = await listDirectory("");
      if (bundles === undefined) return [];
      const used = new Map<string, number>();
      for (const [key, marker] of await listDirectory(USED_DIR) ?? []) {
        used.set(key, marker.lastUsed);
      }
      return withMarkedUse(bundles.values(), used);
    },

    async listReserved(word) {
      const files = await listDirectory(
        "",
        (name) => isReservedName(name) && name.startsWith(`${word}-`),
      );
      return [...files?.values() ?? []];
    },

    async health(): Promise<StoreHealth> {
      const started = performance.now();
      try {
        check(await request("HEAD", PROBE_KEY), (status) => status === 200 || status === 404);
        const took = `reachable, ${Math.round(performance.now() - started)} ms`;
        const listing = await request("HEAD", "");
        const listable = listing.status === 200 &&
          /\bjson\b/.test(listing.headers.get("content-type") ?? "");
        return {
          ok: true,
          detail: listable
            ? took
            : `${took}; cannot list its entries (${
              listing.status === 200 ? "no JSON index" : `HTTP ${listing.status}`
            }): status counts none, gc prunes none`,
        };
      } catch (error) {
        return { ok: false, detail: errorMessage(error) };
      }
    },

    close: () => markers.settled(),
  };
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/**
 * The base URL requests go to (without credentials, so that no error quotes them; ending in `/`),
 * the location status lines show, and the Authorization header.
 */
function parseCacheUrl(raw: string, token: string | undefined): {
  base: string;
  location: string;
  authorization: string | undefined;
} {
  const shown = redactUrl(raw, "***");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`Invalid HTTP cache URL "${shown}": not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`Invalid HTTP cache URL "${shown}": expected http:// or https://`);
  }
  if (url.search !== "" || url.hash !== "") {
    throw new TypeError(`Invalid HTTP cache URL "${shown}": a query or fragment cannot be kept`);
  }
  const user = percentDecoded(url.username);
  const password = percentDecoded(url.password);
  let authorization: string | undefined;
  if (token !== undefined && token !== "") {
    if (user !== "" || password !== "") {
      throw new TypeError(
        `Invalid HTTP cache settings for "${redactUrl(raw)}": ` +
          "credentials in the URL and a bearer token; give one of them",
      );
    }
    // Header values are visible ASCII; the message must not quote the token.
    if (!/^[\x21-\x7e]+$/.test(token)) {
      throw new TypeError("Invalid bearer token: it must be printable ASCII without spaces");
    }
    authorization = `Bearer ${token}`;
  } else if (user !== "" || password !== "") {
    const basic = encodeBase64(new TextEncoder().encode(`${user}:${password}`));
    authorization = `Basic ${basic}`;
  }
  const location = redactUrl(url.href);
  url.username = "";
  url.password = "";
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return { base: url.href, location, authorization };
}

/** `text` percent-decoded, or as it is where its escapes are malformed (`%zz`). */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function encodeBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
