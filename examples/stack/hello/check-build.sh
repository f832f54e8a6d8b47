#!/bin/sh
set -e
cd "$WORKSPACE/$NAME-$VERSION"
make check
"$SOFT_DIR/bin/hello" | grep -x 'Hello, world!'
