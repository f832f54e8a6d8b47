#!/bin/sh
# zlib is found through CPATH and LIBRARY_PATH, which the contract sets from ZLIB_DIR.
set -e
cd "$WORKSPACE/$NAME-$VERSION"
./configure --prefix="$SOFT_DIR"
make -j2
make install
