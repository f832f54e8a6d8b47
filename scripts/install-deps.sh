#!/usr/bin/env bash
# Installs what Cairn and its tests use on Debian 12 (run as root). Idempotent and quiet when all is present.
set -euo pipefail

packages=(
  bubblewrap          # the build sandbox
  util-linux          # prlimit, mount
  fuse3               # the read-only mount
  build-essential pkg-config   # the example stack's builds
  tar gzip bzip2 xz-utils zstd # real tarballs in tests
  strace              # fsync fault injection in tests
  environment-modules tcl      # modulefiles; Lmod comes from scripts/install-lmod.sh below
  postgresql          # the coordination store's PostgreSQL backend in tests (scripts/start-postgres.sh)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root: sudo $0)" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v dotnet >/dev/null || { echo "install-deps: the .NET 10 SDK is required (https://dot.net)" >&2; exit 2; }

# Lmod beside environment-modules (the Debian packages conflict): unpacked, not installed.
if [ "$(id -u)" = 0 ]; then
  bash "$(dirname "$0")/install-lmod.sh"
fi
