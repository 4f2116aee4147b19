#!/usr/bin/env bash
# The project's test command: prepares the machine (scripts/setup.sh), then runs the whole test
# suite with the pinned Deno. Extra arguments go to `deno test` (e.g. --filter harness).
# A daemon a test started and left running fails the run: every temporary directory of the run
# (and so every runtime dir a test gives a cache, see tests/_daemons.ts) is under one TMPDIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
deno="$("$root/scripts/deno.sh")"
cd "$root"
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
# The shared warm cache stays in the system's temp dir, reused by later runs (it is keyed).
export CARGO_WARMUP_TEST_SHARED_DIR="${CARGO_WARMUP_TEST_SHARED_DIR:-${TMPDIR:-/tmp}}"
# Short: a Unix socket path must fit in 108 bytes, and runtime dirs live deep in here.
run_tmp="$(mktemp -d /tmp/cw-XXXXXX)"
export TMPDIR="$run_tmp"
status=0
# The JSDoc examples of the source run too (```ts ignore blocks are skipped by design).
"$deno" test --allow-all --doc "$@" mod.ts src/ backends/ || status=$?
"$deno" test --allow-all "$@" tests/ || status=$?

leftovers="$(pgrep -f -- "daemon run --tag [^ ]+ --runtime-dir $run_tmp/" || true)"
if [ -n "$leftovers" ]; then
  echo "error: tests left cargo-warmup daemons running; stopping them:" >&2
  ps -o pid=,args= -p "$(echo $leftovers | tr ' ' ,)" >&2 || true
  kill $leftovers 2>/dev/null || true
  status=1
fi
rm -rf "$run_tmp"
exit "$status"
