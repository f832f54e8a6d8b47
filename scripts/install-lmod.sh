#!/usr/bin/env bash
# Lmod next to environment-modules, for the modulefile tests (run as root; idempotent). Debian's lmod package
# conflicts with environment-modules, so instead of installing it its files are unpacked into /opt/lmod and run
# with lua5.3: `lua5.3 /opt/lmod/usr/share/lmod/lmod/libexec/lmod bash load NAME` prints the shell code to eval.
set -euo pipefail

lmod=/opt/lmod/usr/share/lmod/lmod/libexec/lmod
if [ -f /usr/share/lmod/lmod/libexec/lmod ] || [ -f "$lmod" ]; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
deps=(lua5.3 lua-posix lua-filesystem lua-term lua-json tcl)
apt-get install -y -qq --no-install-recommends "${deps[@]}" >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq --no-install-recommends "${deps[@]}" >/dev/null; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
(cd "$tmp" && { apt-get download lmod >/dev/null 2>&1 || { apt-get update -qq && apt-get download lmod >/dev/null 2>&1; }; })
mkdir -p /opt/lmod
dpkg-deb -x "$tmp"/lmod_*.deb /opt/lmod
test -f "$lmod"
echo "install-lmod: Lmod unpacked into /opt/lmod"
