#!/usr/bin/env bash
# Puts `cargo-warmup` on the PATH, in $CARGO_HOME/bin (default ~/.cargo/bin) or the directory
# given as the first argument, so that `cargo warmup status` works as a cargo subcommand and
# RUSTC_WRAPPER=cargo-warmup finds it. Installs the compiled binary when dist/ has one, else a
# link to the launcher (which runs this checkout's mod.ts with the pinned Deno).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-${CARGO_HOME:-$HOME/.cargo}/bin}"
mkdir -p "$dest"
if [ -x "$root/dist/cargo-warmup" ]; then
  install -m 0755 "$root/dist/cargo-warmup" "$dest/cargo-warmup"
else
  "$root/bin/cargo-warmup" --version >/dev/null # installs the pinned Deno now, not mid-build
  ln -sfn "$root/bin/cargo-warmup" "$dest/cargo-warmup"
fi
echo "installed $dest/cargo-warmup"
case ":$PATH:" in
  *":$dest:"*) ;;
  *) echo "note: $dest is not on your PATH; add it to use 'cargo warmup'" >&2 ;;
esac
