#!/usr/bin/env bash
# Prepares a Debian machine for the tests and the benchmark: the Debian crate sources the
# fixtures build against offline, redis-server and sccache, xfsprogs (a file system with
# reflinks for the clone test), nginx-light (a WebDAV cache for the HTTP backend's tests), chromium
# (renders the build report in a test), Debian's own cargo 0.66 / rustc 1.63 in /usr/bin (an older second
# toolchain for the upgrade test; rustup's stays first on PATH), and the pinned Deno. Idempotent and
# quick when everything is already there, so scripts/test.sh can call it on every run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The fixtures' Cargo.lock files pin exactly the versions Debian bookworm ships. Debian does not
# split tokio, hyper or serde_json into per-feature packages; their Depends already pull in every
# optional dependency, so these six (serde's derive feature is the one split package) are the
# roots of the whole closure (~100 librust-*-dev packages).
packages=(
  librust-tokio-dev
  librust-hyper-dev
  librust-serde-dev
  librust-serde+serde-derive-dev
  librust-serde-derive-dev
  librust-serde-json-dev
  librust-anyhow-dev
  librust-thiserror-dev
  # The C-library fixtures (tests/fixtures/crates/cmath-sys-*, zprobe-sys-*): the cc and
  # pkg-config crates, and a system zlib for pkg-config to find.
  librust-cc-dev
  librust-pkg-config-dev
  pkg-config
  zlib1g-dev
  redis-server
  sccache
  xfsprogs
  nginx-light
  chromium
  cargo
  rustc
)
# The launcher installs Deno from npm; Debian's npm is the fallback when none is on PATH.
command -v npm >/dev/null || packages+=(npm)

missing=()
for package in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ] || missing+=("$package")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # A fresh image often has empty package lists; only then is `apt-get update` worth its time.
  needs_update=0
  for package in "${missing[@]}"; do
    candidate="$(apt-cache policy "$package" 2>/dev/null | awk '/Candidate:/ { print $2 }')"
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then needs_update=1; fi
  done
  if [ "$needs_update" -eq 1 ]; then
    echo "setup: apt-get update" >&2
    apt-get update -qq
  fi
  echo "setup: installing ${missing[*]}" >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

for tool in cargo rustc; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is not on PATH (install Rust with rustup)" >&2; exit 1; }
done

# Installs Deno into .tools/ on first use; scripts/deno.sh does that through the launcher.
"$root/scripts/deno.sh" >/dev/null
