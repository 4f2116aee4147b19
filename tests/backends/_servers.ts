/**
 * Real servers for the tests, on free loopback ports, stopped by the test that started them:
 * `redis-server` (Debian package `redis-server`), s3rver, a fake S3 from npm run under Node
 * (the @20minutes/s3rver fork, installed into `.tools/s3rver` on first use; `scripts/start_test_servers.sh` does it ahead),
 * and nginx with WebDAV (Debian package `nginx-light`) as a plain HTTP cache.
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitUntil } from "../_wait.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/**
 * The pinned fake S3: the @20minutes fork of s3rver, because s3rver 3.7.1 checks only the access
 * key id of a SigV4 request, not its signature. Its package asks for Node 24; it runs on Node 20.
 */
export const S3RVER_PACKAGE = "@20minutes/s3rver@5.0.0";
const S3RVER_DIR = join(ROOT, ".tools", "s3rver");

/** Credentials s3rver accepts. */
export const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } as const;

/** A running test server. */
export interface TestServer extends AsyncDisposable {
  port: number;
  /** Stops the server and removes its data; safe to call twice. */
  stop(): Promise<void>;
}

/** A running `redis-server`. */
export interface RedisServer extends TestServer {
  /** `redis://[:password@]127.0.0.1:port/0`. */
  url: string;
}

/** A running s3rver with one bucket. */
export interface S3Server extends TestServer {
  /** `http://127.0.0.1:port`. */
  endpoint: string;
  bucket: string;
  region: string;
}

/** A running nginx serving WebDAV caches, each under its own path. */
export interface NginxServer extends TestServer {
  /** `http://127.0.0.1:port`. */
  origin: string;
  /** A cache anyone may read and write, listed as JSON (nginx's `autoindex_format json`). */
  openUrl: string;
  /** A cache that answers 401 unless `Authorization: Bearer <bearerToken>`; listed as JSON. */
  bearerUrl: string;
  /** A cache behind basic authentication of `basicUser`; listed as JSON. */
  basicUrl: string;
  /** A cache without a listing (the directory URL answers 403), as most HTTP caches. */
  unlistedUrl: string;
  /** The directory the caches' files are in: `<root>/open/…`, `<root>/bearer/…`. */
  root: string;
}

/** The Debian nginx the tests run (package `nginx-light`, with the WebDAV module). */
export const NGINX = "/usr/sbin/nginx";

/** A loopback port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Starts `redis-server` on a free loopback port with nothing persisted.
 *
 * @example
 * ```ts ignore
 * await using redis = await startRedis({ password: "secret" });
 * console.log(redis.url); // "redis://:secret@127.0.0.1:40123/0"
 * ```
 */
export function startRedis(
  options: { password?: string; port?: number } = {},
): Promise<RedisServer> {
  return onFreePort(options.port, (port) => startRedisOn(port, options));
}

async function startRedisOn(port: number, options: { password?: string }): Promise<RedisServer> {
  const dir = await Deno.makeTempDir({ prefix: "warmup-redis-" });
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "no",
    "--daemonize",
    "no",
    "--loglevel",
    "warning",
  ];
  if (options.password) args.push("--requirepass", options.password);
  const child = new Deno.Command("redis-server", { args, stdout: "null", stderr: "null" }).spawn();
  const stop = stopperOf(child, dir);
  await waitForPort(port, child, "redis-server").catch(async (error) => {
    await stop();
    throw error;
  });
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : "";
  return { port, url: `redis://${auth}127.0.0.1:${port}/0`, stop, [Symbol.asyncDispose]: stop };
}

/** Installs s3rver into `.tools/s3rver` unless it is there. */
export async function ensureS3rver(): Promise<string> {
  const installed = join(S3RVER_DIR, "node_modules", "@20minutes", "s3rver", "package.json");
  try {
    await Deno.stat(installed);
    return S3RVER_DIR;
  } catch {
    // Not installed yet.
  }
  await Deno.mkdir(S3RVER_DIR, { recursive: true });
  const { code, stderr } = await new Deno.Command("npm", {
    args: [
      "install",
      "--silent",
      "--no-audit",
      "--no-fund",
      "--prefix",
      S3RVER_DIR,
      S3RVER_PACKAGE,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`Cannot install s3rver: ${new TextDecoder().decode(stderr)}`);
  }
  return S3RVER_DIR;
}

/**
 * Starts s3rver under Node on a free loopback port with an empty `bucket`; it accepts
 * {@linkcode S3RVER_CREDENTIALS} and rejects any other key or signature.
 *
 * @example
 * ```ts ignore
 * await using s3 = await startS3({ bucket: "cache" });
 * console.log(s3.endpoint); // "http://127.0.0.1:40124"
 * ```
 */
export async function startS3(options: { bucket?: string; port?: number } = {}): Promise<S3Server> {
  const moduleDir = await ensureS3rver();
  const bucket = options.bucket ?? "warmup-test";
  // Port 0 unless asked: s3rver binds a free one itself and says which, so no other process can
  // take it between a choice and the bind.
  const asked = options.port ?? 0;
  const dir = await Deno.makeTempDir({ prefix: "warmup-s3-" });
  const main = join(ROOT, "tests", "backends", "_s3rver_main.cjs");
  const child = new Deno.Command("node", {
    args: [main, moduleDir, String(asked), dir, bucket],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const stop = stopperOf(child, dir);
  let port: number;
  try {
    // The deadline only bounds a hang: Node and s3rver start slowly on a busy machine.
    port = Number((await waitForLine(child.stdout, /^ready (\d+)$/, 60_000, "s3rver"))[1]);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    region: "us-east-1",
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * Starts nginx as a plain HTTP cache on a free loopback port, with its own prefix, configuration
 * and temporary directories in a new directory (no root needed; as root, its worker stays root so
 * that it can write there): `dav_methods PUT DELETE` with `create_full_put_path`, under the paths
 * {@linkcode NginxServer} describes.
 *
 * @example
 * ```ts ignore
 * await using nginx = await startNginx({ bearerToken: "t0ken" });
 * console.log(nginx.bearerUrl); // "http://127.0.0.1:40125/bearer/"
 * ```
 */
export async function startNginx(
  options: { bearerToken?: string; basicUser?: string; basicPassword?: string; port?: number } = {},
): Promise<NginxServer> {
  const token = options.bearerToken ?? "test-token";
  const user = options.basicUser ?? "ci";
  const password = options.basicPassword ?? "test-password";
  // Written into nginx.conf and the password file as they are.
  for (const value of [token, user, password]) {
    if (!/^[\w.~+/=-]+$/.test(value)) throw new TypeError(`Unusable test credential "${value}"`);
  }
  return await onFreePort(options.port, (port) => startNginxOn(port, token, user, password));
}

async function startNginxOn(
  port: number,
  token: string,
  user: string,
  password: string,
): Promise<NginxServer> {
  const dir = await Deno.makeTempDir({ prefix: "warmup-nginx-" });
  const root = join(dir, "www");
  await Deno.mkdir(root);
  await Deno.writeTextFile(join(dir, "htpasswd"), `${user}:{PLAIN}${password}\n`);
  const dav = "dav_methods PUT DELETE; create_full_put_path on;";
  const listed = "autoindex on; autoindex_format json;";
  const conf = `${Deno.uid() === 0 ? "user root root;\n" : ""}worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr error;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location /open/ { ${dav} ${listed} }
    location /unlisted/ { ${dav} }
    location /bearer/ {
      if ($http_authorization != "Bearer ${token}") { return 401; }
      ${dav} ${listed}
    }
    location /basic/ {
      auth_basic "cache";
      auth_basic_user_file ${dir}/htpasswd;
      ${dav} ${listed}
    }
  }
}
`;
  await Deno.writeTextFile(join(dir, "nginx.conf"), conf);
  const child = new Deno.Command(NGINX, {
    args: ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", "stderr", "-g", "daemon off;"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const stop = stopperOf(child, dir);
  await waitForPort(port, child, "nginx").catch(async (error) => {
    await stop();
    throw error;
  });
  const origin = `http://127.0.0.1:${port}`;
  return {
    port,
    origin,
    openUrl: `${origin}/open/`,
    bearerUrl: `${origin}/bearer/`,
    basicUrl: `${origin}/basic/`,
    unlistedUrl: `${origin}/unlisted/`,
    root,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

function once(action: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => running ??= action();
}

/** A server that exited before it listened: most likely, another process took its port. */
class ExitedBeforeListening extends Error {}

/**
 * Runs `start` on `port`, or on a free port; should that port be taken between the choice and the
 * server binding it (by another process on the machine), on another one, up to three times.
 */
async function onFreePort<T>(
  port: number | undefined,
  start: (port: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await start(port ?? freePort());
    } catch (error) {
      const retry = port === undefined && attempt < 3 && error instanceof ExitedBeforeListening;
      if (!retry) throw error;
    }
  }
}

async function waitForPort(port: number, child: Deno.ChildProcess, name: string): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  await waitUntil(async () => {
    if (exited) throw new ExitedBeforeListening(`${name} exited before listening on port ${port}`);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return true;
    } catch {
      return false;
    }
  }, { what: `${name} to listen on port ${port}` });
}

/**
 * Reads `stream` until a line matches, and returns the match; the rest of the stream is drained
 * in the background.
 */
async function waitForLine(
  stream: ReadableStream<Uint8Array>,
  pattern: RegExp,
  timeoutMs: number,
  name: string,
): Promise<RegExpMatchArray> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let match: RegExpMatchArray | undefined;
  const timer = setTimeout(() => reader.cancel(), timeoutMs);
  try {
    while (match === undefined) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${name} did not start: ${text.trim() || "no output"}`);
      text += value;
      match = text.split("\n").map((line) => line.match(pattern)).find((found) => found !== null);
    }
  } finally {
    clearTimeout(timer);
  }
  (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch {
      // Stream closed with the process.
    }
  })();
  return match;
}

/** Stops a test server once (however often it is asked) and removes its data directory. */
function stopperOf(child: Deno.ChildProcess, dir: string): () => Promise<void> {
  return once(async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  });
}
