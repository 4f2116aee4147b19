#!/usr/bin/env bash
# The project's test command: prepares the machine (scripts/setup.sh), then runs the whole test
# suite with the pinned Deno. Extra arguments go to `deno test` (e.g. --filter harness).
# A daemon a test started and left running fails the run (tests give each cache a runtime dir
# ending in `.run`; see tests/_daemons.ts).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
deno="$("$root/scripts/deno.sh")"
cd "$root"
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
status=0
# The JSDoc examples of the source run too (```ts ignore blocks are skipped by design).
"$deno" test --allow-all --doc "$@" mod.ts src/ backends/ || status=$?
"$deno" test --allow-all "$@" tests/ || status=$?

leftovers="$(pgrep -f -- 'daemon run --tag [^ ]+ --runtime-dir [^ ]+\.run$' || true)"
if [ -n "$leftovers" ]; then
  echo "error: tests left cargo-warmup daemons running (pids: $(echo $leftovers)); stopping them" >&2
  kill $leftovers 2>/dev/null || true
  status=1
fi
exit "$status"
