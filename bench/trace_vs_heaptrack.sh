#!/usr/bin/env bash
# bench/trace_vs_heaptrack.sh - trace size per event and analysis cost, memsleuth against
# heaptrack, on the same workloads (the shared bench workloads, built as bench/run.sh does).
#   usage: bench/trace_vs_heaptrack.sh [--memsleuth PATH] [--runs N] [--div D]
# For each workload (full bench/run.sh sizes divided by D, default 10):
#   record:  memsleuth run --leak-check=full --log-file=/dev/null --trace=F -- PROG
#            heaptrack -o F PROG            (records and interprets: the .zst heaptrack_print reads)
#   analyse: memsleuth report -o /dev/null F      heaptrack_print -f F >/dev/null
# runs N times (default 3) each analysis, alternating the two tools, under /usr/bin/time
# (wall seconds, max RSS), and prints a markdown table of medians.  Events = ALLOC + FREE
# records of the memsleuth trace (allocations + frees of its report); the same program at
# the same size makes the same calls under heaptrack.  Progress goes to stderr.
set -euo pipefail
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
WL_SRC=${WORKLOADS_DIR:-$ROOT/../shared/bench/workloads}
MS=$ROOT/build/memsleuth RUNS=3 DIV=10
while (($#)); do
	case $1 in
	--memsleuth) MS=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--div) DIV=$2; shift 2 ;;
	*) sed -n '3p' "$0" | sed 's/^# *//' >&2; exit 2 ;;
	esac
done
MS=$(realpath "$MS")
command -v heaptrack >/dev/null && command -v heaptrack_print >/dev/null ||
	{ echo "trace_vs_heaptrack.sh: heaptrack and heaptrack_print are needed" >&2; exit 2; }
B=$HERE/.build BIN=$HERE/.build/bin W=$HERE/.build/tvh
mkdir -p "$BIN" "$W"
make -s -C "$WL_SRC" B="$BIN" >&2
declare -A CMD=(
	[churn]="churn $((10000000 / DIV))"
	[mt_churn2]="mt_churn 2 $((20000000 / DIV))"
	[tree]="tree 1 $((1000000 / DIV))"
	[leaky_server]="leaky_server $((3000000 / DIV))"
)
ORDER=(${ONLY:-churn mt_churn2 tree leaky_server})

# t FILE CMD...: /usr/bin/time "wall rss_kib" of CMD into FILE
t() { local f=$1; shift; /usr/bin/time -f "%e %M" -o "$f" "$@" >/dev/null 2>>"$W/errors.log"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| workload | events | memsleuth trace | B/event | heaptrack .zst | B/event | memsleuth report s | RSS MiB | heaptrack_print s | RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for w in "${ORDER[@]}"; do
	read -r prog args <<<"${CMD[$w]}"
	echo "trace_vs_heaptrack: $w: recording" >&2
	rm -f "$W/$w.trace" "$W/$w.ht"*
	# shellcheck disable=SC2086
	"$MS" run --leak-check=full --log-file=/dev/null --trace="$W/$w.trace" -- "$BIN/$prog" $args >/dev/null
	# heaptrack's interpreter can take all the memory (16 GB in 3 minutes on churn 100000
	# here): it runs with its address space capped at LIMIT_GB (default 4) and a timeout
	# shellcheck disable=SC2086
	(ulimit -v $((${LIMIT_GB:-4} << 20)); timeout 600 heaptrack -o "$W/$w.ht" "$BIN/$prog" $args) >"$W/$w.htlog" 2>&1 || true
	ht=$(ls "$W/$w.ht"*.zst 2>/dev/null | head -1)
	if [[ -z $ht ]] || ! grep -q "Heaptrack finished" "$W/$w.htlog"; then
		echo "| $w \`$prog $args\` | | | | heaptrack failed ($(grep -m1 -iE "bad_alloc|error|killed|memory" "$W/$w.htlog" | cut -c1-80)) | | | | | |"
		rm -f "$W/$w.trace" "$W/$w.ht"*
		continue
	fi
	events=$("$MS" report --format=json "$W/$w.trace" | python3 -c \
		'import json,sys; p=json.load(sys.stdin)["processes"][0]; print(p["allocations"] + p["frees"])')
	ms_size=$(stat -c %s "$W/$w.trace") ht_size=$(stat -c %s "$ht")
	: >"$W/ms.times"; : >"$W/ht.times"
	for ((r = 0; r < RUNS; r++)); do
		echo "trace_vs_heaptrack: $w: analysis run $((r + 1))/$RUNS" >&2
		if ((r % 2 == 0)); then
			t "$W/x" "$MS" report -o /dev/null "$W/$w.trace"; cat "$W/x" >>"$W/ms.times"
			t "$W/x" heaptrack_print -f "$ht" || true; cat "$W/x" >>"$W/ht.times"
		else
			t "$W/x" heaptrack_print -f "$ht" || true; cat "$W/x" >>"$W/ht.times"
			t "$W/x" "$MS" report -o /dev/null "$W/$w.trace"; cat "$W/x" >>"$W/ms.times"
		fi
	done
	ms_s=$(cut -d' ' -f1 "$W/ms.times" | median) ms_m=$(cut -d' ' -f2 "$W/ms.times" | median)
	ht_s=$(cut -d' ' -f1 "$W/ht.times" | median) ht_m=$(cut -d' ' -f2 "$W/ht.times" | median)
	python3 - "$w \`$prog $args\`" "$events" "$ms_size" "$ht_size" "$ms_s" "$ms_m" "$ht_s" "$ht_m" <<'EOF'
import sys
w, ev, ms, ht, mss, msm, hts, htm = sys.argv[1:]
ev, ms, ht = int(ev), int(ms), int(ht)
print("| %s | %s | %.1f MiB | %.2f | %.1f MiB | %.2f | %s (%.1f M ev/s) | %.0f | %s (%.1f M ev/s) | %.0f |" % (
    w, format(ev, ","), ms / 2**20, ms / ev, ht / 2**20, ht / ev,
    mss, ev / max(float(mss), 0.01) / 1e6, int(msm) / 1024, hts, ev / max(float(hts), 0.01) / 1e6, int(htm) / 1024))
EOF
	rm -f "$W/$w.trace" "$ht"
done
