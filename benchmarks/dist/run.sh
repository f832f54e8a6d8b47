#!/usr/bin/env bash
# Distribution over loopback HTTP (issue 5, "Performance"): small sizes, printed figures, nothing committed.
#
#   bash benchmarks/dist/run.sh
#
# 1. materialize a product from `cairn serve` over loopback, cold client cache and warm, against materializing it
#    from the local repository directory (throughput = tree bytes / wall time; median of DIST_RUNS);
# 2. `cairn replicate http://…` of the repository (from cairn serve and from nginx) against `rsync -a` of the same
#    files (cairn.json, manifest, revisions/, packs/) from an rsync daemon and `rclone sync` from nginx, all on
#    loopback; every copy is compared with the source's packs;
# 3. small-object requests/s with wrk (a Range request for one small object in a pack, as clients send them, and
#    /objects/<digest> which only cairn serve has) against nginx serving the same directory.
#
# Knobs: DIST_DIR=/var/tmp/cairn-dist-bench  DIST_MB=150 (tree size)  DIST_RUNS=3  DIST_WRK="-t2 -c32 -d10s"
#        CAIRN_BIN=path (default: scripts/build-cli.sh, the Native AOT cairn)  DIST_KEEP=1 (keep DIST_DIR)
#        DIST_ONLY=replicate,materialize,wrk (comma list of parts to run; default all) — e.g. DIST_ONLY=replicate
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${DIST_DIR:-/var/tmp/cairn-dist-bench}
MB=${DIST_MB:-150}
RUNS=${DIST_RUNS:-3}
WRK_ARGS=${DIST_WRK:-"-t2 -c32 -d10s"}
say() { printf '%s\n' "$*" >&2; }
want() { [[ -z ${DIST_ONLY:-} || ",$DIST_ONLY," == *",$1,"* ]]; }

for tool in wrk rsync nginx rclone; do
  command -v $tool >/dev/null || { say "installing $tool"; apt-get install -y -qq $tool >/dev/null; }
done

if [[ -z ${CAIRN_BIN:-} ]]; then
  say "== building cairn (Release)"
  CAIRN_BUILD_ARTIFACTS="$WORK.art" bash "$ROOT/scripts/build-cli.sh" "$WORK.bin"
  CAIRN_BIN="$WORK.bin/cairn"
fi
cairn() { "$CAIRN_BIN" "$@"; }

rm -rf "$WORK"; mkdir -p "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [[ ${DIST_KEEP:-0} == 1 ]] || rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; say "port $1 never opened"; exit 1; }
now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

say "== tree: ~${MB} MB from /usr/lib/x86_64-linux-gnu (fixed order) plus 3000 small files"
TREE=$WORK/tree; mkdir -p "$TREE/lib" "$TREE/small"
python3 - "$TREE" "$MB" <<'PY'
import os, shutil, sys, random
tree, mb = sys.argv[1], int(sys.argv[2])
files = sorted(os.path.join(d, f) for d, _, fs in os.walk('/usr/lib/x86_64-linux-gnu') for f in fs)
random.Random(5).shuffle(files)
total = 0
for i, f in enumerate(files):
    if total > mb * 0.9 * 2**20: break
    if os.path.islink(f) or not os.path.isfile(f): continue
    size = os.path.getsize(f)
    if size > 40 * 2**20: continue
    shutil.copyfile(f, os.path.join(tree, 'lib', f'{i:05d}-' + os.path.basename(f)))
    total += size
rnd = random.Random(7)
for i in range(3000):
    with open(os.path.join(tree, 'small', f'f{i:04d}.txt'), 'w') as fh:
        fh.write(''.join(rnd.choice('abcdefghij \n') for _ in range(rnd.randint(200, 6000))))
PY
TREE_BYTES=$(du -sb "$TREE" | cut -f1)
TREE_FILES=$(find "$TREE" -type f | wc -l)

REPO=$WORK/repo
cairn init "$REPO" --name dist-bench >/dev/null
cairn --repo "$REPO" publish bench/1.0 "$TREE" >/dev/null

PORT=$(free_port)
"$CAIRN_BIN" --repo "$REPO" serve --listen "http://127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PIDS+=($!); wait_port "$PORT"
URL="http://127.0.0.1:$PORT"

# The same repository as plain files from nginx (the static-mirror case; autoindex lets rclone's http remote list it).
NPORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; user root;
pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; default_type application/octet-stream;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy; fastcgi_temp_path $WORK/nginx/fcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  server { listen 127.0.0.1:$NPORT; root $REPO; autoindex on;
    location /packs/ { add_header Cache-Control "public, max-age=31536000, immutable"; }
    location / { } }
}
CONF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
PIDS+=($!); wait_port "$NPORT"

# A failed command must stop the benchmark: a figure from a command that did nothing is worse than none.
time_it() {
  local t0 t1; t0=$(now)
  if ! "$@" >/dev/null 2>>"$WORK/errors.log"; then echo "benchmark: command failed: $* (see $WORK/errors.log)" >&2; tail -5 "$WORK/errors.log" >&2; kill $$; exit 1; fi
  t1=$(now); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
# The mirror holds exactly the source's packs, byte for byte.
same_packs() { diff -rq "$REPO/packs" "$1/packs" >/dev/null || { echo "benchmark: $1/packs differs from the source" >&2; kill $$; exit 1; }; }

if want materialize; then
say "== materialize ($RUNS runs each)"
local_t=(); cold_t=(); warm_t=()
for r in $(seq "$RUNS"); do
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  local_t+=("$(time_it cairn --repo "$REPO" materialize --no-cache bench/1.0 "$WORK/m-local-$r")")
  cold_t+=("$(time_it cairn --repo "$URL" materialize bench/1.0 "$WORK/m-cold-$r" --cache "$WORK/cache-$r")")
  warm_t+=("$(time_it cairn --repo "$URL" materialize bench/1.0 "$WORK/m-warm-$r" --cache "$WORK/cache-$r")")
  rm -rf "$WORK/m-local-$r" "$WORK/m-cold-$r" "$WORK/m-warm-$r"
done
L=$(printf '%s\n' "${local_t[@]}" | median); C=$(printf '%s\n' "${cold_t[@]}" | median); W=$(printf '%s\n' "${warm_t[@]}" | median)
fi

REPO_BYTES=$(du -sb "$REPO/packs" | cut -f1)
if want replicate; then
say "== replicate vs rsync (daemon) and rclone (from nginx) ($RUNS runs each; load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
RPORT=$(free_port)
cat >"$WORK/rsyncd.conf" <<CONF
use chroot = no
[repo]
path = $REPO
read only = yes
CONF
rsync --daemon --no-detach --port "$RPORT" --address 127.0.0.1 --config "$WORK/rsyncd.conf" --log-file "$WORK/rsyncd.log" &
PIDS+=($!); wait_port "$RPORT"
rep_t=(); repn_t=(); rsync_t=(); rclone_t=(); rsync_sync_t=(); noop_t=()
# The same files a mirror needs (not locks/, tmp/, cache/).
MIRROR_FILES=(--include='/cairn.json' --include='/manifest.json' --include='/revisions/***' --include='/packs/***' --exclude='*')
RCLONE_FILES=(--include '/cairn.json' --include '/manifest.json' --include '/revisions/**' --include '/packs/**')
for r in $(seq "$RUNS"); do
  run_replicate() { rep_t+=("$(time_it cairn replicate "$URL" "$WORK/mirror-$r")"); same_packs "$WORK/mirror-$r"; }
  run_replicate_nginx() { repn_t+=("$(time_it cairn replicate "http://127.0.0.1:$NPORT" "$WORK/mirror-n-$r")"); same_packs "$WORK/mirror-n-$r"; }
  run_rsync() { rsync_t+=("$(time_it rsync -a "${MIRROR_FILES[@]}" "rsync://127.0.0.1:$RPORT/repo/" "$WORK/rsync-$r/")"); same_packs "$WORK/rsync-$r"; }
  run_rclone() { rclone_t+=("$(time_it rclone sync --config /dev/null --http-url "http://127.0.0.1:$NPORT" :http: "$WORK/rclone-$r" "${RCLONE_FILES[@]}")"); same_packs "$WORK/rclone-$r"; }
  # Rotate the order, so no tool always meets another's dirty pages being written back.
  order=(run_replicate run_rsync run_replicate_nginx run_rclone)
  for i in 0 1 2 3; do sync; "${order[$(( (i + r) % 4 ))]}"; done
  # Up to date already: what the resume check costs.
  noop_t+=("$(time_it cairn replicate "$URL" "$WORK/mirror-$r")")
  # rsync followed by sync(1): rsync with the durability replicate gives (an upper bound: sync flushes everything).
  rm -rf "$WORK/rsync-$r"; sync
  rsync_sync_t+=("$(time_it sh -c 'rsync -a "$@" && sync' sh "${MIRROR_FILES[@]}" "rsync://127.0.0.1:$RPORT/repo/" "$WORK/rsync-$r/")")
  say "run $r: replicate ${rep_t[-1]} s (from nginx ${repn_t[-1]} s), rsync ${rsync_t[-1]} s, rclone ${rclone_t[-1]} s, rsync+sync ${rsync_sync_t[-1]} s, replicate (up to date) ${noop_t[-1]} s; load $(cut -d' ' -f1-3 /proc/loadavg)"
  rm -rf "$WORK/mirror-$r" "$WORK/mirror-n-$r" "$WORK/rsync-$r" "$WORK/rclone-$r"
done
REP=$(printf '%s\n' "${rep_t[@]}" | median); REPN=$(printf '%s\n' "${repn_t[@]}" | median); RS=$(printf '%s\n' "${rsync_t[@]}" | median)
RC=$(printf '%s\n' "${rclone_t[@]}" | median); RSS=$(printf '%s\n' "${rsync_sync_t[@]}" | median); NOOP=$(printf '%s\n' "${noop_t[@]}" | median)
PACK_COUNT=$(find "$REPO/packs" -name '*.pack' | wc -l)
fi

if want wrk; then
say "== small-object requests/s (wrk $WRK_ARGS)"
# A small object: the first index entry with a stored size between 200 and 4096 bytes (benchmarks/small-object.py).
read -r PACK RANGE DIGEST < <(python3 "$ROOT/benchmarks/small-object.py" "$REPO")
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
say "statuses: serve range $(status -H "Range: $RANGE" "$URL/packs/$PACK.pack"), nginx range $(status -H "Range: $RANGE" "http://127.0.0.1:$NPORT/packs/$PACK.pack"), serve object $(status "$URL/objects/$DIGEST") (want 206 206 200)"
wrk_rps() { wrk $WRK_ARGS "$@" 2>/dev/null | awk '/Requests\/sec/ { print $2 }'; }
RPS_SERVE_RANGE=$(wrk_rps -H "Range: $RANGE" "$URL/packs/$PACK.pack")
RPS_NGINX_RANGE=$(wrk_rps -H "Range: $RANGE" "http://127.0.0.1:$NPORT/packs/$PACK.pack")
RPS_SERVE_OBJECT=$(wrk_rps "$URL/objects/$DIGEST")
fi

START=$(for r in $(seq "$RUNS"); do time_it cairn --help; done | median)
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
thr() { awk -v b="$TREE_BYTES" -v t="$1" 'BEGIN { printf "%.0f", b / t / 1048576 }'; }
cat <<OUT

Distribution benchmark  ($(date -u +%FT%TZ), $(nproc) CPUs, load average $LOAD${DIST_ONLY:+, parts: $DIST_ONLY})
tree: $TREE_FILES files, $((TREE_BYTES / 1048576)) MiB; repository packs: $((REPO_BYTES / 1048576)) MiB; median of $RUNS

| measure | time | throughput | ratio | target |
|---|---|---|---|---|
OUT
want materialize && cat <<OUT || true
| materialize, local repository (--no-cache) | ${L} s | $(thr "$L") MiB/s | 1 | |
| materialize over loopback HTTP, cold cache | ${C} s | $(thr "$C") MiB/s | $(awk -v a="$L" -v b="$C" 'BEGIN { printf "%.2f", a / b }') | ≥ 0.50 |
| materialize over loopback HTTP, warm cache | ${W} s | $(thr "$W") MiB/s | $(awk -v a="$L" -v b="$W" 'BEGIN { printf "%.2f", a / b }') | ≥ 0.90 |
OUT
want replicate && cat <<OUT || true
| rsync -a from an rsync daemon on loopback | ${RS} s | | 1 | |
| rclone sync from nginx (http remote) on loopback | ${RC} s | | $(awk -v a="$RC" -v b="$RS" 'BEGIN { printf "%.2f×", a / b }') | |
| cairn replicate http://… from cairn serve ($PACK_COUNT packs) | ${REP} s | | $(awk -v a="$REP" -v b="$RS" 'BEGIN { printf "%.2f×", a / b }') rsync, $(awk -v a="$REP" -v b="$RC" 'BEGIN { printf "%.2f×", a / b }') rclone | ≤ 1.0× both |
| cairn replicate http://… from nginx | ${REPN} s | | $(awk -v a="$REPN" -v b="$RS" 'BEGIN { printf "%.2f×", a / b }') rsync, $(awk -v a="$REPN" -v b="$RC" 'BEGIN { printf "%.2f×", a / b }') rclone | ≤ 1.0× both |
| rsync -a … && sync (rsync made durable) | ${RSS} s | | $(awk -v a="$RSS" -v b="$RS" 'BEGIN { printf "%.2f×", a / b }') | |
| cairn replicate into an up-to-date mirror (re-verifies every pack) | ${NOOP} s | | | |
OUT
cat <<OUT
| (cairn process start-up, \`cairn --help\`) | ${START} s | | | |
OUT
want wrk && cat <<OUT || true

| server (wrk $WRK_ARGS) | requests/s |
|---|---|
| cairn serve, Range request for one small object ($RANGE of a pack) | $RPS_SERVE_RANGE |
| nginx, the same Range request on the same file | $RPS_NGINX_RANGE |
| cairn serve, /objects/<digest> (verified, uncompressed) | $RPS_SERVE_OBJECT |
OUT
