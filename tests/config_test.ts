// Loading the [warmup] configuration (files, variables, defaults, errors) and `cargo-warmup config`
// (docs/configuration.md's table is held to the settings by configuration_doc_test.ts).
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig } from "../src/config/config.ts";
import { type ConfigKey, SETTINGS } from "../src/config/settings.ts";
import { parseSize } from "../src/config/size.ts";
import { runConfigCommand } from "../src/cli/config_command.ts";
import { UsageError } from "../src/cli/usage_error.ts";

const DENO_JSON = fileURLToPath(new URL("../deno.json", import.meta.url));

/** A temporary tree: `<root>/.cargo`, `<root>/project/.cargo`, and a CARGO_HOME. */
async function tree(files: Record<string, string>) {
  const root = await Deno.makeTempDir({ prefix: "warmup-config-test-" });
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(join(root, path, ".."), { recursive: true });
    await Deno.writeTextFile(join(root, path), text);
  }
  const project = join(root, "project");
  await Deno.mkdir(join(project, "src"), { recursive: true });
  const env = { HOME: root, CARGO_HOME: join(root, "home") };
  return {
    root,
    project,
    env,
    [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }),
  };
}

Deno.test("config: defaults with no files", async () => {
  await using t = await tree({});
  const { config, sources, files } = await loadConfig({ cwd: t.project, env: t.env });
  assert.equal(config.dir, join(t.root, "home", "warmup-cache"));
  assert.equal(config.backend, "local");
  assert.equal(config.readOnly, false);
  assert.equal(config.maxSize, 10 * 1024 ** 3);
  assert.equal(config.compressionLevel, 1);
  assert.equal(config.redis.prefix, "cargo-warmup:");
  assert.equal(config.s3.region, "us-east-1");
  assert.deepEqual(sources.dir, { kind: "default" });
  assert.deepEqual(files, []);
});

Deno.test("config: the nearer file wins, the farther fills in, CARGO_HOME comes last", async () => {
  await using t = await tree({
    ".cargo/config.toml":
      '[warmup]\nbackend = "redis"\nmax-size = "2G"\n[warmup.redis]\nurl = "redis://far"\n',
    "project/.cargo/config.toml":
      '[build]\njobs = 2\n\n[warmup.redis]\nprefix = "near:"\nurl = "redis://near"\n',
    "home/config.toml": "[warmup]\ncompression-level = 9\nmax-size = 1\n",
  });
  const { config, sources, files } = await loadConfig({ cwd: join(t.project, "src"), env: t.env });
  assert.equal(config.backend, "redis");
  assert.equal(config.redis.url, "redis://near");
  assert.equal(config.redis.prefix, "near:");
  assert.equal(config.maxSize, 2 * 1024 ** 3);
  assert.equal(config.compressionLevel, 9);
  const near = join(t.project, ".cargo", "config.toml");
  assert.deepEqual(sources["redis.url"], { kind: "file", path: near, line: 6 });
  assert.deepEqual(sources["redis.prefix"], { kind: "file", path: near, line: 5 });
  assert.deepEqual(sources["max-size"], {
    kind: "file",
    path: join(t.root, ".cargo", "config.toml"),
    line: 3,
  });
  assert.deepEqual(files, [
    near,
    join(t.root, ".cargo", "config.toml"),
    join(t.root, "home", "config.toml"),
  ]);
});

Deno.test("config: environment variables override every file", async () => {
  await using t = await tree({
    "project/.cargo/config.toml":
      '[warmup]\nbackend = "redis"\nread-only = false\nredis.url = "redis://file"\n',
  });
  const { config, sources } = await loadConfig({
    cwd: t.project,
    env: {
      ...t.env,
      CARGO_WARMUP_BACKEND: "s3",
      CARGO_WARMUP_S3_BUCKET: "team",
      CARGO_WARMUP_S3_PATH_STYLE: "true",
      CARGO_WARMUP_READ_ONLY: "1",
      CARGO_WARMUP_MAX_SIZE: "500M",
      CARGO_WARMUP_REDIS_TTL: "3600",
      CARGO_WARMUP_DIR: "rel/cache",
    },
  });
  assert.equal(config.backend, "s3");
  assert.equal(config.s3.bucket, "team");
  assert.equal(config.s3.pathStyle, true);
  assert.equal(config.readOnly, true);
  assert.equal(config.maxSize, 500 * 1024 ** 2);
  assert.equal(config.redis.ttlSeconds, 3600);
  assert.equal(config.redis.url, "redis://file");
  assert.equal(config.dir, join(t.project, "rel", "cache"));
  assert.deepEqual(sources.backend, { kind: "env", name: "CARGO_WARMUP_BACKEND" });
});

Deno.test("config: relative paths in a file are relative to its project directory", async () => {
  await using t = await tree({
    "project/.cargo/config.toml":
      '[warmup]\ndir = "target/warmup"\nsigning-key-file = "/etc/key"\n',
  });
  const { config } = await loadConfig({ cwd: join(t.project, "src"), env: t.env });
  assert.equal(config.dir, join(t.project, "target", "warmup"));
  assert.equal(config.signingKeyFile, "/etc/key");
});

Deno.test("config: trusted-keys holds keys as written and key files as absolute paths", async () => {
  await using t = await tree({
    "project/.cargo/config.toml": `[warmup]\ntrusted-keys = ["${PUBLIC_KEY}", "keys/ci.pub"]\n`,
  });
  const { config } = await loadConfig({ cwd: join(t.project, "src"), env: t.env });
  assert.deepEqual(config.trustedKeys, [PUBLIC_KEY, join(t.project, "keys", "ci.pub")]);
  const fromVariable = await loadConfig({
    cwd: t.project,
    env: { ...t.env, CARGO_WARMUP_TRUSTED_KEYS: `ci.pub,${PUBLIC_KEY}` },
  });
  assert.deepEqual(fromVariable.config.trustedKeys, [join(t.project, "ci.pub"), PUBLIC_KEY]);
  for (const bad of ['""', "[]", '[""]', "[1]", "true"]) {
    await Deno.writeTextFile(
      join(t.project, ".cargo", "config.toml"),
      `[warmup]\ntrusted-keys = ${bad}\n`,
    );
    await assert.rejects(
      () => loadConfig({ cwd: t.project, env: t.env }),
      /line 2: key "warmup\.trusted-keys" must be a list of public keys \(base64\) or key files/,
      bad,
    );
  }
});

Deno.test("config: .cargo/config wins over .cargo/config.toml in one directory", async () => {
  await using t = await tree({
    "project/.cargo/config": "[warmup]\ncompression-level = 5\n",
    "project/.cargo/config.toml": "[warmup]\ncompression-level = 7\n",
  });
  const { config } = await loadConfig({ cwd: t.project, env: t.env });
  assert.equal(config.compressionLevel, 5);
});

Deno.test("config: an unknown key names the file, the line and the key", async () => {
  await using t = await tree({
    "project/.cargo/config.toml": '[warmup]\nbackend = "local"\n\ncompresion-level = 3\n',
  });
  const error = await loadConfig({ cwd: t.project, env: t.env }).catch((e) => e);
  assert.ok(error instanceof ConfigError);
  assert.match(
    error.message,
    /project\/\.cargo\/config\.toml" line 4: key "warmup\.compresion-level" is unknown/,
  );
});

Deno.test("config: an unknown key in a sub-table, and an unknown sub-table", async () => {
  await using t = await tree({
    "project/.cargo/config.toml": '[warmup.redis]\nurl = "redis://x"\nttl-seconds = 5\n',
  });
  await assert.rejects(
    () => loadConfig({ cwd: t.project, env: t.env }),
    /line 3: key "warmup\.redis\.ttl-seconds" is unknown: expected one of "url", "prefix", "ttl"/,
  );
  await Deno.writeTextFile(
    join(t.project, ".cargo", "config.toml"),
    "[warmup]\n[warmup.gcs]\nbucket = 1\n",
  );
  await assert.rejects(
    () => loadConfig({ cwd: t.project, env: t.env }),
    /line 2: key "warmup\.gcs" is unknown/,
  );
});

Deno.test("config: a value of the wrong type names the file, the line and the key", async () => {
  await using t = await tree({
    "project/.cargo/config.toml": '[warmup]\nread-only = "yes"\n',
  });
  await assert.rejects(
    () => loadConfig({ cwd: t.project, env: t.env }),
    (error: Error) =>
      error instanceof ConfigError &&
      /config\.toml" line 2: key "warmup\.read-only" must be true or false, found "yes"/.test(
        error.message,
      ),
  );
  for (
    const [line, pattern] of [
      ['max-size = "lots"', /key "warmup\.max-size" must be a size/],
      ["compression-level = 30", /key "warmup\.compression-level" must be a zstd level/],
      ['backend = "gcs"', /key "warmup\.backend" must be "local", "redis", "s3" or "http"/],
      ['http = { url = "ftp://cache/" }', /line 2: key "warmup\.http\.url" must be an http:\/\//],
      ['http = { url = "https://" }', /line 2: key "warmup\.http\.url" must be an http:\/\//],
      ['redis = { url = "http://x" }', /line 2: key "warmup\.redis\.url" must be a URL/],
      ["s3 = 3", /key "warmup\.s3" must be a table/],
    ] as const
  ) {
    await Deno.writeTextFile(join(t.project, ".cargo", "config.toml"), `[warmup]\n${line}\n`);
    await assert.rejects(() => loadConfig({ cwd: t.project, env: t.env }), pattern);
  }
});

Deno.test("config: a malformed file names the file and the line", async () => {
  await using t = await tree({
    "project/.cargo/config.toml": '[warmup]\nbackend = "local"\ndir = \n',
  });
  await assert.rejects(
    () => loadConfig({ cwd: t.project, env: t.env }),
    /Invalid configuration file ".*project\/\.cargo\/config\.toml" line 3: /,
  );
});

Deno.test("config: a file without a [warmup] table is not even parsed", async () => {
  await using t = await tree({ "project/.cargo/config.toml": "[build\nthis is not toml" });
  const { config } = await loadConfig({ cwd: t.project, env: t.env });
  assert.equal(config.backend, "local");
});

Deno.test("config: a bad environment variable is named", async () => {
  await using t = await tree({});
  await assert.rejects(
    () => loadConfig({ cwd: t.project, env: { ...t.env, CARGO_WARMUP_READ_ONLY: "maybe" } }),
    /Invalid environment variable CARGO_WARMUP_READ_ONLY="maybe": key "warmup\.read-only" must be true or false/,
  );
  await assert.rejects(
    () => loadConfig({ cwd: t.project, env: { ...t.env, CARGO_WARMUP_BACKEND: "redis" } }),
    /backend "redis" \(from environment variable CARGO_WARMUP_BACKEND\) needs key "warmup\.redis\.url"/,
  );
  await assert.rejects(
    () => loadConfig({ cwd: t.project, env: { ...t.env, CARGO_WARMUP_BACKEND: "http" } }),
    /backend "http" \(from environment variable CARGO_WARMUP_BACKEND\) needs key "warmup\.http\.url": set it in \[warmup\.http\] or CARGO_WARMUP_HTTP_URL/,
  );
});

/** A public key as `cargo-warmup keygen` prints it (the base64 of 32 bytes). */
const PUBLIC_KEY = "lrEnO9ljmMnWrqJBxzf0Wd+Qz9yEIyqdGt+HmVhFB5E=";

/** A valid value for every key, as TOML writes it and as its variable does. */
const WRITTEN: Record<ConfigKey, { toml: string; variable: string }> = {
  "dir": { toml: '"/cache"', variable: "/cache" },
  "backend": { toml: '"s3"', variable: "s3" },
  "read-only": { toml: "true", variable: "1" },
  "max-size": { toml: '"2G"', variable: "2G" },
  "hot-size": { toml: "1073741824", variable: "1G" },
  "compression-level": { toml: "3", variable: "3" },
  "signing-key-file": { toml: '"/key"', variable: "/key" },
  "trusted-keys": {
    toml: `["${PUBLIC_KEY}", "/keys/ci.pub"]`,
    variable: `${PUBLIC_KEY}, /keys/ci.pub`,
  },
  "idle-timeout": { toml: "60", variable: "60" },
  "workspace": { toml: "true", variable: "true" },
  "projects": { toml: "0", variable: "0" },
  "auto-rewarm": { toml: "true", variable: "1" },
  "place": { toml: "false", variable: "0" },
  "redis.url": { toml: '"redis://cache"', variable: "redis://cache" },
  "redis.prefix": { toml: '"r:"', variable: "r:" },
  "redis.ttl": { toml: "3600", variable: "3600" },
  "s3.bucket": { toml: '"team"', variable: "team" },
  "s3.region": { toml: '"eu-west-1"', variable: "eu-west-1" },
  "s3.endpoint": { toml: '"https://minio:9000"', variable: "https://minio:9000" },
  "s3.path-style": { toml: "false", variable: "false" },
  "s3.prefix": { toml: '"s/"', variable: "s/" },
  "http.url": { toml: '"https://cache:8080/rust/"', variable: "https://cache:8080/rust/" },
};

Deno.test("config: every key lands in its own field, from a file and from its variable", async () => {
  const expected = {
    dir: "/cache",
    backend: "s3",
    readOnly: true,
    maxSize: 2 * 1024 ** 3,
    hotSize: 1024 ** 3,
    compressionLevel: 3,
    signingKeyFile: "/key",
    trustedKeys: [PUBLIC_KEY, "/keys/ci.pub"],
    idleTimeoutSeconds: 60,
    workspace: true,
    projects: 0,
    autoRewarm: true,
    place: false,
    redis: { url: "redis://cache", prefix: "r:", ttlSeconds: 3600 },
    s3: {
      bucket: "team",
      region: "eu-west-1",
      endpoint: "https://minio:9000",
      pathStyle: false,
      prefix: "s/",
    },
    http: { url: "https://cache:8080/rust/" },
  };
  await using t = await tree({
    "project/.cargo/config.toml": `[warmup]\n${
      SETTINGS.map(({ key }) => `${key} = ${WRITTEN[key].toml}`).join("\n")
    }\n`,
  });
  const fromFile = await loadConfig({ cwd: t.project, env: t.env });
  assert.deepEqual(fromFile.config, expected);
  for (const { key } of SETTINGS) assert.equal(fromFile.sources[key].kind, "file", key);

  await Deno.remove(join(t.project, ".cargo"), { recursive: true });
  const variables = Object.fromEntries(
    SETTINGS.map(({ key, env }) => [env, WRITTEN[key].variable]),
  );
  const fromVariables = await loadConfig({ cwd: t.project, env: { ...t.env, ...variables } });
  assert.deepEqual(fromVariables.config, expected);
  for (const { key, env } of SETTINGS) {
    assert.deepEqual(fromVariables.sources[key], { kind: "env", name: env });
  }
});

Deno.test("config: s3.region falls back to AWS_REGION, then AWS_DEFAULT_REGION", async () => {
  await using t = await tree({});
  const region = async (env: Record<string, string>) => {
    const { config, sources } = await loadConfig({ cwd: t.project, env: { ...t.env, ...env } });
    return { region: config.s3.region, source: sources["s3.region"] };
  };
  assert.deepEqual(await region({ AWS_REGION: "eu-west-1", AWS_DEFAULT_REGION: "eu-north-1" }), {
    region: "eu-west-1",
    source: { kind: "env", name: "AWS_REGION" },
  });
  assert.deepEqual(await region({ AWS_REGION: "", AWS_DEFAULT_REGION: "eu-north-1" }), {
    region: "eu-north-1",
    source: { kind: "env", name: "AWS_DEFAULT_REGION" },
  });
  assert.deepEqual(await region({}), { region: "us-east-1", source: { kind: "default" } });
  await Deno.mkdir(join(t.project, ".cargo"));
  await Deno.writeTextFile(
    join(t.project, ".cargo", "config.toml"),
    '[warmup.s3]\nregion = "ap-south-1"\n',
  );
  assert.equal((await region({ AWS_REGION: "eu-west-1" })).region, "ap-south-1");
  assert.equal(
    (await region({ AWS_REGION: "eu-west-1", CARGO_WARMUP_S3_REGION: "sa-east-1" })).region,
    "sa-east-1",
  );
});

Deno.test("parseSize: units, and a clear RangeError otherwise", () => {
  assert.equal(parseSize("10G"), 10 * 1024 ** 3);
  assert.equal(parseSize("500M"), 500 * 1024 ** 2);
  assert.equal(parseSize("1.5k"), 1536);
  assert.equal(parseSize("2GiB"), 2 * 1024 ** 3);
  assert.equal(parseSize("1TB"), 1024 ** 4);
  assert.equal(parseSize("4096"), 4096);
  for (const bad of ["", "G", "-1G", "10X", "1.5", "ten"]) {
    assert.throws(
      () => parseSize(bad),
      (error: Error) => error instanceof RangeError && error.message.includes(`"${bad}"`),
    );
  }
});

Deno.test("config command: text and JSON output name each value's source", async () => {
  await using t = await tree({
    "project/.cargo/config.toml":
      '[warmup]\nbackend = "redis"\nhot-size = "1G"\n[warmup.redis]\nurl = "redis://u:pw@cache:6379/1"\n',
  });
  const script = `import { runConfigCommand } from ${
    JSON.stringify(new URL("../src/cli/config_command.ts", import.meta.url).href)
  };
Deno.exit(await runConfigCommand(Deno.args));`;
  const run = async (...args: string[]) => {
    const output = await new Deno.Command(Deno.execPath(), {
      // The import map is deno.json's, and the temporary project is outside the checkout.
      args: ["eval", "--quiet", "--config", DENO_JSON, script, ...args],
      cwd: t.project,
      env: {
        ...Object.fromEntries(
          Object.keys(Deno.env.toObject()).filter((name) => name.startsWith("CARGO_WARMUP_")).map((
            name,
          ) => [name, ""]),
        ),
        // HOME changes below; Deno's module cache must not move with it.
        DENO_DIR: Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/", ".cache", "deno"),
        ...t.env,
        CARGO_WARMUP_COMPRESSION_LEVEL: "12",
        CARGO_WARMUP_IDLE_TIMEOUT: "30",
        CARGO_WARMUP_HTTP_URL: "https://ci:http-pw@cache:8080/rust/",
      },
    }).output();
    return {
      code: output.code,
      stdout: new TextDecoder().decode(output.stdout),
      stderr: new TextDecoder().decode(output.stderr),
    };
  };
  const text = await run();
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /backend = "redis" +# .*project\/\.cargo\/config\.toml:2/);
  assert.match(text.stdout, /redis\.url = "redis:\/\/u:\*\*\*@cache:6379\/1"/);
  assert.match(text.stdout, /http\.url = "https:\/\/ci:\*\*\*@cache:8080\/rust" +# environment/);
  assert.doesNotMatch(text.stdout, /pw/);
  assert.match(
    text.stdout,
    /compression-level = 12 +# environment variable CARGO_WARMUP_COMPRESSION_LEVEL/,
  );
  assert.match(text.stdout, /max-size = "10G" +# default/);
  assert.match(text.stdout, /hot-size = "1G" +# .*config\.toml:3/);
  assert.match(text.stdout, /idle-timeout = 30 +# environment variable CARGO_WARMUP_IDLE_TIMEOUT/);
  assert.match(text.stdout, /projects = 20 +# default/);
  assert.match(text.stdout, /workspace = "incremental" +# default/);
  assert.match(text.stdout, /signing-key-file = \(not set\) +# default/);
  const json = await run("--json");
  const parsed = JSON.parse(json.stdout);
  assert.deepEqual(Object.keys(parsed.values), SETTINGS.map(({ key }) => key));
  assert.equal(parsed.values["hot-size"].value, "1G");
  assert.equal(parsed.values["signing-key-file"].value, null);
  assert.equal(parsed.values.backend.value, "redis");
  assert.equal(parsed.values["http.url"].value, "https://ci:***@cache:8080/rust");
  assert.doesNotMatch(json.stdout, /pw/);
  assert.equal(parsed.values.backend.source.line, 2);
  assert.deepEqual(parsed.values["compression-level"].source, {
    kind: "env",
    name: "CARGO_WARMUP_COMPRESSION_LEVEL",
  });
  const help = await run("--help");
  for (const { key, description } of SETTINGS) {
    assert.ok(help.stdout.includes(`  ${key} `) && help.stdout.includes(description), key);
  }
});

Deno.test("config command: unknown flags are usage errors", async () => {
  await assert.rejects(() => runConfigCommand(["--jsn"]), UsageError);
});

// workspace caching is on by default for a developer's incremental builds (local disk only);
// true adds CI's non-incremental builds and the shared levels; false turns it off.
Deno.test('config: workspace is "incremental" by default, true, false or "incremental"', async () => {
  await using t = await tree({});
  assert.equal((await loadConfig({ cwd: t.project, env: t.env })).config.workspace, "incremental");
  const workspaceOf = async (variable: string) =>
    (await loadConfig({ cwd: t.project, env: { ...t.env, CARGO_WARMUP_WORKSPACE: variable } }))
      .config.workspace;
  assert.equal(await workspaceOf("incremental"), "incremental");
  assert.equal(await workspaceOf("0"), false);
  assert.equal(await workspaceOf("1"), true);
  // A variable says yes or no by the words of every switch (envFlag).
  assert.equal(await workspaceOf("yes"), true);
  assert.equal(await workspaceOf("off"), false);
  await assert.rejects(() => workspaceOf("maybe"), /must be true, false or "incremental"/);
});
