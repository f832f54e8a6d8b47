#!/usr/bin/env bash
# The dashboard at scale (issue 15, "Performance"; docs/performance.md, "Dashboard"): printed figures, nothing committed.
#
#   bash benchmarks/dashboard/run.sh
#
# 1. seeds DASH_DIR/repo (5,000 products in one revision, a stack 20 layers deep) and DASH_DIR/coordination.db
#    (50 sites, 20,000 results) through the libraries (benchmarks/dashboard, cairn-dashboard-bench seed);
# 2. times the pages warm with the gateway's dashboard in-process on loopback: products list and coherence matrix
#    (target p95 ≤ 100 ms, ≤ 200 KB), the graph of the product whose closure is nearest 2,000 nodes (≤ 1 s);
# 3. the dashboard's load on `cairn serve`: the serve requests/s measurement of benchmarks/dist/run.sh (wrk, a
#    Range request for one small object in a pack) on the seeded repository, alone, then with a poller fetching
#    the products page every second, then alone again.
#
# Knobs: DASH_DIR=/var/tmp/cairn-dash-bench  DASH_PRODUCTS=5000 DASH_SITES=50 DASH_RESULTS=20000 DASH_SAMPLES=40
#        DASH_WRK="-t2 -c32 -d10s" (as benchmarks/dist/run.sh)  DASH_POLL=/ui/ (the page polled)
#        CAIRN_BIN=path (the cairn serving; default: scripts/build-cli.sh, the Native AOT cairn)  DASH_KEEP=1 (keep DASH_DIR)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${DASH_DIR:-/var/tmp/cairn-dash-bench}
WRK_ARGS=${DASH_WRK:-"-t2 -c32 -d10s"}
POLL=${DASH_POLL:-/ui/}
say() { printf '%s\n' "$*" >&2; }

command -v wrk >/dev/null || { say "installing wrk"; apt-get install -y -qq wrk >/dev/null; }

say "== building the benchmark tool (Release)"
dotnet build "$ROOT/benchmarks/dashboard/Cairn.Benchmarks.Dashboard.csproj" -c Release -v q -nologo >&2
BENCH=$(find "$ROOT/benchmarks/dashboard/bin/Release" -name cairn-dashboard-bench -type f | head -1)
if [[ -z ${CAIRN_BIN:-} ]]; then
  say "== building cairn (Release)"
  CAIRN_BUILD_ARTIFACTS="$WORK.art" bash "$ROOT/scripts/build-cli.sh" "$WORK.bin"
  CAIRN_BIN="$WORK.bin/cairn"
fi

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [[ ${DASH_KEEP:-0} == 1 ]] || rm -rf "$WORK"; }
trap cleanup EXIT

say "== seeding"
"$BENCH" seed "$WORK" --products "${DASH_PRODUCTS:-5000}" --sites "${DASH_SITES:-50}" --results "${DASH_RESULTS:-20000}"

echo
echo "Dashboard benchmark ($(date -u +%FT%TZ), $(nproc) CPUs)"
"$BENCH" measure "$WORK" --samples "${DASH_SAMPLES:-40}"

say "== cairn serve requests/s, with and without a poller of $POLL"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; say "port $1 never opened"; exit 1; }
PORT=$(free_port)
"$CAIRN_BIN" --repo "$WORK/repo" serve --listen "http://127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PIDS+=($!); wait_port "$PORT"
URL="http://127.0.0.1:$PORT"
# The small object of benchmarks/dist/run.sh: the first index entry stored in 200–4096 bytes.
read -r PACK RANGE _ < <(python3 "$ROOT/benchmarks/small-object.py" "$WORK/repo")
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Range: $RANGE" "$URL/packs/$PACK.pack")
[[ $code == 206 ]] || { say "the Range request answered $code, not 206"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept: text/html' "$URL$POLL")
[[ $code == 200 ]] || { say "$POLL answered $code, not 200"; exit 1; }
wrk_rps() { wrk $WRK_ARGS -H "Range: $RANGE" "$URL/packs/$PACK.pack" 2>/dev/null | awk '/Requests\/sec/ { print $2 }'; }

# The poller: one page a second (what a browser with the page open, or a wall display, does), its times logged.
poll() {
  while :; do
    curl -s -o /dev/null -H 'Accept: text/html' -w '%{time_total}\n' "$URL$POLL" >>"$WORK/poll.times" || true
    sleep 1
  done
}

ALONE1=$(wrk_rps)
: >"$WORK/poll.times"
poll & POLLER=$!; PIDS+=($POLLER)
POLLED=$(wrk_rps)
kill $POLLER 2>/dev/null || true; wait $POLLER 2>/dev/null || true
ALONE2=$(wrk_rps)
POLLS=$(wc -l <"$WORK/poll.times")
POLL_MED=$(sort -g "$WORK/poll.times" | awk '{ a[NR] = $1 } END { if (NR) printf "%.0f", a[int((NR + 1) / 2)] * 1000 }')

cat <<OUT

| cairn serve, Range request for one small object (wrk $WRK_ARGS) | requests/s |
|---|---|
| alone | $ALONE1 |
| with a poller fetching $POLL every second ($POLLS fetches, median ${POLL_MED} ms under load) | $POLLED |
| alone again | $ALONE2 |

load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)
OUT
