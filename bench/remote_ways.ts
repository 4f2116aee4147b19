// The benchmark's rows served by a remote level (Redis, S3, a plain HTTP cache) with the local
// level empty: each remote on loopback, and again behind a slow link (tests/_slow_link.ts) that
// makes it as far away as a team's shared cache across a WAN.

import { join } from "node:path";
import { S3RVER_CREDENTIALS, startNginx, startRedis, startS3 } from "../tests/backends/_servers.ts";
import { startSlowLink } from "../tests/_slow_link.ts";
import { runtimeDirFor } from "../tests/_daemons.ts";
import { settleDaemons } from "../src/daemon/settle.ts";
import { type BenchContext, project, warmupBuild, type Way } from "./ways.ts";

/**
 * A cargo-warmup build served by a remote warmed by a sibling copy, with the local level of the
 * timed build empty: what a new CI runner or laptop sees. The sibling fills the remote through
 * `fillEnv`, the timed build reads it through `buildEnv` (a slow link's, or the same), the team
 * manifest of the sibling's build first. The local levels' names are short: the daemon's socket sits beside them, and a Unix socket's path longer
 * than 107 bytes leaves the build to serve itself in-process, which is not what a row measures.
 */
async function remoteBuild(
  context: BenchContext,
  fillEnv: Record<string, string>,
  buildEnv = fillEnv,
) {
  const fillDir = join(context.work, "fill");
  await warmupBuild(context, await project(context, "sibling"), fillDir, "sibling.jsonl", fillEnv);
  // The sibling's calls settle (its stores and its team manifest written) before the timed build:
  // a CI job that fills the team cache is done before the next job reads it.
  await settleDaemons(runtimeDirFor(fillDir));
  return await warmupBuild(
    context,
    await project(context, "project"),
    join(context.work, "cache"),
    "project.jsonl",
    buildEnv,
  );
}

/** A remote's server, started for one measurement. */
interface RemoteServer extends AsyncDisposable {
  port: number;
  /** The environment that points a build at this server, reached at `port` on loopback. */
  envAt(port: number): Record<string, string>;
}

/** A kind of remote level, as the benchmark starts it. */
interface Remote {
  id: string;
  name: string;
  start(): Promise<RemoteServer>;
}

const REMOTES: Remote[] = [
  {
    id: "redis",
    name: "Redis",
    async start() {
      const server = await startRedis();
      return {
        port: server.port,
        envAt: (port) => ({
          CARGO_WARMUP_BACKEND: "redis",
          CARGO_WARMUP_REDIS_URL: server.url.replace(`:${server.port}/`, `:${port}/`),
        }),
        [Symbol.asyncDispose]: server.stop,
      };
    },
  },
  {
    id: "s3",
    name: "S3",
    async start() {
      const server = await startS3();
      return {
        port: server.port,
        envAt: (port) => ({
          CARGO_WARMUP_BACKEND: "s3",
          CARGO_WARMUP_S3_BUCKET: server.bucket,
          CARGO_WARMUP_S3_ENDPOINT: `http://127.0.0.1:${port}`,
          CARGO_WARMUP_S3_REGION: server.region,
          AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
        }),
        [Symbol.asyncDispose]: server.stop,
      };
    },
  },
  {
    id: "http",
    name: "HTTP cache (nginx WebDAV)",
    async start() {
      const server = await startNginx();
      return {
        port: server.port,
        envAt: (port) => ({
          CARGO_WARMUP_BACKEND: "http",
          CARGO_WARMUP_HTTP_URL: `http://127.0.0.1:${port}/open/`,
        }),
        [Symbol.asyncDispose]: server.stop,
      };
    },
  },
];

/** A team's shared cache across a WAN: 25 ms each way (a 50 ms round trip), 500 Mbit/s. */
const SLOW_LINK = { latencyMs: 25, bitsPerSecond: 500e6 };

/** The build served by `remote` on loopback. */
function remoteWay(remote: Remote): Way {
  return {
    id: remote.id,
    label: `cargo-warmup, warm ${remote.name}, empty local level`,
    baselines: ["floor"],
    async measure(context) {
      await using server = await remote.start();
      return await remoteBuild(context, server.envAt(server.port));
    },
  };
}

/**
 * The same build with the remote behind a slow link (tests/_slow_link.ts); the sibling fills it
 * directly, untimed. Compared with the build from local disk (`warm`) and from the near remote.
 */
function slowRemoteWay(remote: Remote): Way {
  return {
    id: `${remote.id}-slow`,
    label: `cargo-warmup, warm ${remote.name} through a slow link ` +
      `(${SLOW_LINK.latencyMs} ms each way, ${SLOW_LINK.bitsPerSecond / 1e6} Mbit/s), ` +
      "empty local level",
    baselines: ["floor", "warm", remote.id],
    async measure(context) {
      await using server = await remote.start();
      await using link = startSlowLink({ targetPort: server.port, ...SLOW_LINK });
      const measured = await remoteBuild(
        context,
        server.envAt(server.port),
        server.envAt(link.port),
      );
      return { ...measured, details: { ...measured.details, link: SLOW_LINK } };
    },
  };
}

/** Every remote's row on loopback, then every remote's row through the slow link. */
export const REMOTE_WAYS: Way[] = [...REMOTES.map(remoteWay), ...REMOTES.map(slowRemoteWay)];
