import assert from "node:assert/strict";
import { join } from "node:path";
import { createHttpStore } from "../../backends/http.ts";
import { openStore } from "../../backends/open_store.ts";
import { loadConfig } from "../../src/config/config.ts";
import { StoreUnavailableError } from "../../backends/store.ts";
import { startNginx } from "./_servers.ts";
import { testKey, testOutages, testStore } from "./store_suite.ts";

// A timer, an op or a socket a test leaves behind fails it (see store_suite.ts).
Deno.test.sanitizer({ ops: true, resources: true });

// The shared suite against one nginx that outlives its cases, through the cache that
// lists its entries (nginx's JSON autoindex), each case in its own directory.
await testStore("http", async () => {
  const server = await startNginx();
  return {
    open: (namespace) => createHttpStore({ url: `${server.openUrl}${namespace}/` }),
    close: () => server.stop(),
  };
});

// Outages (a stopped server, before or during a session, and a refused token) are the shared
// outage suite's; the token must never show in what the store says.
const TOKEN = "right-t0ken";
const WRONG_TOKEN = "wrong-t0ken";
testOutages("http", {
  async start() {
    const server = await startNginx({ bearerToken: TOKEN });
    return {
      open: () => createHttpStore({ url: server.bearerUrl, token: TOKEN }),
      openWithWrongCredentials: () =>
        createHttpStore({ url: server.bearerUrl, token: WRONG_TOKEN }),
      stop: () => server.stop(),
    };
  },
  openOnSilentServer: ({ hostname, port }, timeoutMs) =>
    createHttpStore({ url: `http://${hostname}:${port}/cache/`, timeoutMs }),
  refusedCredentials: /access denied \(HTTP 401 Unauthorized\): check the credentials/,
  secrets: [TOKEN, WRONG_TOKEN],
});

Deno.test(
  "http: bundles are plain files at <url><key>, markers at <url>used/<key>",
  async () => {
    await using nginx = await startNginx();
    const store = createHttpStore({ url: `${nginx.openUrl}team/rust` });
    const key = testKey();
    await store.put(key, new Uint8Array([1, 2, 3]));
    assert.deepEqual(
      await Deno.readFile(join(nginx.root, "open", "team", "rust", key)),
      new Uint8Array([1, 2, 3]),
    );
    await store.get(key);
    await store.close();
    assert.equal((await Deno.stat(join(nginx.root, "open", "team", "rust", "used", key))).size, 0);
    assert.equal(store.location, `${nginx.openUrl}team/rust`);
  },
);

Deno.test("http: basic credentials from the URL are sent, and never shown", async () => {
  const password = "basic-Passw0rd";
  await using nginx = await startNginx({ basicUser: "ci", basicPassword: password });
  const withPassword = (secret: string) => nginx.basicUrl.replace("//", `//ci:${secret}@`);
  const store = createHttpStore({ url: withPassword(password) });
  const key = testKey();
  await store.put(key, new Uint8Array([4]));
  assert.deepEqual(await store.get(key), new Uint8Array([4]));
  assert.deepEqual((await store.list()).map((entry) => entry.key), [key]);
  assert.equal(store.location, nginx.basicUrl.replace("//", "//ci@").replace(/\/$/, ""));
  await store.close();

  const wrong = createHttpStore({ url: withPassword("not-the-Passw0rd") });
  const refusal = await wrong.get(key).then(
    () => assert.fail("a wrong password read the cache"),
    (error: unknown) => error,
  );
  assert.ok(refusal instanceof StoreUnavailableError, String(refusal));
  assert.match(refusal.message, /access denied \(HTTP 401 Unauthorized\)/);
  const health = await wrong.health();
  assert.equal(health.ok, false);
  for (const text of [refusal.message, wrong.location, health.detail]) {
    assert.ok(!text.includes("Passw0rd"), `"${text}" shows the password`);
    assert.ok(!text.includes(btoa(`ci:not-the-Passw0rd`)), `"${text}" shows the credentials`);
  }
  await wrong.close();

  // Without credentials, the same cache is refused: the header above is what let the store in.
  const anonymous = createHttpStore({ url: nginx.basicUrl });
  await assert.rejects(() => anonymous.get(key), /access denied/);
  await anonymous.close();
});

Deno.test(
  "http: a server without a listing lists nothing, and health says so",
  async () => {
    await using nginx = await startNginx();
    const store = createHttpStore({ url: nginx.unlistedUrl });
    const key = testKey();
    await store.put(key, new Uint8Array([5]));
    assert.equal(await store.has(key), true);
    assert.deepEqual(await store.list(), []);
    const health = await store.health();
    assert.equal(health.ok, true, health.detail);
    assert.match(
      health.detail,
      /^reachable, \d+ ms; cannot list its entries \(HTTP 403\): status counts none, gc prunes none$/,
    );
    await store.delete(key);
    assert.equal(await store.has(key), false);
    await store.close();

    // Where the server lists, health says nothing about listing.
    const listed = createHttpStore({ url: nginx.openUrl });
    await listed.put(key, new Uint8Array([5]));
    assert.match((await listed.health()).detail, /^reachable, \d+ ms$/);
    await listed.close();
  },
);

Deno.test("http: read-only use records no last use", async () => {
  await using nginx = await startNginx();
  const writer = createHttpStore({ url: nginx.openUrl });
  const reader = createHttpStore({ url: nginx.openUrl, recordUse: false });
  const key = testKey();
  await writer.put(key, new Uint8Array([1]));
  assert.deepEqual(await reader.get(key), new Uint8Array([1]));
  await reader.close();
  await assert.rejects(
    () => Deno.stat(join(nginx.root, "open", "used", key)),
    Deno.errors.NotFound,
  );
  await writer.get(key);
  await writer.close();
  await Deno.stat(join(nginx.root, "open", "used", key));
});

Deno.test("http: a redirect is an outage, never followed with the credentials", async () => {
  const listener = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) =>
      new URL(request.url).pathname.startsWith("/elsewhere/")
        ? new Response(request.headers.get("authorization") ?? "none")
        : Response.redirect(
          new URL(`/elsewhere${new URL(request.url).pathname}`, request.url),
          302,
        ),
  );
  try {
    const store = createHttpStore({
      url: `http://127.0.0.1:${listener.addr.port}/cache/`,
      token: "redirected-token",
    });
    await assert.rejects(
      () => store.get(testKey()),
      (error: Error) =>
        error instanceof StoreUnavailableError &&
        /: HTTP 302 Found: redirects are not followed$/.test(error.message),
    );
    await store.close();
  } finally {
    await listener.shutdown();
  }
});

Deno.test("http: bad settings are clear errors that keep the secrets", () => {
  const cases: [Parameters<typeof createHttpStore>[0], RegExp][] = [
    [
      { url: "cache.example/rust/" },
      /^Invalid HTTP cache URL "cache\.example\/rust\/": not a URL$/,
    ],
    [
      { url: "http://ci:hidden-pw@bad host/" },
      /^Invalid HTTP cache URL "http:\/\/ci:\*\*\*@bad host\/": not a URL$/,
    ],
    [
      { url: "ftp://ci:hidden-pw@cache/" },
      /^Invalid HTTP cache URL "ftp:\/\/ci:\*\*\*@cache": expected http:\/\/ or https:\/\/$/,
    ],
    [{ url: "https://cache/rust/?v=1" }, /a query or fragment cannot be kept$/],
    [
      { url: "https://ci:hidden-pw@cache/", token: "hidden-token" },
      /^Invalid HTTP cache settings for "https:\/\/ci@cache": credentials in the URL and a bearer token/,
    ],
    [{ url: "https://cache/", token: "hidden token" }, /^Invalid bearer token: /],
  ];
  for (const [settings, expected] of cases) {
    assert.throws(() => createHttpStore(settings), (error: Error) => {
      assert.ok(error instanceof TypeError, String(error));
      assert.match(error.message, expected);
      assert.doesNotMatch(error.message, /hidden/);
      return true;
    });
  }
});

Deno.test(
  "openStore: backend http behind local disk, with the token of the environment given",
  async () => {
    const token = "env-t0ken";
    await using nginx = await startNginx({ bearerToken: token });
    const dir = await Deno.makeTempDir({ prefix: "warmup-http-levels-" });
    const env = {
      CARGO_HOME: dir,
      CARGO_WARMUP_DIR: join(dir, "cache"),
      CARGO_WARMUP_BACKEND: "http",
      CARGO_WARMUP_HTTP_URL: nginx.bearerUrl,
      CARGO_WARMUP_HTTP_TOKEN: token,
    };
    try {
      const { config } = await loadConfig({ cwd: dir, env });
      const levels = openStore(config, { env });
      const lazyLocation = levels.remote?.location;
      const key = testKey();
      await levels.put(key, new Uint8Array([6]));
      await levels.flush();
      const remote = await levels.openRemote();
      assert.equal(remote?.kind, "http");
      assert.equal(remote?.location, lazyLocation, "the location before and after opening");
      assert.deepEqual(await remote?.get(key), new Uint8Array([6]), "the put reached nginx");
      assert.equal(levels.remoteSkipped, false);
      await levels.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
