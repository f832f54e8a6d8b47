#!/usr/bin/env python3
"""Checks a `cairn log prove --json` inclusion proof without Cairn (docs/format/transparency-log.md §7).

Only the standard library: RFC 6962 hashing and the RFC 9162 §2.1.3.2 verification. Checking the checkpoint's
Ed25519 signature needs a signature library and is left to the reader (§7 says how). Prints ok or bad.
"""
import base64, hashlib, json, sys

def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()

proof = json.load(open(sys.argv[1]))
text = proof["checkpoint"].split("\n\n")[0] + "\n"
origin, size, root = text.splitlines()[:3]
size, root = int(size), base64.b64decode(root)
index = proof["index"]
entry = base64.b64decode(proof["entry"])
r = hashlib.sha256(b"\x00" + entry).digest()
fn, sn = index, size - 1
ok = index < size
for p in (base64.b64decode(p) for p in proof["proof"]):
    if sn == 0:
        ok = False
        break
    if fn & 1 or fn == sn:
        r = node(p, r)
        while not fn & 1 and fn != 0:
            fn >>= 1
            sn >>= 1
    else:
        r = node(r, p)
    fn >>= 1
    sn >>= 1
print("ok" if ok and sn == 0 and r == root else "bad")
