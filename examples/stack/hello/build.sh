#!/bin/sh
# CODE-RADE style: the archive is already unpacked into $WORKSPACE.
set -e
cd "$WORKSPACE/$NAME-$VERSION"
./configure --prefix="$SOFT_DIR"
make -j2
make install
