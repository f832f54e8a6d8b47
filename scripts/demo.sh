#!/usr/bin/env bash
# Cairn's main job on a fresh Debian 12 machine, as root: install what is needed, build cairn, then build the
# example stack (hello, and zlib -> libpng -> freetype) from recipes with `cairn build`, each package in fresh
# bubblewrap sandboxes, published only when its check passes. Then list, materialize and verify the products,
# and use them through environment modules. Idempotent: a second run builds nothing ("up to date").
# gsl (about 7 minutes) builds on request: cairn build examples/stack --only gsl --sources DIR_WITH_ITS_TARBALL
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh    # bubblewrap, build-essential, pkg-config, environment-modules, tar/bzip2/xz-utils, ...
bash scripts/build-cli.sh      # Release, compiled ahead of time (Native AOT), into artifacts/cairn
cairn() { artifacts/cairn/cairn "$@"; }

demo=${DEMO_DIR:-$PWD/demo}
export CAIRN_REPO=$demo/repo
mkdir -p "$demo"
if [ -f "$CAIRN_REPO/cairn.json" ] && cairn list --json | grep -q '"name"' && ! cairn list --json | grep -q '"buildKey"'; then
  # A repository left by an earlier version of this demo (products published by hand): start afresh.
  rm -rf "$CAIRN_REPO"
fi
[ -f "$CAIRN_REPO/cairn.json" ] || cairn init
platform=$(sed -n 's/.*"platform": *"\([^"]*\)".*/\1/p' "$CAIRN_REPO/cairn.json")
stack=(examples/stack --only hello --only freetype)

echo; echo "== what would build, and why"
cairn plan "${stack[@]}" || true
echo; echo "== build (logs with -v; failed builds are kept under $CAIRN_REPO/builds)"
cairn build "${stack[@]}" --junit "$demo/build-junit.xml"

echo; echo "== the repository"
cairn list
cairn show freetype/2.12.1 | head -n 9
cairn verify

echo; echo "== materialized with modulefiles into $demo/deploy"
rm -rf "$demo/deploy"
cairn materialize --with-deps --modules hello/2.10 freetype/2.12.1 "$demo/deploy"

echo; echo "== environment modules: module use $demo/deploy/modules/$platform"
bash -c '
  set -e
  source /usr/share/modules/init/bash
  module use "$1/modules/$2"
  module avail 2>&1
  module load hello freetype      # freetype loads libpng, which loads zlib
  module list 2>&1
  hello --greeting="hello from cairn"
  cat > "$1/ft.c" <<C
#include <ft2build.h>
#include FT_FREETYPE_H
#include <stdio.h>
int main(void) {
    FT_Library lib; FT_Int a, b, c;
    if (FT_Init_FreeType(&lib)) return 1;
    FT_Library_Version(lib, &a, &b, &c);
    printf("compiled and ran against freetype %d.%d.%d from %s\n", a, b, c, getenv("FREETYPE_DIR"));
    return 0;
}
C
  cc -I"$FREETYPE_DIR/include/freetype2" "$1/ft.c" -lfreetype -o "$1/ft" && "$1/ft"
' demo "$demo/deploy" "$platform"

echo; echo "== done: repository $CAIRN_REPO; run this script again and everything is up to date"
