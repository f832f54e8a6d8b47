#!/bin/sh
# zlib's own tests, then a program linked against the installed library.
set -e
cd "$WORKSPACE/$NAME-$VERSION.dfsg"
make test
cat > "$WORKSPACE/zcheck.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <zlib.h>
int main(void) {
    const char *text = "cairn cairn cairn cairn cairn";
    unsigned char packed[128], unpacked[128];
    uLongf plen = sizeof packed, ulen = sizeof unpacked;
    if (compress(packed, &plen, (const Bytef *)text, strlen(text) + 1) != Z_OK) return 1;
    if (uncompress(unpacked, &ulen, packed, plen) != Z_OK) return 2;
    if (strcmp((char *)unpacked, text) != 0) return 3;
    printf("zlib %s ok\n", zlibVersion());
    return 0;
}
C
cc -I"$SOFT_DIR/include" "$WORKSPACE/zcheck.c" -L"$SOFT_DIR/lib" -lz -o "$WORKSPACE/zcheck"
LD_LIBRARY_PATH="$SOFT_DIR/lib" "$WORKSPACE/zcheck"
