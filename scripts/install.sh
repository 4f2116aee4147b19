#!/usr/bin/env bash
# Installs cargo-warmup in $CARGO_HOME/bin (default ~/.cargo/bin) or the directory given as the
# first argument: the native front door (compiled here with your rustc) as `cargo-warmup` and
# `cargo_warmup_dispatch`, so that RUSTC_WRAPPER=cargo-warmup and `cargo warmup status` work, and
# the program it hands manager commands and in-process calls to: the compiled binary from dist/
# as `cargo-warmup-program` when there is one, else this checkout's launcher.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-${CARGO_HOME:-$HOME/.cargo}/bin}"
mkdir -p "$dest"
if [ -x "$root/dist/cargo-warmup" ]; then
  install -m 0755 "$root/dist/cargo-warmup" "$dest/cargo-warmup-program"
  program="$dest/cargo-warmup-program"
else
  "$root/bin/cargo-warmup" --version >/dev/null # installs the pinned Deno now, not mid-build
  program="$root/bin/cargo-warmup"
fi
# The front door names the program it runs; building it through that program bakes that in.
front_door="$(CARGO_WARMUP_EXE="$program" "$program" frontdoor --out "$dest/.cargo-warmup-frontdoor")"
install -m 0755 "$front_door" "$dest/cargo-warmup"
install -m 0755 "$front_door" "$dest/cargo_warmup_dispatch"
echo "installed $dest/cargo-warmup and $dest/cargo_warmup_dispatch (front door for $program)"
case ":$PATH:" in
  *":$dest:"*) ;;
  *) echo "note: $dest is not on your PATH; add it to use 'cargo warmup'" >&2 ;;
esac
