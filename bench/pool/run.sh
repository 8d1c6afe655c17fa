#!/usr/bin/env bash
# run.sh [--quick] [--out FILE] [--apr-extra B] [BUILD_DIR] - build bench/pool/pool_bench.c
# against talloc and APR (pkg-config talloc apr-1: Debian's libtalloc-dev
# and libapr1-dev) and libmemsleuth_pool (src/pool, -O2), run it, print the
# markdown table of ns per allocation and per freed subtree for malloc/free,
# talloc, APR pools and ms_pool (see pool_bench.c for the workload).
#   --quick     1 run of a 1/10 workload (smoke test, seconds)
#   --out FILE  also write the table (with the command and machine) to FILE
#   --apr-extra B  ask APR for B more bytes per block (36: ms_pool's footprint)
#   --rotate    rotate the allocators' order from run to run
#   --only NAME run one allocator only (malloc, talloc, apr, ms_pool)
# BUILD_DIR defaults to a temporary directory, removed afterwards.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ARGS=(--allocators 1000 --allocs 100 --runs 21)
OUT=""
B=""
EXTRA=()
while [ $# -gt 0 ]; do
    case $1 in
    --quick) ARGS=(--allocators 100 --allocs 100 --runs 1) ;;
    --out) OUT=$2; shift ;;
    --apr-extra) EXTRA+=(--apr-extra "$2"); shift ;;
    --rotate) EXTRA+=(--rotate) ;;
    --only) EXTRA+=(--only "$2"); shift ;;
    *) B=$1 ;;
    esac
    shift
done
if ! pkg-config --exists talloc apr-1; then
    echo "run.sh: needs talloc and APR: apt-get install libtalloc-dev libapr1-dev pkg-config" >&2
    exit 1
fi
CLEAN=0
if [ -z "$B" ]; then
    B=$(mktemp -d)
    CLEAN=1
fi
mkdir -p "$B"
CFLAGS=(-O2 -g -DNDEBUG -Wall -Wextra -I"$ROOT/include")
for s in pool pool_tree pool_introspect; do
    gcc -std=c17 "${CFLAGS[@]}" -fvisibility=hidden -c "$ROOT/src/pool/$s.c" -o "$B/$s.o"
done
# shellcheck disable=SC2046
gcc -std=gnu17 "${CFLAGS[@]}" $(pkg-config --cflags talloc apr-1) "$HERE/pool_bench.c" \
    "$B/pool.o" "$B/pool_tree.o" "$B/pool_introspect.o" $(pkg-config --libs talloc apr-1) -pthread \
    -o "$B/pool_bench"
TABLE=$("$B/pool_bench" "${ARGS[@]}" "${EXTRA[@]}")
echo "$TABLE"
if [ -n "$OUT" ]; then
    {
        echo "# libmemsleuth_pool benchmark"
        echo
        echo "Command: \`bench/pool/run.sh --out bench/pool/RESULTS.md\` ($(date -u +%Y-%m-%d))"
        echo
        echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
        echo "$(gcc --version | head -1), talloc $(pkg-config --modversion talloc), APR $(pkg-config --modversion apr-1),"
        echo "all built -O2."
        echo
        echo "$TABLE"
    } >"$OUT"
fi
[ $CLEAN -eq 1 ] && rm -rf "$B"
exit 0
