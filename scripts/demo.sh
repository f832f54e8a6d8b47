#!/usr/bin/env bash
# Cairn's main job on its embedded default (a directory repository), on a fresh Debian machine as root:
# install what is needed, build cairn, publish a real tree, list it, materialize it and verify the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
dotnet build src/Cairn.Cli -c Release -o artifacts/cairn -v quiet -nologo >/dev/null
cairn() { dotnet artifacts/cairn/cairn.dll "$@"; }

demo=${DEMO_DIR:-$PWD/demo}
rm -rf "$demo"
mkdir -p "$demo/src"
export CAIRN_REPO=$demo/repo

tar -xzf examples/stack/sources/hello_2.10.orig.tar.gz -C "$demo/src"
cairn init
cairn publish hello/2.10 "$demo/src/hello-2.10"
cairn list
cairn materialize hello/2.10 "$demo/deploy"
diff -r "$demo/src/hello-2.10" "$demo/deploy/linux-x86_64/hello/2.10" && echo "materialized tree is identical to the source"
cairn export hello/2.10 -o "$demo/hello.tar.zst"
cairn verify --full
