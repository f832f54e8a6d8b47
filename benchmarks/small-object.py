#!/usr/bin/env python3
"""Prints PACK RANGE DIGEST of one small object of a directory repository: the first pack index entry stored in
200-4096 bytes (docs/format/repository.md, pack index: 49-byte entries after an 8-byte header). The serve
requests/s benchmarks (benchmarks/dist/run.sh, benchmarks/dashboard/run.sh) request it by Range."""
import os, struct, sys

repo = sys.argv[1]
for name in sorted(os.listdir(os.path.join(repo, 'packs'))):
    if not name.endswith('.idx'): continue
    idx = open(os.path.join(repo, 'packs', name), 'rb').read()
    count = struct.unpack('>I', idx[4:8])[0]
    for i in range(count):
        e = idx[8 + i * 49: 8 + (i + 1) * 49]
        off, stored = struct.unpack('>Q', e[32:40])[0], struct.unpack('>I', e[40:44])[0]
        if 200 <= stored <= 4096:
            print(name[:-4], f'bytes={off}-{off + stored - 1}', e[:32].hex()); sys.exit(0)
sys.exit('no object stored in 200-4096 bytes in ' + repo)
