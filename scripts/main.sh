#!/usr/bin/env bash
# The main job, end to end on this machine: pre-warm tier 1, build the seed-001 workspace through
# the cache (counting what was served), and show `status`. Crates come from Debian's packages as
# an offline registry in a private CARGO_HOME under .tools/demo/, so nothing of yours is touched;
# the cache is .tools/demo/cache unless CARGO_WARMUP_DIR says otherwise.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
demo="$root/.tools/demo"
export CARGO_HOME="$demo/cargo-home"
export CARGO_WARMUP_DIR="${CARGO_WARMUP_DIR:-$demo/cache}"
# The demo's own daemon, stopped at the end, so none is left behind.
export CARGO_WARMUP_RUNTIME_DIR="$demo/run"
mkdir -p "$CARGO_HOME"
cat >"$CARGO_HOME/config.toml" <<'TOML'
# Written by scripts/main.sh: crates.io is replaced by Debian's packaged crates, offline.
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "/usr/share/cargo/registry"

[net]
offline = true
TOML

warmup="$root/bin/cargo-warmup"
trap '"$warmup" daemon stop >/dev/null 2>&1 || true' EXIT
# The native front door cargo runs for every rustc call; it hands them to the daemon.
front_door="$("$warmup" frontdoor)"
echo "== front door: $front_door"
echo "== cargo-warmup init --tier=1 --profile dev"
"$warmup" init --tier=1 --profile dev

echo
echo "== cargo build of the seed-001 workspace (server, worker, shared) through the cache"
project="$demo/seed001"
rm -rf "$project"
mkdir -p "$project"
cp -R "$root/tests/fixtures/seed001/." "$project/"
log="$demo/dispatch.jsonl"
rm -f "$log"
(cd "$project" && RUSTC_WRAPPER="$front_door" CARGO_WARMUP_LOG="$log" cargo build --locked)
echo "rustc calls: $(grep -c '"outcome":"hit"' "$log") served from the cache," \
  "$(grep -c '"outcome":"miss"' "$log") compiled and stored," \
  "$(grep -c '"outcome":"not-cacheable"' "$log") not cacheable (workspace crates, queries)"
"$project/target/debug/server"

echo
echo "== cargo-warmup status"
"$warmup" status

echo
echo "== cargo-warmup explain --last (why anything was compiled)"
(cd "$project" && "$warmup" explain --last)

echo
echo "== cargo-warmup report (the build's timeline as a page)"
(cd "$project" && "$warmup" report)
