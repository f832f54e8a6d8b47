#!/bin/sh
# Only the dependencies this stack provides; the host's harfbuzz, bzip2 and brotli are left out on purpose.
set -e
cd "$WORKSPACE/$NAME-$VERSION"
./configure --prefix="$SOFT_DIR" --with-zlib=yes --with-png=yes \
    --without-harfbuzz --without-bzip2 --without-brotli
make -j2
make install
