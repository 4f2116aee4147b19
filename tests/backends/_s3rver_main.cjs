// Runs s3rver (a fake S3 server, credentials S3RVER/S3RVER) on loopback for the tests, with one
// bucket. Started by _servers.ts under Node; prints "ready <port>" once listening.
// Usage: node _s3rver_main.cjs <s3rver module dir> <port> <data dir> <bucket>
"use strict";
const [moduleDir, port, directory, bucket] = process.argv.slice(2);
const S3rver = require(require.resolve("s3rver", { paths: [moduleDir] }));
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
const stop = () => server.close().finally(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
