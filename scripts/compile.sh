#!/usr/bin/env bash
# Builds the single binary dist/cargo-warmup with `deno compile`, from mod.ts: the same entry
# point bin/cargo-warmup runs. deno compile needs the `denort` runtime of the same Deno version:
# it downloads it, or takes the one named by DENORT_BIN (for machines without that download).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deno="$("$root/scripts/deno.sh")"
mkdir -p "$root/dist"
if ! "$deno" compile --allow-all --no-prompt --config "$root/deno.json" \
  --include "$root/tiers" --include "$root/src/frontdoor/cargo_warmup.rs" \
  --include "$root/src/cache/unpack_worker.ts" --output "$root/dist/cargo-warmup" "$root/mod.ts"; then
  echo "error: deno compile failed. It needs the denort runtime for Deno $("$deno" --version | head -n 1):" >&2
  echo "       let it download one, or point DENORT_BIN at a denort binary of that version." >&2
  exit 1
fi
echo "built $root/dist/cargo-warmup"
