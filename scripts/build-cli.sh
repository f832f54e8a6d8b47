#!/usr/bin/env bash
# Builds the shipped cairn: src/Cairn.Cli compiled ahead of time (Native AOT) for this host's runtime identifier —
# one self-contained executable with no JIT and no .NET runtime needed where it runs, so a command starts in
# milliseconds (docs/performance.md, "Native AOT"). Needs clang and zlib1g-dev (scripts/install-deps.sh installs
# them). Prints nothing unless the build fails.
#
#   bash scripts/build-cli.sh [OUT_DIR]       # default: artifacts/cairn; run OUT_DIR/cairn
#
# Knobs: CAIRN_RID (default linux-x64 or linux-arm64 from uname -m)
#        CAIRN_BUILD_ARTIFACTS (an --artifacts-path for intermediate files, so concurrent builds do not collide)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/artifacts/cairn}
case $(uname -m) in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
rid=${CAIRN_RID:-linux-$arch}

args=(publish "$root/src/Cairn.Cli" -c Release -r "$rid" -p:PublishAot=true -o "$out" -nologo -v quiet)
if [[ -n ${CAIRN_BUILD_ARTIFACTS:-} ]]; then args+=(--artifacts-path "$CAIRN_BUILD_ARTIFACTS"); fi

log=$(mktemp "${TMPDIR:-/tmp}/cairn-build-cli.XXXXXX")
trap 'rm -f "$log"' EXIT
if ! dotnet "${args[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "build-cli: building cairn failed (dotnet ${args[*]})" >&2
  exit 1
fi
