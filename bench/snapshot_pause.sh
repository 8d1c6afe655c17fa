#!/usr/bin/env bash
# snapshot_pause.sh [MEMSLEUTH] [BLOCKS] - the pause of a live snapshot on a
# big heap (default 10 million blocks, ~1 GB), with the heap graph recorded
# (a trace) and without (--trace=no: the reachability check only); the time
# the graph takes to write after the pause, the trace's size, and what
# `memsleuth report` needs to analyze it.  Not part of the default tests.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MS=$(realpath "${1:-$ROOT/build/memsleuth}")
N=${2:-10000000}
T=$(mktemp -d /tmp/ms-pause.XXXXXX)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
cd "$T" || exit 1
gcc -O2 -o bigheap "$ROOT/bench/snapshot_pause.c" || exit 1

one() { # one TRACE_OPTION: run, snapshot, let the program end
    rm -f go
    # --snapshot-peak=no: the build-up of the heap takes no peak snapshots (they are measured
    # the same way; here only the one asked for counts)
    "$MS" run --leak-check=no --snapshot-peak=no "$1" -- ./bigheap "$N" >out.txt 2>err.txt &
    local runner=$!
    for _ in $(seq 1 1200); do grep -q ready out.txt 2>/dev/null && break; sleep 0.1; done
    local pid
    pid=$(pgrep -P $runner bigheap | head -1)
    local t0 t1
    t0=$(date +%s%N)
    "$MS" snapshot "$pid" >snap.txt 2>&1
    t1=$(date +%s%N)
    touch go
    wait $runner
    HEAP=$(sed -n 's/ready [0-9]* blocks \([0-9]*\) bytes/\1/p' out.txt)
    PAUSE=$(sed -n 's/.*threads paused \([0-9.]*\) ms.*/\1/p' snap.txt | head -1)
    TOTAL=$(( (t1 - t0) / 1000000 ))
}

one --trace=no
P0=$PAUSE; T0=$TOTAL
one --trace="$T/big.trace"
P1=$PAUSE; T1=$TOTAL
MB=$(awk -v b="$HEAP" 'BEGIN { printf "%.0f", b / 1048576 }')
echo "heap: $N blocks, $MB MiB (+ malloc overhead)"
awk -v p="$P0" -v b="$HEAP" 'BEGIN { printf "pause without the graph (--trace=no):  %8.1f ms  %6.1f ms per 100 MB\n", p, p / (b / 1e8) }'
awk -v p="$P1" -v b="$HEAP" 'BEGIN { printf "pause with the graph recorded:          %8.1f ms  %6.1f ms per 100 MB\n", p, p / (b / 1e8) }'
echo "snapshot command, end to end: $T0 ms without the graph, $T1 ms with it (encoding and writing after the pause)"
echo "trace: $(du -m big.trace | cut -f1) MiB"
/usr/bin/time -f "memsleuth report: %e s, peak RSS %M KiB" "$MS" report --top=5 big.trace >report.txt 2>time.txt
tail -1 time.txt
sed -n '/Retained by root/,/Why alive/p' report.txt | head -8
