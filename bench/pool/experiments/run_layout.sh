#!/usr/bin/env bash
# run_layout.sh [ROUNDS] - what the allocation path of libmemsleuth_pool could
# gain from another block layout, measured before building it: the library
# of this tree and bound variants of its fast path (layout-bound.patch, fast
# path only: ms_pool_free, realloc, walks and debug mode do not work in them)
# against APR, each allocator alone in its process (pool_bench --only), the
# variants alternating, ROUNDS rounds (default 7).  Prints per variant the
# median and range of ns per allocation and per freed subtree.
#   cur       the library as it is (32-byte header, chunks 8K, 16K, 32K, 64K)
#   c0        the same header, every chunk 8K
#   nohdr     no header at all, 16-byte rounding (nothing recorded)
#   nohdr8k   no header, every chunk 8K
#   side8     no header, 8K chunks, an 8-byte entry per block (4-byte interned
#             site id behind a one-entry cache, size) stored downwards from the
#             chunk's end: a dense side array
#   side16    the same with 16-byte entries (file pointer, line, size)
# layout-bound.patch applies to the library before the 8-byte header layout
# (commit 0548059 and earlier): run this script from a worktree at that
# commit (git worktree add /tmp/old 0548059).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
ROUNDS=${1:-7}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/exp/src"
cp -r "$ROOT/src/pool" "$ROOT/src/common" "$T/exp/src/"
(cd "$T/exp" && patch -s -p1 <"$HERE/layout-bound.patch")
build() { # name srcroot flags...
    local d=$T/$1 sr=$2
    shift 2
    mkdir -p "$d"
    for s in pool pool_tree pool_introspect; do
        gcc -std=c17 -O2 -DNDEBUG -I"$ROOT/include" -fvisibility=hidden "$@" -c "$sr/src/pool/$s.c" -o "$d/$s.o"
    done
    # shellcheck disable=SC2046
    gcc -std=gnu17 -O2 -DNDEBUG -I"$ROOT/include" "$@" $(pkg-config --cflags talloc apr-1) "$ROOT/bench/pool/pool_bench.c" \
        "$d"/*.o $(pkg-config --libs talloc apr-1) -pthread -o "$d/pool_bench"
}
build cur "$ROOT"
build c0 "$T/exp" -DEXP_CLS0
build nohdr "$T/exp" -DEXP_SMALLFP
build nohdr8k "$T/exp" -DEXP_SMALLFP -DEXP_CLS0
build side8 "$T/exp" -DEXP_SMALLFP -DEXP_CLS0 -DEXP_SIDE8
build side16 "$T/exp" -DEXP_SMALLFP -DEXP_CLS0 -DEXP_SIDE16
for r in $(seq "$ROUNDS"); do
    for v in "apr cur" "ms_pool cur" "ms_pool c0" "ms_pool nohdr" "ms_pool nohdr8k" "ms_pool side8" "ms_pool side16"; do
        set -- $v
        "$T/$2/pool_bench" --allocators 1000 --allocs 100 --runs 11 --only "$1" |
            awk -F'|' -v k="$1" -v n="$2" '($2 ~ /APR/ && k == "apr") || ($2 ~ /ms_pool/ && k == "ms_pool") {
                print (k == "apr" ? "APR" : n), $4 + 0, $5 + 0 }'
    done
done | python3 -c '
import sys, statistics as st
d = {}
for l in sys.stdin:
    n, a, s = l.split(); d.setdefault(n, ([], []))[0].append(float(a)); d[n][1].append(float(s))
print("| variant | ns/allocation median (range) | ns/freed subtree median (range) |")
print("|---|---:|---:|")
for n, (a, s) in d.items():
    print("| %s | %.1f (%.1f-%.1f) | %.1f (%.1f-%.1f) |" % (n, st.median(a), min(a), max(a), st.median(s), min(s), max(s)))
print("\n%d rounds, variants alternating; each: pool_bench --allocators 1000 --allocs 100 --runs 11 --only NAME" % len(d["APR"][0]))
'
