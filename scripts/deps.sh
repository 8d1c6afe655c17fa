#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages memsleuth needs to build and test
# (only those missing; needs root or sudo).  See docs/DEPENDENCIES.md.
set -euo pipefail
PKGS=(gcc g++ make cmake pkg-config libdw-dev libelf-dev libunwind-dev libzstd-dev python3 sqlite3 git libjemalloc2
      redis-server redis-tools nginx-light memcached curl libtalloc-dev libapr1-dev
      zlib1g-dev chromium golang-go python3-pil valgrind)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing ${missing[*]}"
# the servers are only for the tests, which start their own on loopback: keep
# the packages from starting system services while they install
added_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
fi
rc=0
$SUDO apt-get update -qq || rc=$?
[ $rc -eq 0 ] && { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?; }
[ $added_policy -eq 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
exit $rc
