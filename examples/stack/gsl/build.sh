#!/bin/sh
# The Debian tarball unpacks into gsl/, not gsl-2.7.1/.
set -e
cd "$WORKSPACE/gsl"
./configure --prefix="$SOFT_DIR"
make -j2
make install
