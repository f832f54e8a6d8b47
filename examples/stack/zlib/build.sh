#!/bin/sh
set -e
cd "$WORKSPACE/$NAME-$VERSION.dfsg"
./configure --prefix="$SOFT_DIR"
make -j2
make install
