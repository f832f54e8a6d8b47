#!/bin/sh
# FreeType has no test suite in its tarball: compile and run a program against the installed library.
set -e
cat > "$WORKSPACE/ftcheck.c" <<'C'
#include <stdio.h>
#include <ft2build.h>
#include FT_FREETYPE_H
int main(void) {
    FT_Library library;
    FT_Int major, minor, patch;
    if (FT_Init_FreeType(&library) != 0) return 1;
    FT_Library_Version(library, &major, &minor, &patch);
    printf("freetype %d.%d.%d ok\n", major, minor, patch);
    return FT_Done_FreeType(library);
}
C
export PKG_CONFIG_PATH="$SOFT_DIR/lib/pkgconfig:$PKG_CONFIG_PATH"
cc $(pkg-config --cflags freetype2) "$WORKSPACE/ftcheck.c" $(pkg-config --libs freetype2) -o "$WORKSPACE/ftcheck"
LD_LIBRARY_PATH="$SOFT_DIR/lib:$LD_LIBRARY_PATH" "$WORKSPACE/ftcheck" | grep -x "freetype $VERSION ok"
