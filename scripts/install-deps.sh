#!/usr/bin/env bash
# Installs what Cairn and its tests use on Debian 12 (run as root). Idempotent and quiet when all is present.
set -euo pipefail

packages=(
  bubblewrap          # the build sandbox
  util-linux          # prlimit, mount
  fuse3               # the read-only mount
  build-essential pkg-config   # the example stack's builds
  cmake               # build tests: a CMake package installs into lib/ in the sandbox as on the host
  libpng-dev          # build tests: CODE-RADE's freetype-deploy takes libpng from the host (host-modules)
  tar gzip bzip2 xz-utils zstd # real tarballs in tests
  strace              # fsync fault injection in tests
  environment-modules tcl      # modulefiles; Lmod comes from scripts/install-lmod.sh below
  postgresql          # the coordination store's PostgreSQL backend in tests (scripts/start-postgres.sh)
  nginx               # distribution tests: the repository served as plain files (tests start it themselves)
  squid               # distribution tests: a caching HTTP proxy between clients and servers (tests start it)
  faketime            # trust tests: a client whose clock is days ahead refuses an expired signed manifest
  debootstrap         # build environments: a Debian root file system imported as a product (scripts/make-rootfs.sh)
  busybox-static      # build environment tests: a tiny static root file system
  clang zlib1g-dev    # Native AOT compilation of the shipped cairn (scripts/build-cli.sh)
  python3             # tests: another process holding a POSIX record lock (client cache fill locks)
  chromium            # dashboard end-to-end tests (Microsoft.Playwright drives Debian's browser; no browser download)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run it as root)" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The tests start nginx and squid themselves on free loopback ports: keep the packages from starting system
  # services (nginx would hold port 80, squid 3128) for the duration of the install.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
  fi
  status=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  [ "$own_policy" = 1 ] && rm -f "$policy"
  [ "$status" = 0 ] || exit "$status"
fi

command -v dotnet >/dev/null || { echo "install-deps: the .NET 10 SDK is required (https://dot.net)" >&2; exit 2; }

# Lmod beside environment-modules (the Debian packages conflict): unpacked, not installed.
if [ "$(id -u)" = 0 ]; then
  bash "$(dirname "$0")/install-lmod.sh"
fi

# s3rver: the S3-compatible server the S3 backend's tests start (docs/adr/0007-s3-backend.md). Needs Node.js and npm.
s3rver_dir=${CAIRN_S3RVER_DIR:-/opt/cairn-tools/s3rver}
if [ ! -f "$s3rver_dir/node_modules/s3rver/package.json" ]; then
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
      echo "install-deps: npm is missing (run it as root)" >&2; exit 2
    fi
  fi
  mkdir -p "$s3rver_dir"
  npm install --silent --no-audit --no-fund --prefix "$s3rver_dir" s3rver@3.7.1 >/dev/null
fi

# The second DSSE implementation the provenance tests check Cairn's envelopes against (@sigstore/core on Node.js
# >= 20.17; tests/interop/dsse, pinned by its package-lock.json). Installed into the checkout, where the tests find it.
dsse_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/interop/dsse"
if [ ! -f "$dsse_dir/node_modules/@sigstore/core/package.json" ]; then
  command -v npm >/dev/null || { echo "install-deps: npm is missing (apt-get install nodejs npm)" >&2; exit 2; }
  npm ci --silent --no-audit --no-fund --prefix "$dsse_dir" >/dev/null
fi
