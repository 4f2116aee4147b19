import assert from "node:assert/strict";
import { createS3Store, loadAwsCredentials } from "../../backends/s3.ts";
import { StoreUnavailableError } from "../../backends/store.ts";
import { S3RVER_CREDENTIALS, type S3Server, startS3 } from "./_servers.ts";
import { testKey, testOutages, testStore } from "./store_suite.ts";

/** A store on `server` under `prefix`, with the server's credentials unless `extra` says. */
const open = (
  server: S3Server,
  prefix: string,
  extra: Partial<Parameters<typeof createS3Store>[0]> = {},
) =>
  createS3Store({
    bucket: server.bucket,
    region: server.region,
    endpoint: server.endpoint,
    pathStyle: true,
    prefix,
    credentials: S3RVER_CREDENTIALS,
    ...extra,
  });

// The suite's server, started and stopped by its hooks.
let suiteServer: S3Server | undefined;
testStore("s3", (namespace) => open(suiteServer!, `test/${namespace}/`), {
  before: async () => void (suiteServer = await startS3()),
  after: () => suiteServer!.stop(),
});

testOutages("s3", {
  async stopped() {
    const s3 = await startS3();
    await s3.stop();
    return open(s3, "down/");
  },
  async wrongCredentials() {
    const s3 = await startS3();
    return {
      store: open(s3, "creds/", {
        credentials: { accessKeyId: "S3RVER", secretAccessKey: "wrong" },
      }),
      cleanup: () => s3.stop(),
    };
  },
  refusedCredentials: /access denied.*credentials/,
});

const options = { sanitizeOps: false, sanitizeResources: false };

Deno.test("s3: an unknown access key is refused too", options, async () => {
  await using s3 = await startS3();
  const unknownId = open(s3, "creds/", {
    credentials: { accessKeyId: "NOBODY", secretAccessKey: "x" },
  });
  await assert.rejects(() => unknownId.list(), /access denied/);
});

Deno.test("s3: a missing bucket is unavailable, not a miss", options, async () => {
  await using s3 = await startS3();
  const store = open(s3, "x/", { bucket: "no-such-bucket" });
  await assert.rejects(() => store.get(testKey()), StoreUnavailableError);
});

Deno.test("s3: a silent server times out", options, async () => {
  // Accepts connections, never answers.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) held.push(conn);
  })().catch(() => {});
  const store = createS3Store({
    bucket: "b",
    region: "us-east-1",
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    credentials: S3RVER_CREDENTIALS,
    timeoutMs: 300,
  });
  const started = performance.now();
  await assert.rejects(() => store.get(testKey()), /no answer within 300 ms/);
  assert.ok(performance.now() - started < 2000);
  listener.close();
  for (const conn of held) conn.close();
});

Deno.test("s3: credentials come from the environment, then the shared file", async () => {
  assert.deepEqual(
    loadAwsCredentials({
      AWS_ACCESS_KEY_ID: "A",
      AWS_SECRET_ACCESS_KEY: "B",
      AWS_SESSION_TOKEN: "C",
    }),
    { accessKeyId: "A", secretAccessKey: "B", sessionToken: "C" },
  );
  const file = await Deno.makeTempFile();
  await Deno.writeTextFile(
    file,
    "[default]\naws_access_key_id = D1\naws_secret_access_key = D2\n\n[team]\naws_access_key_id=T1\naws_secret_access_key=T2\n",
  );
  assert.deepEqual(loadAwsCredentials({ AWS_SHARED_CREDENTIALS_FILE: file }), {
    accessKeyId: "D1",
    secretAccessKey: "D2",
  });
  assert.deepEqual(loadAwsCredentials({ AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: "team" }), {
    accessKeyId: "T1",
    secretAccessKey: "T2",
  });
  assert.equal(loadAwsCredentials({ AWS_SHARED_CREDENTIALS_FILE: `${file}.missing` }), undefined);
  await Deno.remove(file);
});
