#!/usr/bin/env bash
# Mount benchmark (not run in CI; needs root and /dev/fuse): compares reading through `cairn mount` with reading
# the same files on local disk, in one run, and prints the ratios docs/performance.md ("Mount") reports.
#
#   benchmarks/fuse/run.sh [--files N] [--big-mib M] [--keep] [--http-only]   (CAIRN_BIN=path/cairn or CAIRN_DLL=path/cairn.dll skips the build)
#
# Measures: warm sequential read of one large (chunked) file, warm sequential read of every small file (tar to
# /dev/null), `find` over the whole tree (warm), and cold reads (caches dropped, fresh mount) of the large file.
# Then (also alone with --http-only) a cold read over loopback HTTP: the large file alone published and served by
# `cairn serve`, read through a fresh mount of the URL with an empty client cache, against `curl` fetching the
# same objects (the pack holding its chunks) from the same server.
set -euo pipefail

files=20000
big_mib=512
keep=0
http_only=0
while (($#)); do
  case "$1" in
    --http-only) http_only=1; shift ;;
    --files) files=$2; shift 2 ;;
    --big-mib) big_mib=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--files N] [--big-mib M] [--keep] [--http-only]" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "run as root (mount(2) and drop_caches)" >&2; exit 2; }
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /var/tmp/cairn-fuse-bench.XXXXXX)
server=
cleanup() {
  grep -q " $work/mnt " /proc/self/mountinfo && umount -l "$work/mnt" || true
  grep -q " $work/hmnt " /proc/self/mountinfo && umount -l "$work/hmnt" || true
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  ((keep)) || rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${CAIRN_DLL:-}" ]; then
  cairn=(dotnet "$CAIRN_DLL")
elif [ -n "${CAIRN_BIN:-}" ]; then
  cairn=("$CAIRN_BIN")
else
  echo "building cairn (Release, ReadyToRun)…" >&2
  bash "$here/scripts/build-cli.sh" "$here/artifacts/cairn"
  cairn=(dotnet "$here/artifacts/cairn/cairn.dll")
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
mibps() { awk -v bytes="$1" -v s="$2" 'BEGIN { printf "%.0f", bytes / 1048576 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# best of three
best() {
  local best=999999 t0 t1 d
  for _ in 1 2 3; do
    t0=$(now); "$@" >/dev/null; t1=$(now)
    d=$(secs "$t0" "$t1")
    best=$(awk -v a="$best" -v b="$d" 'BEGIN { print (b < a) ? b : a }')
  done
  echo "$best"
}

cold_http() {
  # The large file alone, so that its pack holds (almost) nothing else: curl fetches the same bytes the mount does.
  mkdir -p "$work/hsrc" "$work/hmnt"
  head -c $((big_mib << 20)) /dev/urandom > "$work/hsrc/big.bin"
  "${cairn[@]}" init "$work/hrepo" >/dev/null
  "${cairn[@]}" --repo "$work/hrepo" publish big/1 "$work/hsrc" >/dev/null
  "${cairn[@]}" --repo "$work/hrepo" serve --listen http://127.0.0.1:0 > "$work/serve.out" 2>"$work/serve.err" &
  server=$!
  for _ in $(seq 1 300); do grep -q 'http://127.0.0.1:' "$work/serve.out" 2>/dev/null && break; sleep 0.2; done
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/serve.out" | head -1)
  [ -n "$url" ] || { echo "cairn serve did not start: $(cat "$work/serve.err")" >&2; exit 1; }
  packs=$(curl -fsS "$url/manifest.json" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin).get("packs") or []))')
  [ -n "$packs" ] || { echo "the manifest lists no packs" >&2; exit 1; }
  pack_bytes=0
  for p in $packs; do pack_bytes=$((pack_bytes + $(stat -c %s "$work/hrepo/packs/$p.pack"))); done
  # curl: every pack once, over the same loopback connection (the server's page cache dropped first).
  sync; echo 3 > /proc/sys/vm/drop_caches
  t0=$(now); for p in $packs; do curl -fsS -o /dev/null "$url/packs/$p.pack"; done; t1=$(now); curl_s=$(secs "$t0" "$t1")
  # The mount: fresh mount, empty client cache, caches dropped; fetch + decompress + verify + cache each chunk.
  "${cairn[@]}" mount "$url" "$work/hmnt" --cache "$work/hcache" --log "$work/hmount.log" >/dev/null
  sync; echo 3 > /proc/sys/vm/drop_caches
  t0=$(now); cat "$work/hmnt"/*/big/1/big.bin >/dev/null; t1=$(now); mount_s=$(secs "$t0" "$t1")
  "${cairn[@]}" unmount "$work/hmnt" >/dev/null
  kill "$server"; wait "$server" 2>/dev/null || true; server=
  printf '%-44s %9s MiB/s %7s MiB/s %8s\n' "cold read over loopback HTTP, ${big_mib} MiB" "$(mibps "$pack_bytes" "$curl_s")" "$(mibps "$((big_mib << 20))" "$mount_s")" "$(ratio "$curl_s" "$mount_s")"
  echo "(first column: curl fetching the same pack bytes from cairn serve; ratio curl time / mount time, ≥ 0.50 is the target)"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}

if ((http_only)); then
  printf '%-44s %12s %12s %8s\n' "measure" "curl" "mount" "ratio"
  cold_http
  exit 0
fi

echo "generating $files small files and a ${big_mib} MiB file in $work/src…" >&2
src=$work/src/tree
mkdir -p "$src"
python3 - "$src" "$files" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
words = [b"static", b"int", b"return", b"void", b"struct", b"const", b"char", b"#include", b"if", b"else"]
for i in range(n):
    d = os.path.join(root, f"pkg{i % 50:02d}", f"sub{(i // 50) % 20:02d}")
    os.makedirs(d, exist_ok=True)
    size = random.choice([200, 800, 2000, 4000, 9000, 30000])
    body = b" ".join(random.choice(words) for _ in range(size // 5)) + str(i).encode()
    with open(os.path.join(d, f"file{i}.c"), "wb") as f:
        f.write(body)
PY
head -c $((big_mib << 20)) /dev/urandom > "$src/big.bin"
bytes_small=$(find "$src" -name '*.c' -printf '%s\n' | awk '{ s += $1 } END { print s }')
bytes_big=$(stat -c %s "$src/big.bin")

"${cairn[@]}" init "$work/repo" >/dev/null
t0=$(now); "${cairn[@]}" --repo "$work/repo" publish bench/1 "$src" >/dev/null; t1=$(now)
echo "published in $(secs "$t0" "$t1") s" >&2
mkdir -p "$work/mnt"
"${cairn[@]}" mount "$work/repo" "$work/mnt" --log "$work/mount.log" >/dev/null
mp=$(find "$work/mnt" -mindepth 3 -maxdepth 3 -type d | head -1)
[ -d "$mp" ] || { echo "mount failed; see $work/mount.log" >&2; exit 1; }

read_big() { cat "$1/big.bin" >/dev/null; }
read_small() { tar -C "$1" --exclude big.bin -cf - . | cat >/dev/null; }
walk() { find "$1" >/dev/null; }

# Warm both: one pass each.
read_big "$src"; read_big "$mp"; read_small "$src"; read_small "$mp"; walk "$src"; walk "$mp"

nb=$(best read_big "$src"); mb=$(best read_big "$mp")
ns=$(best read_small "$src"); ms=$(best read_small "$mp")
nf=$(best walk "$src"); mf=$(best walk "$mp")

# Cold: drop caches, remount (empties the mount's memory cache), read the big file once each.
"${cairn[@]}" unmount "$work/mnt" >/dev/null; sleep 1
sync; echo 3 > /proc/sys/vm/drop_caches
t0=$(now); read_big "$src"; t1=$(now); nc=$(secs "$t0" "$t1")
"${cairn[@]}" mount "$work/repo" "$work/mnt" --log "$work/mount.log" >/dev/null
sync; echo 3 > /proc/sys/vm/drop_caches
t0=$(now); read_big "$mp"; t1=$(now); mc=$(secs "$t0" "$t1")
t0=$(now); walk "$mp"; t1=$(now); mfc=$(secs "$t0" "$t1")
"${cairn[@]}" unmount "$work/mnt" >/dev/null

printf '%-44s %12s %12s %8s\n' "measure" "local disk" "mount" "ratio"
printf '%-44s %9s MiB/s %7s MiB/s %8s\n' "warm sequential read, ${big_mib} MiB file" "$(mibps "$bytes_big" "$nb")" "$(mibps "$bytes_big" "$mb")" "$(ratio "$nb" "$mb")"
printf '%-44s %9s MiB/s %7s MiB/s %8s\n' "warm read of $files small files (tar)" "$(mibps "$bytes_small" "$ns")" "$(mibps "$bytes_small" "$ms")" "$(ratio "$ns" "$ms")"
printf '%-44s %10s s %10s s %8s\n' "warm find over $files files (time; mount/local)" "$nf" "$mf" "$(ratio "$mf" "$nf")"
printf '%-44s %9s MiB/s %7s MiB/s %8s\n' "cold sequential read, ${big_mib} MiB file" "$(mibps "$bytes_big" "$nc")" "$(mibps "$bytes_big" "$mc")" "$(ratio "$nc" "$mc")"
printf '%-44s %12s %10s s\n' "cold find over $files files (fresh mount)" "" "$mfc"
echo "(throughput ratios are mount/local: 1.00 = as fast as local disk; find ratio is time mount/local)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
cold_http
