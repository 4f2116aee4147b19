import assert from "node:assert/strict";
import { createS3Store, loadAwsCredentials } from "../../backends/s3.ts";
import { StoreUnavailableError } from "../../backends/store.ts";
import { S3RVER_CREDENTIALS, type S3Server, startS3 } from "./_servers.ts";
import { testKey, testOutages, testStore } from "./store_suite.ts";

// A timer, an op or a socket a test leaves behind fails it (see store_suite.ts).
Deno.test.sanitizer({ ops: true, resources: true });

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

// The shared suite against one server that outlives its cases (so a leaked socket fails one).
await testStore("s3", async () => {
  const server = await startS3();
  return { open: (namespace) => open(server, `test/${namespace}/`), close: () => server.stop() };
});

// Outages (a stopped server, before or during a session, and a refused secret key) are the
// shared outage suite's; the secret key must never show in what the store says.
const WRONG_SECRET = "not-the-S3RVER-secret-key";
testOutages("s3", {
  async start() {
    const server = await startS3();
    return {
      open: () => open(server, "outage/"),
      openWithWrongCredentials: () =>
        open(server, "outage/", {
          credentials: {
            accessKeyId: S3RVER_CREDENTIALS.accessKeyId,
            secretAccessKey: WRONG_SECRET,
          },
        }),
      stop: () => server.stop(),
    };
  },
  openOnSilentServer: ({ hostname, port }, timeoutMs) =>
    createS3Store({
      bucket: "b",
      region: "us-east-1",
      endpoint: `http://${hostname}:${port}`,
      credentials: S3RVER_CREDENTIALS,
      timeoutMs,
    }),
  refusedCredentials: /access denied.*credentials/,
  secrets: [WRONG_SECRET],
});

// The access key id is checked too, not only the signature made with the secret.
Deno.test("s3: an unknown access key is refused too", async () => {
  await using s3 = await startS3();
  const unknownId = open(s3, "creds/", {
    credentials: { accessKeyId: "NOBODY", secretAccessKey: "x" },
  });
  const refusal = await unknownId.list().then(
    () => assert.fail("an unknown access key listed the bucket"),
    (error: unknown) => error,
  );
  assert.ok(refusal instanceof StoreUnavailableError, String(refusal));
  assert.ok(
    refusal.message.startsWith(`Cannot reach cache store "${unknownId.location}": access denied`),
    refusal.message,
  );
  await unknownId.close();
});

// A bucket that does not exist is a broken setting: unavailable (and warned about), not a miss.
Deno.test("s3: a missing bucket is unavailable, not a miss", async () => {
  await using s3 = await startS3();
  const store = open(s3, "x/", { bucket: "no-such-bucket" });
  const error = await store.get(testKey()).then(
    () => assert.fail("a read from a missing bucket succeeded"),
    (error: unknown) => error,
  );
  assert.ok(error instanceof StoreUnavailableError, String(error));
  assert.ok(
    error.message.startsWith(`Cannot reach cache store "${store.location}": HTTP 404`),
    error.message,
  );
  assert.match(error.message, /NoSuchBucket/);
  await store.close();
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
