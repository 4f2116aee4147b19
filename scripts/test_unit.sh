#!/usr/bin/env bash
# The fast loop (`deno task test:unit`, under 2 minutes): the doc examples of the source and every
# test file that drives no cargo. The files are picked by a rule, not a list: a test file is left
# out exactly when its imports reach tests/_run.ts, the one road from a test to cargo (see
# scripts/unit_tests.ts; tests/unit_tests_test.ts keeps the rule honest). It needs no heavy lock.
# It does not run scripts/setup.sh (`deno task test` does): run that once on a new machine.
# Extra arguments go to `deno test` (e.g. --filter store).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deno="$("$root/scripts/deno.sh")"
cd "$root"
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
# Short: a Unix socket path must fit in 108 bytes.
run_tmp="$(mktemp -d /tmp/cw-XXXXXX)"
export TMPDIR="$run_tmp"
trap 'rm -rf "$run_tmp"' EXIT
mapfile -t files < <("$deno" run --allow-read scripts/unit_tests.ts)
status=0
# The JSDoc examples of the source run too (```ts ignore blocks are skipped by design).
"$deno" test --allow-all --doc "$@" mod.ts src/ backends/ || status=$?
"$deno" test --allow-all "$@" "${files[@]}" || status=$?
exit "$status"
