// Runs s3rver (the @20minutes fork: a fake S3 that checks SigV4 signatures server, credentials S3RVER/S3RVER) on loopback for the tests, with one
// bucket. Started by _servers.ts under Node; prints "ready <port>" once listening.
// Usage: node _s3rver_main.cjs <s3rver module dir> <port, 0 for a free one> <data dir> <bucket>
"use strict";
const [moduleDir, port, directory, bucket] = process.argv.slice(2);
const S3rver = require(require.resolve("@20minutes/s3rver", { paths: [moduleDir] }));
const server = new S3rver({
  address: "127.0.0.1",
  port: Number(port),
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
});
server.run().then(
  (address) => console.log(`ready ${address.port}`),
  (error) => {
    console.error(String(error));
    process.exit(1);
  },
);
// Exit at once: a graceful close would wait for clients' keep-alive connections.
process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
