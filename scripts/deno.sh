#!/usr/bin/env bash
# Prints the path of the pinned Deno that bin/cargo-warmup runs, letting the launcher install it
# first if needed, so scripts and CI use the very same binary as the RUSTC_WRAPPER does.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(sed -n 's/^DENO_VERSION="\(.*\)"$/\1/p' "$root/bin/cargo-warmup")"
tools="$root/.tools/deno-$version"

# Same candidates and the same "not a Node.js shim" test as the launcher's find_deno.
find_deno() {
  local candidate
  for candidate in "$tools/node_modules/deno/deno" "$tools"/node_modules/@deno/*/deno; do
    if [ -f "$candidate" ] && [ -x "$candidate" ] && [ "$(head -c 2 "$candidate")" != "#!" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ -n "${CARGO_WARMUP_DENO:-}" ]; then
  echo "$CARGO_WARMUP_DENO"
  exit 0
fi
if ! find_deno; then
  # The launcher owns installation (and its lock); its own exit status is irrelevant here, as
  # the program behind it may not run yet while Deno itself installed fine.
  "$root/bin/cargo-warmup" --version >/dev/null 2>&1 || true
  find_deno || { echo "deno.sh: bin/cargo-warmup did not install Deno $version into $tools" >&2; exit 1; }
fi
