#!/usr/bin/env bash
# Cairn against the tools a user would pick instead, on real trees, in one run (issue 3, "Performance").
#
#   bash benchmarks/run.sh                 # full run: tree A ~900 MB big files, tree B ~50k small files (20-40 min)
#   BENCH_QUICK=1 bash benchmarks/run.sh   # smoke run on ~10% trees, one repetition (a few minutes)
#
# Knobs (environment):
#   BENCH_DIR=/var/tmp/cairn-bench   scratch directory (trees, repositories, extractions); wiped at start
#   BENCH_SCALE=1                    fraction of the tree sizes below (BENCH_QUICK=1 sets 0.1)
#   BENCH_A_SRC=/usr/lib/x86_64-linux-gnu   BENCH_A_MB=900      tree A: a random (fixed-seed) subset of that size
#   BENCH_B_SRC="/usr/include /usr/share/doc /usr/share/locale /usr/share/man /usr/share/icons /usr/lib/python3"
#   BENCH_B_FILES=50000  BENCH_B_MB=0 (0: no byte cap)            tree B: a random subset with that many files
#   BENCH_CHANGE_PCT=5               share of A's regular files changed in A' (4 KiB overwritten mid-file)
#   BENCH_RUNS=3                     repetitions of each extraction (median reported; BENCH_QUICK=1 sets 1)
#   BENCH_PUBLISH_RUNS=1             repetitions of each publish (each into a fresh repository)
#   BENCH_PEERS="tar ostree-archive ostree-bare restic casync squashfs cp borg"
#   BENCH_SKIP_INSTALL=1             do not apt-get install the peers
#   BENCH_DROP_CACHES=1              drop the page cache before each timed command (default: warm cache)
#   BENCH_SETTLE=60                  seconds to wait after deleting many files (ext4 recently-deleted inodes; quick: 10)
#   BENCH_KEEP=1                     keep BENCH_DIR afterwards (default: delete trees and repositories)
#   CAIRN_BIN=path                   use this cairn instead of building one
#
# Output: a table on stdout, and $BENCH_DIR/results.tsv (every measurement), $BENCH_DIR/summary.md (tables + ratios).
# Nothing here runs in CI; no data is committed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
  SCALE=${BENCH_SCALE:-0.1}
  RUNS=${BENCH_RUNS:-1}
  SETTLE=${BENCH_SETTLE:-10}
else
  SCALE=${BENCH_SCALE:-1}
  RUNS=${BENCH_RUNS:-3}
  SETTLE=${BENCH_SETTLE:-60}
fi
PUB_RUNS=${BENCH_PUBLISH_RUNS:-1}
WORK=${BENCH_DIR:-/var/tmp/cairn-bench}
A_SRC=${BENCH_A_SRC:-/usr/lib/x86_64-linux-gnu}
B_SRC=${BENCH_B_SRC:-/usr/include /usr/share/doc /usr/share/locale /usr/share/man /usr/share/icons /usr/lib/python3}
A_MB=$(awk -v m="${BENCH_A_MB:-900}" -v s="$SCALE" 'BEGIN { printf "%d", m * s }')
B_FILES=$(awk -v m="${BENCH_B_FILES:-50000}" -v s="$SCALE" 'BEGIN { printf "%d", m * s }')
B_MB=$(awk -v m="${BENCH_B_MB:-0}" -v s="$SCALE" 'BEGIN { printf "%d", m * s }')
CHANGE_PCT=${BENCH_CHANGE_PCT:-5}
PEERS=" ${BENCH_PEERS:-tar ostree-archive ostree-bare restic casync squashfs cp borg} "
RESULTS=$WORK/results.tsv
LOG=$WORK/bench.log

say() { printf '%s\n' "$*" >&2; }
has_peer() { [[ $PEERS == *" $1 "* ]]; }

# ---------------------------------------------------------------- install peers
install_peers() {
  [[ ${BENCH_SKIP_INSTALL:-0} == 1 ]] && return
  if ! command -v apt-get >/dev/null; then say "no apt-get: using whatever peers are installed"; return; fi
  local pkgs=(zstd tar coreutils time python3 squashfs-tools restic ostree casync borgbackup hyperfine) missing=()
  say "== installing peers with apt-get"
  apt-get update -qq >/dev/null 2>&1 || say "apt-get update failed; trying the install anyway"
  for p in "${pkgs[@]}"; do
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null 2>&1; then missing+=("$p"); fi
  done
  ((${#missing[@]})) && say "NOTE: could not install: ${missing[*]} (their rows are skipped)"
}

# ---------------------------------------------------------------- measurement
# measure TOOL OP TREE RUN -- command...   (the command runs under bash -c; its output goes to $LOG)
measure() {
  local tool=$1 op=$2 tree=$3 run=$4; shift 5
  local tf=$WORK/.time rc
  sync
  [[ ${BENCH_DROP_CACHES:-0} == 1 ]] && echo 3 >/proc/sys/vm/drop_caches
  printf '\n### %s %s %s run %s: %s\n' "$tool" "$op" "$tree" "$run" "$*" >>"$LOG"
  /usr/bin/time -f '%e %U %S' -o "$tf" bash -c "$*" >>"$LOG" 2>&1
  rc=$?
  if ((rc != 0)); then
    say "  FAILED ($rc): $tool $op $tree — see $LOG"
    printf '%s\t%s\t%s\t%s\tFAIL\t\t\n' "$tool" "$op" "$tree" "$run" >>"$RESULTS"
    return 1
  fi
  read -r wall user sys < <(tail -n1 "$tf")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$op" "$tree" "$run" "$wall" "$user" "$sys" >>"$RESULTS"
  say "  $(printf '%-16s %-12s %-3s #%s %7.2f s  (cpu %.2f s)' "$tool" "$op" "$tree" "$run" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')")"
}

record_size() { # TOOL TREE BYTES
  printf '%s\tsize\t%s\t1\t%s\t\t\n' "$1" "$2" "$3" >>"$RESULTS"
  say "  $(printf '%-16s %-12s %-3s    %12s bytes' "$1" size "$2" "$3")"
}

dusize() { du -sb "$@" | awk '{ s += $1 } END { print s }'; }

# ---------------------------------------------------------------- trees
# pick_files SRC... : regular files and symlinks below SRC, in a fixed pseudo-random order, as paths relative to /
pick_files() {
  local s
  for s in "$@"; do
    [[ -d $s ]] || { say "NOTE: $s does not exist, skipped"; continue; }
    (cd / && find "${s#/}" -xdev \( -type f -o -type l \) -printf '%s\t%p\n' 2>/dev/null)
  done | sort -t$'\t' -k2 | sort -R --random-source=<(yes cairn-bench) 
}

copy_list() { # LIST DEST : copies the listed /-relative paths, keeping their relative layout
  mkdir -p "$2"
  tar -C / --no-recursion -T "$1" -cf - 2>>"$LOG" | tar -C "$2" -xf -
}

prepare_trees() {
  say "== preparing trees in $WORK/trees (scale $SCALE)"
  mkdir -p "$WORK/trees"
  # A: big files, capped in bytes. Paths are kept relative to A_SRC.
  pick_files "$A_SRC" | awk -F'\t' -v cap=$((A_MB * 1000 * 1000)) '{ if (t + $1 > cap) next; t += $1; print $2 }' >"$WORK/a.list"
  copy_list "$WORK/a.list" "$WORK/trees/A.tmp"
  mv "$WORK/trees/A.tmp/${A_SRC#/}" "$WORK/trees/A" && rm -rf "$WORK/trees/A.tmp"
  # B: many small files, capped in count (and bytes if BENCH_B_MB is set).
  # shellcheck disable=SC2086
  pick_files $B_SRC | awk -F'\t' -v n="$B_FILES" -v cap=$((B_MB * 1000 * 1000)) \
    '{ if (c >= n) exit; if (cap > 0 && t + $1 > cap) next; t += $1; c++; print $2 }' >"$WORK/b.list"
  copy_list "$WORK/b.list" "$WORK/trees/B"
  # A': hardlinked copy of A (unchanged files keep their inodes, as in a tree edited in place), with
  # CHANGE_PCT% of its regular files replaced by a copy that has 4 KiB overwritten in the middle.
  cp -al "$WORK/trees/A" "$WORK/trees/Ap"
  (cd "$WORK/trees/Ap" && find . -type f | sort) | awk -v p="$CHANGE_PCT" 'NR % int(100 / p) == 0' >"$WORK/changed.list"
  local f size
  while IFS= read -r f; do
    f=$WORK/trees/Ap/${f#./}
    cp "$f" "$f.new" && size=$(stat -c %s "$f.new")
    if ((size > 8192)); then
      head -c 4096 /dev/urandom | dd of="$f.new" bs=4096 seek=$((size / 2 / 4096)) conv=notrunc status=none
    else
      head -c 16 /dev/urandom >>"$f.new"
    fi
    chmod --reference="$f" "$f.new" && mv "$f.new" "$f"
  done <"$WORK/changed.list"
  local t
  for t in A B Ap; do
    say "  tree $t: $(find "$WORK/trees/$t" -type f | wc -l) files, $(find "$WORK/trees/$t" -type l | wc -l) symlinks, $(find "$WORK/trees/$t" -type d | wc -l) dirs, $(du -sb --apparent-size "$WORK/trees/$t" | cut -f1) bytes"
  done
  say "  A': $(wc -l <"$WORK/changed.list") files changed"
}

# ---------------------------------------------------------------- tools
CAIRN=${CAIRN_BIN:-}
build_cairn() {
  if [[ -n $CAIRN ]]; then return; fi
  say "== building cairn (Release)"
  bash "$ROOT/scripts/build-cli.sh" "$WORK/cairn-bin" >>"$LOG" 2>&1 || { say "cairn build failed, see $LOG"; exit 1; }
  CAIRN=$WORK/cairn-bin/cairn
}

export RESTIC_PASSWORD=cairn-bench RESTIC_CACHE_DIR=$WORK/home/restic-cache
export BORG_BASE_DIR=$WORK/home/borg BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
T=$WORK/trees
R=$WORK/repos
CUR=$WORK/trees/cur # restic and borg key their file caches by path: they back up the tree renamed to this path

available() { # peer name -> 0 if its programs are there
  case $1 in
    tar) command -v zstd >/dev/null ;;
    ostree-archive | ostree-bare) command -v ostree >/dev/null ;;
    restic) command -v restic >/dev/null ;;
    casync) command -v casync >/dev/null ;;
    squashfs) command -v mksquashfs >/dev/null && command -v unsquashfs >/dev/null ;;
    cp) true ;;
    borg) command -v borg >/dev/null ;;
    cairn) [[ -x $CAIRN ]] ;;
  esac
}

# publish TOOL TREE(A|B|Ap) RUN: stores the tree in repository $R/TOOL-<A|B>[-RUN] (A' goes into A's repository)
publish() {
  local tool=$1 tree=$2 run=$3 src=$T/$2 repo op=publish
  local key=$tree
  [[ $tree == Ap ]] && key=A op=incremental
  repo=$R/$tool-$key
  ((run > 1)) && [[ $tree != Ap ]] && repo=$R/$tool-$key-$run
  [[ $tree != Ap ]] && rm -rf "$repo"
  case $tool in
    cairn)
      [[ $tree != Ap ]] && "$CAIRN" init "$repo" >>"$LOG" 2>&1
      local name=tree${key,,} version=1
      [[ $tree == Ap ]] && version=2
      measure cairn $op "$tree" "$run" -- "'$CAIRN' --repo '$repo' publish $name/$version '$src'"
      ;;
    tar)
      mkdir -p "$repo"
      measure tar $op "$tree" "$run" -- "tar -C '$src' -I 'zstd -3 -T0' -cf '$repo/$tree.tar.zst' ."
      ;;
    ostree-archive | ostree-bare)
      local mode=archive
      [[ $tool == ostree-bare ]] && mode=bare-user
      [[ $tree != Ap ]] && ostree --repo="$repo" init --mode=$mode >>"$LOG" 2>&1
      measure "$tool" $op "$tree" "$run" -- "ostree --repo='$repo' commit --branch=$tree --tree=dir='$src'"
      ;;
    restic)
      [[ $tree != Ap ]] && restic -r "$repo" init --repository-version 2 >>"$LOG" 2>&1
      mv "$src" "$CUR"
      measure restic $op "$tree" "$run" -- "restic -r '$repo' backup -q --host bench --tag $tree --ignore-ctime '$CUR'"
      mv "$CUR" "$src"
      ;;
    borg)
      [[ $tree != Ap ]] && borg init -e none "$repo" >>"$LOG" 2>&1
      mv "$src" "$CUR"
      measure borg $op "$tree" "$run" -- "borg create --compression zstd,3 --files-cache=mtime,size,inode '$repo::$tree' '$CUR'"
      mv "$CUR" "$src"
      ;;
    casync)
      mkdir -p "$repo"
      measure casync $op "$tree" "$run" -- "casync make --compression=zstd --store='$repo/store' '$repo/$tree.caidx' '$src'"
      ;;
    squashfs)
      mkdir -p "$repo"
      measure squashfs $op "$tree" "$run" -- "mksquashfs '$src' '$repo/$tree.sqfs' -comp zstd -Xcompression-level 3 -noappend -no-progress -quiet"
      ;;
  esac
}

repo_size() { # TOOL KEY -> bytes of the repository as stored (cairn: without its unpacked-object cache)
  local repo=$R/$1-$2
  case $1 in
    cairn) du -sb --exclude=cache "$repo" | cut -f1 ;;
    tar) stat -c %s "$repo/$2.tar.zst" ;;
    squashfs) stat -c %s "$repo/$2.sqfs" ;;
    *) dusize "$repo" ;;
  esac
}

# extract TOOL TREE RUN: lays the tree out into a fresh directory. Outputs are only deleted at the end of the run:
# on ext4, creating files soon after deleting tens of thousands (rm -rf of the previous output) spends seconds of
# system time in the inode allocator (recently_deleted() in perf), which distorted every tool's extraction of B.
extract() {
  local tool=$1 tree=$2 run=$3 repo=$R/$1-$2 dest=$WORK/out/$1-$2-$3
  mkdir -p "$WORK/out"
  case $tool in
    cairn-warm) measure cairn-warm extract "$tree" "$run" -- "'$CAIRN' --repo '$R/cairn-$tree' materialize tree${tree,,}/1 '$dest'" ;;
    cairn-cold) measure cairn-cold extract "$tree" "$run" -- "'$CAIRN' --repo '$R/cairn-$tree' materialize --no-cache tree${tree,,}/1 '$dest'" ;;
    tar) mkdir -p "$dest" && measure tar extract "$tree" "$run" -- "tar -C '$dest' -I zstd -xf '$repo/$tree.tar.zst'" ;;
    ostree-archive | ostree-bare) measure "$tool" extract "$tree" "$run" -- "ostree --repo='$repo' checkout -U $tree '$dest'" ;;
    restic) measure restic extract "$tree" "$run" -- "restic -r '$repo' restore latest -q --tag $tree --target '$dest'" ;;
    borg) mkdir -p "$dest" && measure borg extract "$tree" "$run" -- "cd '$dest' && borg extract '$repo::$tree'" ;;
    casync) measure casync extract "$tree" "$run" -- "casync extract --store='$repo/store' '$repo/$tree.caidx' '$dest'" ;;
    squashfs) measure squashfs extract "$tree" "$run" -- "unsquashfs -no-progress -d '$dest' '$repo/$tree.sqfs' >/dev/null" ;;
    cp-a) measure cp-a extract "$tree" "$run" -- "cp -a '$T/$tree' '$dest'" ;;
    cp-al) measure cp-al extract "$tree" "$run" -- "cp -al '$T/$tree' '$dest'" ;;
  esac
}

# zstd_frames REPO OUT: concatenates the zstd-compressed objects of a cairn repository's packs into one .zst file
zstd_frames() {
  python3 - "$1/packs" "$2" <<'EOF'
import os, struct, sys
packs, out = sys.argv[1], sys.argv[2]
n = zbytes = raw = 0
with open(out, "wb") as o:
    for idx in sorted(f for f in os.listdir(packs) if f.endswith(".idx")):
        data = open(os.path.join(packs, idx), "rb").read()
        assert data[:4] == b"CIX1"
        count = struct.unpack(">I", data[4:8])[0]
        with open(os.path.join(packs, idx[:-4] + ".pack"), "rb") as p:
            pack = p.read()
        for i in range(count):
            e = data[8 + 49 * i: 8 + 49 * (i + 1)]
            off, stored, size, codec = struct.unpack(">QIIB", e[32:])
            if codec == 1:
                o.write(pack[off:off + stored]); n += 1; zbytes += stored
            else:
                raw += stored
print(f"{n} zstd objects, {zbytes} compressed bytes; {raw} bytes stored raw (hashed by verify, not part of the zstd -d input)")
EOF
}

# ---------------------------------------------------------------- main
main() {
  if [[ -e $WORK ]]; then
    say "== removing the previous $WORK; waiting $SETTLE s so that ext4's recently-deleted inodes do not slow this run"
    chmod -R u+w "$WORK" 2>/dev/null
    rm -rf "$WORK"
    sync
    sleep "$SETTLE"
  fi
  mkdir -p "$WORK" "$R" "$WORK/home"
  : >"$RESULTS"
  : >"$LOG"
  install_peers
  build_cairn
  {
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores; memory $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "kernel: $(uname -r); file system of $WORK: $(findmnt -no FSTYPE -T "$WORK")"
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "cairn: ${CAIRN_BIN:-built from} $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) ($(dotnet --version 2>/dev/null | sed 's/^/.NET SDK /'))"
    echo "peers: zstd $(zstd --version 2>/dev/null | grep -o 'v[0-9.]*'), $(restic version 2>/dev/null | cut -d' ' -f1-2), ostree $(ostree --version 2>/dev/null | awk -F"'" '/Version/ {print $2}'), casync $(casync --version 2>/dev/null), $(mksquashfs -version 2>/dev/null | head -1 | cut -d' ' -f1-3), borg $(borg --version 2>/dev/null | cut -d' ' -f2)"
    echo "page cache: $([[ ${BENCH_DROP_CACHES:-0} == 1 ]] && echo 'dropped before each command' || echo 'warm (not dropped)')"
    echo "scale: $SCALE; extraction runs: $RUNS (median); publish runs: $PUB_RUNS"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  } >"$WORK/machine.txt"
  cat "$WORK/machine.txt" >&2
  prepare_trees
  {
    for t in A B Ap; do
      echo "tree $t: $(find "$T/$t" -type f | wc -l) files, $(find "$T/$t" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }') bytes of file content (hardlinks counted each time)"
    done
  } >>"$WORK/machine.txt"

  local tools=(cairn)
  local p
  for p in tar ostree-archive ostree-bare restic casync squashfs borg; do
    if has_peer "$p"; then
      if available "$p"; then tools+=("$p"); else say "NOTE: peer $p is not installed; skipped"; fi
    fi
  done
  local reversed=()
  for ((i = ${#tools[@]} - 1; i >= 0; i--)); do reversed+=("${tools[i]}"); done

  say "== publish A, then the incremental A' into the same repository"
  for run in $(seq 1 "$PUB_RUNS"); do
    for p in "${tools[@]}"; do publish "$p" A "$run"; done
  done
  for p in "${tools[@]}"; do record_size "$p" A "$(repo_size "$p" A)"; done
  for p in "${reversed[@]}"; do
    case $p in tar | squashfs) ;; *) publish "$p" Ap 1 ;; esac # no incremental mode: a full re-create is the same as publish A
  done
  for p in "${tools[@]}"; do
    case $p in tar | squashfs) ;; *) record_size "$p" A+Ap "$(repo_size "$p" A)" ;; esac
  done

  say "== publish B"
  for run in $(seq 1 "$PUB_RUNS"); do
    for p in "${reversed[@]}"; do publish "$p" B "$run"; done
  done
  for p in "${tools[@]}"; do record_size "$p" B "$(repo_size "$p" B)"; done

  say "== verify --full against zstd -d over the same compressed bytes (repository of A + A')"
  zstd_frames "$R/cairn-A" "$WORK/frames.zst" | tee -a "$WORK/machine.txt" >&2
  for run in $(seq 1 "$RUNS"); do
    if ((run % 2)); then
      measure cairn verify A+Ap "$run" -- "'$CAIRN' --repo '$R/cairn-A' verify --full"
      measure zstd-d verify A+Ap "$run" -- "zstd -d -q -c '$WORK/frames.zst' >/dev/null"
    else
      measure zstd-d verify A+Ap "$run" -- "zstd -d -q -c '$WORK/frames.zst' >/dev/null"
      measure cairn verify A+Ap "$run" -- "'$CAIRN' --repo '$R/cairn-A' verify --full"
    fi
  done
  rm -f "$WORK/frames.zst"

  say "== materialize / checkout / extract (fresh directory each time, order alternating, $RUNS runs)"
  local ex=(cairn-warm cairn-cold)
  for p in tar ostree-archive ostree-bare restic casync squashfs borg; do
    [[ " ${tools[*]} " == *" $p "* ]] && ex+=("$p")
  done
  has_peer cp && ex+=(cp-a cp-al)
  local tree
  for tree in A B; do
    # The first materialize fills REPO/cache (timed as its own row); later ones hardlink from it.
    measure cairn-fill extract "$tree" 1 -- "'$CAIRN' --repo '$R/cairn-$tree' materialize tree${tree,,}/1 '$WORK/out/fill-$tree'"
    for run in $(seq 1 "$RUNS"); do
      local order=("${ex[@]}")
      if ((run % 2 == 0)); then
        order=()
        for ((i = ${#ex[@]} - 1; i >= 0; i--)); do order+=("${ex[i]}"); done
      fi
      if ((run % 3 == 0)); then # third run: start from the middle
        local half=$((${#ex[@]} / 2))
        order=("${ex[@]:half}" "${ex[@]:0:half}")
      fi
      for p in "${order[@]}"; do extract "$p" "$tree" "$run"; done
    done
    if [[ $tree == A ]]; then # free the space of A's outputs; let ext4 forget the deleted inodes before B
      chmod -R u+w "$WORK/out" 2>/dev/null
      rm -rf "$WORK/out"
      sync
      sleep "$SETTLE"
    fi
  done
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$WORK/machine.txt"

  python3 "$ROOT/benchmarks/summarize.py" "$RESULTS" "$WORK/machine.txt" | tee "$WORK/summary.md"
  if [[ ${BENCH_KEEP:-0} != 1 ]]; then
    chmod -R u+w "$WORK/out" "$R" 2>/dev/null
    rm -rf "$T" "$R" "$WORK/out" "$WORK/home"
  fi
  say "results: $RESULTS, $WORK/summary.md, log: $LOG"
}

main "$@"
