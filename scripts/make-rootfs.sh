#!/usr/bin/env bash
# Makes a Debian root file system tarball for use as a build environment (run as root; needs a Debian mirror):
#
#   bash scripts/make-rootfs.sh OUT.tar.zst [--suite bookworm] [--include build-essential,pkg-config] [--mirror URL]
#   cairn import OUT.tar.zst --as debian-12/20261125      # then name it in recipes: environment: debian-12
#
# debootstrap --variant=minbase into a scratch directory, then a tarball without what the sandbox provides itself
# (/dev, /proc, /sys, /run, /tmp) or what only apt needs (package lists and downloaded .debs). Device nodes are
# never part of a product, so /dev must go. Owners are dropped (products record contents and the executable bit).
set -euo pipefail

out=${1:?usage: make-rootfs.sh OUT.tar.zst [--suite SUITE] [--include PKGS] [--mirror URL]}
shift
suite=bookworm include="" mirror=http://deb.debian.org/debian
while (($#)); do
  case $1 in
    --suite) suite=$2; shift 2 ;;
    --include) include=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    *) echo "make-rootfs: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

command -v debootstrap >/dev/null || { echo "make-rootfs: debootstrap is missing: apt-get install debootstrap" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "make-rootfs: debootstrap needs root" >&2; exit 2; }

scratch=$(mktemp -d "${TMPDIR:-/var/tmp}/cairn-rootfs-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
args=(--variant=minbase)
[ -n "$include" ] && args+=("--include=$include")
if ! debootstrap "${args[@]}" "$suite" "$scratch/root" "$mirror" >"$scratch/debootstrap.log" 2>&1; then
  tail -n 20 "$scratch/debootstrap.log" >&2
  echo "make-rootfs: debootstrap of $suite from $mirror failed (log above); check that the mirror is reachable" >&2
  exit 1
fi

mkdir -p "$(dirname "$out")"
tar --numeric-owner --owner=0 --group=0 --sort=name -C "$scratch/root" \
  --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* --exclude=./run/* --exclude=./tmp/* \
  --exclude=./var/cache/apt/archives/*.deb --exclude=./var/lib/apt/lists/* \
  -c . | zstd -q -T0 -o "$out.tmp" -f
mv -f "$out.tmp" "$out"
echo "$out: $(du -h "$out" | cut -f1), $(. "$scratch/root/etc/os-release" && echo "$PRETTY_NAME")"
