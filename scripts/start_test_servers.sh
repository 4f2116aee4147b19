#!/usr/bin/env bash
# Installs what the backend tests start: redis-server from Debian and the fake S3 server
# (@20minutes/s3rver, run under Node) from npm into .tools/s3rver. The tests start and stop the
# servers themselves on free loopback ports; `--run` starts both here in the foreground instead,
# for trying the backends by hand (Redis on 6379, S3 on 4568, bucket "warmup", keys S3RVER/S3RVER).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v redis-server >/dev/null; then
  echo "start_test_servers: installing redis-server (apt)" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >&2
fi
if ! command -v node >/dev/null; then
  echo "start_test_servers: Node.js is needed to run the fake S3 server" >&2
  exit 1
fi
if [ ! -f "$root/.tools/s3rver/node_modules/@20minutes/s3rver/package.json" ]; then
  echo "start_test_servers: installing @20minutes/s3rver (npm) into .tools/s3rver" >&2
  mkdir -p "$root/.tools/s3rver"
  npm install --silent --no-audit --no-fund --prefix "$root/.tools/s3rver" @20minutes/s3rver@5.0.0 >&2
fi

if [ "${1:-}" = "--run" ]; then
  data="$(mktemp -d)"
  trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$data"' EXIT
  redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --dir "$data" &
  node "$root/tests/backends/_s3rver_main.cjs" "$root/.tools/s3rver" 4568 "$data/s3" warmup &
  wait
fi
