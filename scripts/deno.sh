#!/usr/bin/env bash
# Prints the path of the pinned Deno that bin/cargo-warmup runs, letting the launcher install it
# first if needed, so scripts and CI use the very same binary as the RUSTC_WRAPPER does.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_WARMUP_PRINT_DENO=1 exec "$root/bin/cargo-warmup"
