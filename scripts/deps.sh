#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages memsleuth needs to build and test
# (only those missing; needs root or sudo).  See docs/DEPENDENCIES.md.
set -euo pipefail
PKGS=(gcc g++ make cmake pkg-config libdw-dev libelf-dev libunwind-dev python3 sqlite3 git libjemalloc2)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
