/**
 * The S3 store (AWS, MinIO, R2, Ceph): each bundle is the object `<prefix><key>`, requests are
 * plain `fetch` signed with SigV4 by aws4fetch. S3 keeps no read time, so a read writes an empty
 * marker object `<prefix>used/<key>` whose LastModified is the bundle's last use.
 * Imported only when the S3 backend is configured.
 * @module
 */

import { AwsClient } from "aws4fetch";
import type { Store, StoredEntry, StoreHealth } from "./store.ts";
import { StoreUnavailableError } from "./store.ts";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../src/error_message.ts";
import { fetchInFull, type FullResponse } from "./_fetch.ts";
import { lastUseMarkers, USED_DIR, withMarkedUse } from "./_last_use.ts";
import { assertStoreName, isCacheKey, isReservedName } from "./local_layout.ts";

/** Static AWS credentials. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Options for {@linkcode createS3Store}. */
export interface S3StoreOptions {
  bucket: string;
  region: string;
  /** `https://host[:port]` of an S3-compatible server; default AWS's regional endpoint. */
  endpoint?: string;
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`; default true when `endpoint` is set. */
  pathStyle?: boolean;
  /** Prepended to every object key; default `"cargo-warmup/"`. */
  prefix?: string;
  /** Default: the AWS environment variables, then the shared credentials file; else unsigned. */
  credentials?: AwsCredentials;
  /** Record each read's time for LRU gc; read-only clients turn this off. Default true. */
  recordUse?: boolean;
  /** Milliseconds without progress (headers, body bytes) before a request fails; default 5000. */
  timeoutMs?: number;
  /** Environment for credential lookup; default `Deno.env.toObject()`. */
  env?: Record<string, string | undefined>;
}

/**
 * A store in an S3 bucket.
 *
 * @example
 * ```ts ignore
 * import { createS3Store } from "./s3.ts";
 * const store = createS3Store({ bucket: "team-cache", region: "eu-west-1" });
 * console.log(await store.health());
 * ```
 */
export function createS3Store(options: S3StoreOptions): Store {
  const prefix = options.prefix ?? "cargo-warmup/";
  const endpoint = new URL(options.endpoint ?? `https://s3.${options.region}.amazonaws.com`);
  const pathStyle = options.pathStyle ?? options.endpoint !== undefined;
  const bucketUrl = pathStyle
    ? `${endpoint.origin}${endpoint.pathname.replace(/\/$/, "")}/${
      encodeURIComponent(options.bucket)
    }`
    : `${endpoint.protocol}//${options.bucket}.${endpoint.host}${
      endpoint.pathname.replace(/\/$/, "")
    }`;
  const location = `s3://${options.bucket}/${prefix}` +
    (options.endpoint ? ` at ${endpoint.origin}` : "");
  const recordUse = options.recordUse ?? true;
  const timeoutMs = options.timeoutMs ?? 5000;
  const credentials = options.credentials ?? loadAwsCredentials(options.env ?? Deno.env.toObject());
  const client = credentials
    ? new AwsClient({ ...credentials, service: "s3", region: options.region, retries: 0 })
    : undefined;

  const objectUrl = (name: string) =>
    `${bucketUrl}/${name.split("/").map(encodeRfc3986).join("/")}`;
  const bundleName = (key: string) => {
    assertStoreName(key);
    return `${prefix}${key}`;
  };

  /** One signed request; resolves with the response whose body is read in full. */
  function request(method: string, url: string, body?: Uint8Array): Promise<FullResponse> {
    return fetchInFull(async (signal) => {
      const init: RequestInit = { method, signal };
      if (body) init.body = body as Uint8Array<ArrayBuffer>;
      return client ? await client.sign(url, init) : new Request(url, init);
    }, { location, timeoutMs, uploadBytes: body?.length ?? 0 });
  }

  /** Throws StoreUnavailableError for any status but the expected ones. */
  function check(response: { status: number; body: Uint8Array }, expected: number[]): void {
    if (expected.includes(response.status)) return;
    const text = new TextDecoder().decode(response.body);
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? "";
    const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? "";
    const said = [code, decodeXml(message)].filter(Boolean).join(": ");
    const detail = response.status === 403 || response.status === 401
      ? `access denied (HTTP ${response.status}${said ? `, ${said}` : ""}): check the credentials`
      : `HTTP ${response.status}${said ? ` (${said})` : ""}`;
    throw new StoreUnavailableError(location, detail);
  }

  const markers = lastUseMarkers(
    recordUse,
    (key) => request("PUT", objectUrl(`${prefix}${USED_DIR}${key}`), new Uint8Array(0)),
  );

  async function listAll(listPrefix: string, maxKeys?: number): Promise<S3Object[]> {
    const objects: S3Object[] = [];
    let token: string | undefined;
    do {
      const query = new URLSearchParams({ "list-type": "2", prefix: listPrefix });
      if (maxKeys !== undefined) query.set("max-keys", String(maxKeys));
      if (token) query.set("continuation-token", token);
      // Path style lists at `/bucket?…`, virtual-hosted at `/?…`, as the AWS SDKs do.
      const response = await request("GET", `${bucketUrl}${pathStyle ? "" : "/"}?${query}`);
      check(response, [200]);
      const page = parseListing(new TextDecoder().decode(response.body));
      objects.push(...page.objects);
      token = maxKeys === undefined ? page.nextToken : undefined;
    } while (token);
    return objects;
  }

  return {
    kind: "s3",
    location,

    async get(key) {
      const response = await request("GET", objectUrl(bundleName(key)));
      if (
        response.status === 404 &&
        !/<Code>NoSuchBucket</.test(new TextDecoder().decode(response.body))
      ) {
        return undefined;
      }
      check(response, [200]);
      markers.touch(key);
      return response.body;
    },

    async put(key, bundle) {
      check(await request("PUT", objectUrl(bundleName(key)), bundle), [200]);
    },

    async has(key) {
      const response = await request("HEAD", objectUrl(bundleName(key)));
      if (response.status === 404) return false;
      check(response, [200]);
      return true;
    },

    async delete(key) {
      const name = bundleName(key);
      check(await request("DELETE", objectUrl(name)), [200, 204, 404]);
      check(await request("DELETE", objectUrl(`${prefix}${USED_DIR}${key}`)), [200, 204, 404]);
    },

    async list() {
      const bundles = new Map<string, StoredEntry>();
      const used = new Map<string, number>();
      for (const object of await listAll(prefix)) {
        const rest = object.key.slice(prefix.length);
        if (isCacheKey(rest)) {
          bundles.set(rest, { key: rest, size: object.size, lastUsed: object.lastModified });
        } else if (rest.startsWith(USED_DIR) && isCacheKey(rest.slice(USED_DIR.length))) {
          used.set(rest.slice(USED_DIR.length), object.lastModified);
        }
      }
      return withMarkedUse(bundles.values(), used);
    },

    async listReserved(word) {
      return (await listAll(`${prefix}${word}-`)).flatMap((object) => {
        const name = object.key.slice(prefix.length);
        return isReservedName(name)
          ? [{ key: name, size: object.size, lastUsed: object.lastModified }]
          : [];
      });
    },

    async health(): Promise<StoreHealth> {
      const started = performance.now();
      try {
        await listAll(prefix, 1);
        return { ok: true, detail: `reachable, ${Math.round(performance.now() - started)} ms` };
      } catch (error) {
        return { ok: false, detail: errorMessage(error) };
      }
    },

    close: () => markers.settled(),
  };
}

/**
 * Credentials the way the AWS CLI finds static ones: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
 * (+ `AWS_SESSION_TOKEN`), else the `AWS_PROFILE` (or `default`) section of
 * `AWS_SHARED_CREDENTIALS_FILE` (or `~/.aws/credentials`); `undefined` when there are none.
 *
 * @example
 * ```ts
 * import { loadAwsCredentials } from "./s3.ts";
 * const found = loadAwsCredentials({ AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "secret" });
 * console.log(found?.accessKeyId); // "AKID"
 * ```
 */
export function loadAwsCredentials(
  env: Record<string, string | undefined>,
): AwsCredentials | undefined {
  const fromEnv = (id?: string, secret?: string, token?: string) =>
    id && secret
      ? { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) }
      : undefined;
  const direct = fromEnv(env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN);
  if (direct) return direct;
  const home = env.HOME ?? env.USERPROFILE;
  const file = env.AWS_SHARED_CREDENTIALS_FILE ??
    (home ? join(home, ".aws", "credentials") : undefined);
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const wanted = env.AWS_PROFILE ?? "default";
  const values: Record<string, string> = {};
  let section = "";
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const pair = /^([\w.-]+)\s*=\s*(.*)$/.exec(line);
    if (pair && section === wanted) values[pair[1]!.toLowerCase()] = pair[2]!.trim();
  }
  return fromEnv(values.aws_access_key_id, values.aws_secret_access_key, values.aws_session_token);
}

interface S3Object {
  key: string;
  size: number;
  lastModified: number;
}

/** Reads a ListObjectsV2 answer; S3's XML is flat and regular enough for patterns. */
function parseListing(xml: string): { objects: S3Object[]; nextToken: string | undefined } {
  const objects: S3Object[] = [];
  for (const [, contents] of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const field = (name: string) =>
      new RegExp(`<${name}>([^<]*)</${name}>`).exec(contents ?? "")?.[1] ?? "";
    objects.push({
      key: decodeXml(field("Key")),
      size: Number(field("Size")),
      lastModified: Date.parse(field("LastModified")) || 0,
    });
  }
  const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
  const token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
  return { objects, nextToken: truncated && token ? decodeXml(token) : undefined };
}

function decodeXml(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-f]+);/gi, (_, entity: string) => {
    const named: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };
    if (entity[0] !== "#") return named[entity.toLowerCase()] ?? "";
    return String.fromCodePoint(
      entity[1] === "x" || entity[1] === "X"
        ? parseInt(entity.slice(2), 16)
        : Number(entity.slice(1)),
    );
  });
}

function encodeRfc3986(segment: string): string {
  return encodeURIComponent(segment).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
