#!/bin/sh
set -e
cd "$WORKSPACE/$NAME-$VERSION"
make -j2 check
