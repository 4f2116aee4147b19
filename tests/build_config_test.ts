// Which cache a build's configuration opens (src/cache/build_config.ts): the daemon keeps one per
// identity, so credentials that reach the remote must be part of it.

import assert from "node:assert/strict";
import { cacheIdentity } from "../src/cache/build_config.ts";
import { loadConfig } from "../src/config/config.ts";

Deno.test("cacheIdentity: another credential is another cache, other variables are not", async () => {
  const dir = await Deno.makeTempDir({ prefix: "warmup-identity-" });
  try {
    const identity = async (env: Record<string, string>) => {
      const full = { CARGO_HOME: dir, CARGO_WARMUP_DIR: dir, ...env };
      return cacheIdentity((await loadConfig({ cwd: dir, env: full })).config, full);
    };
    const http = { CARGO_WARMUP_BACKEND: "http", CARGO_WARMUP_HTTP_URL: "https://cache/rust/" };
    const withToken = await identity({ ...http, CARGO_WARMUP_HTTP_TOKEN: "one" });
    assert.notEqual(await identity({ ...http, CARGO_WARMUP_HTTP_TOKEN: "two" }), withToken);
    assert.notEqual(await identity(http), withToken);
    assert.equal(
      await identity({ ...http, CARGO_WARMUP_HTTP_TOKEN: "one", PATH: "/x" }),
      withToken,
    );

    const s3 = { CARGO_WARMUP_BACKEND: "s3", CARGO_WARMUP_S3_BUCKET: "team" };
    const withKey = await identity({ ...s3, AWS_SECRET_ACCESS_KEY: "one" });
    assert.notEqual(await identity({ ...s3, AWS_SECRET_ACCESS_KEY: "two" }), withKey);
    assert.equal(await identity({ ...s3, AWS_SECRET_ACCESS_KEY: "one", PATH: "/x" }), withKey);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
