#!/usr/bin/env bash
# run.sh MEMSLEUTH [REPEATS] - time to stop the threads (ptrace vs the signal
# fallback) for 4, 8 and 16 threads: stopprog under --snapshot-interval=0.1 for
# 3 s, MEMSLEUTH_DEBUG=1 prints each stop's time; A/B runs alternate; the
# minimum and the median of all stops per method and thread count.
set -u
MS=$(realpath "$1")
R=${2:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/ms-stwbench.XXXXXX)
trap 'rm -rf "$T"' EXIT
gcc -O1 -pthread -o "$T/stopprog" "$HERE/stopprog.c" || exit 1
for n in 4 8 16; do
    for r in $(seq 1 "$R"); do
        for m in ptrace signal; do
            env MEMSLEUTH_DEBUG=1 $([ $m = signal ] && echo MEMSLEUTH_TEST_NO_PTRACE=1) \
                "$MS" run --trace=no --leak-check=no --snapshot-interval=0.1 -- "$T/stopprog" "$n" 3 2>&1 |
                sed -n "s/.*debug: stopped \([0-9]*\) threads with $m in \([0-9.]*\) ms.*/\2/p" >>"$T/$m.$n"
        done
    done
    for m in ptrace signal; do
        sort -g "$T/$m.$n" | awk -v m=$m -v n=$n '{v[NR] = $1} END {printf "%-6s %2d threads: %3d stops, min %.3f ms, median %.3f ms\n", m, n, NR, v[1], v[int((NR + 1) / 2)]}'
    done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
