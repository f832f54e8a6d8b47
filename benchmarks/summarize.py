#!/usr/bin/env python3
"""Turns benchmarks/run.sh's results.tsv into markdown tables and the issue-3 target ratios (PASS/MISS)."""
import statistics
import sys
from collections import defaultdict

results, machine = sys.argv[1], sys.argv[2]
wall = defaultdict(list)  # (tool, op, tree) -> [seconds]
cpu = defaultdict(list)
size = {}
failed = set()
for line in open(results):
    f = line.rstrip("\n").split("\t")
    if len(f) < 5:
        continue
    tool, op, tree, run, w = f[:5]
    if w == "FAIL":
        failed.add((tool, op, tree))
        continue
    if op == "size":
        size[(tool, tree)] = int(w)
        continue
    wall[(tool, op, tree)].append(float(w))
    cpu[(tool, op, tree)].append(float(f[5] or 0) + float(f[6] or 0))


def med(d, key):
    v = d.get(key)
    return statistics.median(v) if v else None


def fmt_s(key):
    w = med(wall, key)
    if w is None:
        return "FAIL" if key in failed else "–"
    c = med(cpu, key)
    n = len(wall[key])
    return f"{w:.2f} ({c:.1f})" + ("" if n == 1 else "")


def fmt_b(v):
    return "–" if v is None else f"{v / 1e6:,.1f} MB"


out = []
out.append("```")
out.extend(l.rstrip("\n") for l in open(machine))
out.append("```")
out.append("")
out.append("Times are wall-clock seconds, median of the runs, with CPU seconds (user + system) in parentheses.")
out.append("")

tools = ["cairn", "tar", "ostree-archive", "ostree-bare", "restic", "casync", "squashfs", "borg"]
out.append("### Publish / commit / backup")
out.append("")
out.append("| tool | publish A | publish B | incremental A′ | repo A | repo B | repo A + A′ |")
out.append("|---|---|---|---|---|---|---|")
for t in tools:
    if not any(k[0] == t for k in list(wall) + list(failed)):
        continue
    out.append(f"| {t} | {fmt_s((t, 'publish', 'A'))} | {fmt_s((t, 'publish', 'B'))} | {fmt_s((t, 'incremental', 'Ap'))} | "
               f"{fmt_b(size.get((t, 'A')))} | {fmt_b(size.get((t, 'B')))} | {fmt_b(size.get((t, 'A+Ap')))} |")
out.append("")
out.append("tar and squashfs have no incremental mode (A′ would be a full re-create, the same as publish A).")
out.append("")

out.append("### Materialize / checkout / extract")
out.append("")
out.append("| tool | A | B |")
out.append("|---|---|---|")
names = {
    "cairn-warm": "cairn materialize (warm cache: hardlinks)",
    "cairn-cold": "cairn materialize --no-cache (from packs)",
    "cairn-fill": "cairn materialize (first: fills the cache)",
    "tar": "tar -x (zstd)",
    "ostree-archive": "ostree checkout (archive)",
    "ostree-bare": "ostree checkout (bare-user, hardlinks)",
    "restic": "restic restore",
    "casync": "casync extract",
    "squashfs": "unsquashfs",
    "borg": "borg extract",
    "cp-a": "cp -a",
    "cp-al": "cp -al",
}
for t, label in names.items():
    if not any(k[0] == t and k[1] == "extract" for k in list(wall) + list(failed)):
        continue
    out.append(f"| {label} | {fmt_s((t, 'extract', 'A'))} | {fmt_s((t, 'extract', 'B'))} |")
out.append("")
out.append("### verify --full against zstd -d over the same compressed bytes (repository holding A and A′)")
out.append("")
out.append(f"| cairn verify --full | {fmt_s(('cairn', 'verify', 'A+Ap'))} |")
out.append("|---|---|")
out.append(f"| zstd -d | {fmt_s(('zstd-d', 'verify', 'A+Ap'))} |")
out.append("")

rows = []


def verdict(r, limit, strict=False):
    return "PASS" if (r < limit if strict else r <= limit) else "MISS"


def target(label, num, den, limit, cnum=None, cden=None):
    if num is None or den is None or den == 0:
        rows.append(f"| {label} | – | – | ≤ {limit}× | n/a | n/a |")
        return
    r = num / den
    if cnum is not None and cden:
        c = cnum / cden
        rows.append(f"| {label} | {r:.2f}× | {c:.2f}× | ≤ {limit}× | {verdict(r, limit)} | {verdict(c, limit)} |")
    else:
        rows.append(f"| {label} | {r:.2f}× | – | ≤ {limit}× | {verdict(r, limit)} | – |")


def timed(label, t, op, tree, peer, peer_op, limit):
    target(label, W(t, op, tree), W(peer, peer_op, tree), limit, C(t, op, tree), C(peer, peer_op, tree))


def ahead(label, tree):
    peers = [t for t in ["ostree-archive", "ostree-bare", "restic", "casync", "borg"] if W(t, "publish", tree) is not None]
    if W("cairn", "publish", tree) is None or not peers:
        rows.append(f"| {label} | – | – | < 1.0× | n/a | n/a |")
        return
    bw = min(peers, key=lambda t: W(t, "publish", tree))
    bc = min(peers, key=lambda t: C(t, "publish", tree))
    r = W("cairn", "publish", tree) / W(bw, "publish", tree)
    c = C("cairn", "publish", tree) / C(bc, "publish", tree)
    rows.append(f"| {label} (fastest: {bw} wall, {bc} cpu) | {r:.2f}× | {c:.2f}× | < 1.0× | {verdict(r, 1, True)} | {verdict(c, 1, True)} |")


W = lambda t, op, tree: med(wall, (t, op, tree))
C = lambda t, op, tree: med(cpu, (t, op, tree))
timed("publish A / tar+zstd", "cairn", "publish", "A", "tar", "publish", 1.0)
ahead("publish A ahead of every repository peer", "A")
timed("publish B / restic", "cairn", "publish", "B", "restic", "publish", 1.0)
timed("publish B / tar+zstd", "cairn", "publish", "B", "tar", "publish", 2.0)
ahead("publish B ahead of every repository peer", "B")
target("incremental A′ / full publish A", W("cairn", "incremental", "Ap"), W("cairn", "publish", "A"), 0.15,
       C("cairn", "incremental", "Ap"), C("cairn", "publish", "A"))
timed("incremental A′ / restic incremental", "cairn", "incremental", "Ap", "restic", "incremental", 1.0)
for tree in "AB":
    timed(f"materialize {tree} from cache / cp -al", "cairn-warm", "extract", tree, "cp-al", "extract", 1.5)
for tree in "AB":
    timed(f"cold materialize {tree} / unsquashfs", "cairn-cold", "extract", tree, "squashfs", "extract", 1.0)
target("repository A / tar+zstd-3 size", size.get(("cairn", "A")), size.get(("tar", "A")), 1.05)
target("repository B / restic repository", size.get(("cairn", "B")), size.get(("restic", "B")), 1.0)
target("repository A + A′ / A alone", size.get(("cairn", "A+Ap")), size.get(("cairn", "A")), 1.1)
timed("verify --full / zstd -d", "cairn", "verify", "A+Ap", "zstd-d", "verify", 1.5)

out.append("### Targets (issue 3), ratios from this run")
out.append("")
out.append("| target | ratio (wall) | ratio (cpu) | limit | result (wall) | result (cpu) |")
out.append("|---|---|---|---|---|---|")
out.extend(rows)
print("\n".join(out))
