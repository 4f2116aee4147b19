#!/usr/bin/env bash
# The project's test command: prepares the machine (scripts/setup.sh), then runs the whole test
# suite with the pinned Deno. Extra arguments go to `deno test` (e.g. --filter harness).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
deno="$("$root/scripts/deno.sh")"
cd "$root"
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
exec "$deno" test --allow-all "$@" tests/
