#!/usr/bin/env bash
# bench/run.sh - wall time and peak RSS of memsleuth and its peers against native runs.
#   usage: bench/run.sh [--quick] [--memsleuth PATH] [--out FILE] [--only W1,W2] [--tools T1,T2] [--sample-rate BYTES]
# Prints two markdown tables (time ratios, RSS ratios) to stdout and to FILE (default
# bench/RESULTS.md); progress and failures go to stderr. See bench/README.md.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
WL_SRC=${WORKLOADS_DIR:-$ROOT/../shared/bench/workloads}
CMDLINE=$(printf "%q " "$0" "$@"); CMDLINE=${CMDLINE% }
QUICK=0
MS=$ROOT/build/memsleuth          # default: the tree's own build, if there is one
OUT=$HERE/RESULTS.md
ONLY="" TOOLS="" SAMPLE=512K

usage() { sed -n '3p' "$0" | sed 's/^# *//' >&2; exit 2; }
while (($#)); do
	case $1 in
	--quick) QUICK=1; shift ;;
	--memsleuth) (($# >= 2)) || usage; MS=$2; shift 2 ;;
	--memsleuth=*) MS=${1#*=}; shift ;;
	--out) (($# >= 2)) || usage; OUT=$2; shift 2 ;;
	--out=*) OUT=${1#*=}; shift ;;
	--only) (($# >= 2)) || usage; ONLY=$2; shift 2 ;;   # workloads, e.g. sqlite,redis
	--tools) (($# >= 2)) || usage; TOOLS=$2; shift 2 ;; # e.g. memsleuth,msample
	--sample-rate) (($# >= 2)) || usage; SAMPLE=$2; shift 2 ;;
	-h | --help) usage ;;
	*) echo "run.sh: unknown argument '$1'" >&2; usage ;;
	esac
done

# Sizes: full sizes are the ~1 s native sizes of the shared README; --quick divides them by 50.
# Valgrind and LSan (full stacks, ~50x) run at 1/DIV of that and are compared with a native
# run at the same reduced size ("native25").
DIV=25
if ((QUICK)); then SCALE=50 RUNS=1 PEER_RUNS=1 LIMIT=120
else SCALE=1 RUNS=3 PEER_RUNS=3 LIMIT=1800; fi

B=$HERE/.build BIN=$HERE/.build/bin LOGS=$HERE/.build/logs SCRATCH=$HERE/.build/scratch
WORKLOADS=(churn mt1 mt2 tree leaky sqlite redis)
if [[ -n $ONLY ]]; then
	sel=(); for w in "${WORKLOADS[@]}"; do [[ ,$ONLY, == *,$w,* ]] && sel+=("$w"); done
	((${#sel[@]})) || { echo "run.sh: --only: no such workload in '$ONLY'" >&2; exit 2; }
	WORKLOADS=("${sel[@]}")
fi
declare -A TITLE=([churn]=churn [mt1]="mt_churn 1T" [mt2]="mt_churn 2T" [tree]=tree
	[leaky]=leaky_server [sqlite]=sqlite3 [redis]="redis (+benchmark)")
CONFIGS=(native native25 memsleuth msample heaptrack valgrind lsan)
declare -A LABEL AVAIL T M FAIL SIZE

note() { echo "run.sh: $*" >&2; }

# --- tools: which are here, and the command prefix each one puts before the program ---------
detect_tools() {
	local c
	for c in "${CONFIGS[@]}"; do AVAIL[$c]=0; done
	AVAIL[native]=1 AVAIL[native25]=1
	LABEL[native]="native" LABEL[native25]="native [/$DIV]"
	if [[ -n $MS && -x $MS ]]; then
		AVAIL[memsleuth]=1
		MS=$(cd "$(dirname "$MS")" && pwd)/$(basename "$MS")
	fi
	LABEL[memsleuth]=memsleuth
	AVAIL[msample]=${AVAIL[memsleuth]}
	if ((AVAIL[memsleuth])); then
		LABEL[memsleuth]=$(timeout 5 "$MS" --version 2>/dev/null | head -1 || true)
		[[ ${LABEL[memsleuth]} == *memsleuth* ]] || LABEL[memsleuth]="memsleuth ${LABEL[memsleuth]}"
	fi
	LABEL[msample]="${LABEL[memsleuth]} --sample-rate=$SAMPLE"
	local t keep
	if [[ -n $TOOLS ]]; then   # --tools: only these (natives always run)
		for c in memsleuth msample heaptrack valgrind lsan; do
			keep=0; for t in ${TOOLS//,/ }; do [[ $t == "$c" ]] && keep=1; done
			((keep)) || AVAIL[$c]=0
		done
	fi
	HT_OPTS=()
	if command -v heaptrack >/dev/null; then
		AVAIL[heaptrack]=1
		local help; help=$(heaptrack --help 2>&1 || true)
		if grep -q -- --record-only <<<"$help"; then HT_OPTS=(--record-only)
		elif grep -q -- --raw <<<"$help"; then HT_OPTS=(--raw); fi   # 1.4's "record only" mode
	fi
	LABEL[heaptrack]="$(heaptrack --version 2>/dev/null | head -1 || echo heaptrack)${HT_OPTS[*]:+ (${HT_OPTS[*]}: record only)}"
	command -v valgrind >/dev/null && AVAIL[valgrind]=1
	LABEL[valgrind]="$(valgrind --version 2>/dev/null || echo valgrind) memcheck --leak-check=full"
	LSAN=$(gcc -print-file-name=liblsan.so 2>/dev/null || true)
	[[ -n $LSAN && -e $LSAN ]] && AVAIL[lsan]=1
	LABEL[lsan]="LeakSanitizer (gcc liblsan preloaded, full stacks)"
}

# tool_div CONFIG: the size divisor a configuration runs at (on top of SCALE).
tool_div() { case $1 in native25 | valgrind | lsan) echo "$DIV" ;; *) echo 1 ;; esac; }
# ref_of CONFIG: the native configuration its ratios are computed against.
ref_of() { [[ $(tool_div "$1") == 1 ]] && echo native || echo native25; }

# tool_prefix CONFIG: sets PRE, the words placed before the workload's command.
tool_prefix() {
	case $1 in
	native | native25) PRE=() ;;
	memsleuth) PRE=("$MS" run --leak-check=full --log-file=/dev/null --) ;;
	msample) PRE=("$MS" run --sample-rate="$SAMPLE" --leak-check=full --log-file=/dev/null --) ;;
	heaptrack) PRE=(heaptrack "${HT_OPTS[@]}" -o "$SCRATCH/heaptrack") ;;
	valgrind) PRE=(valgrind --leak-check=full) ;;
	lsan) PRE=(env "LD_PRELOAD=$LSAN"
		LSAN_OPTIONS=fast_unwind_on_malloc=0:detect_leaks=1:exitcode=0) ;;
	esac
}

# wl_cmd WORKLOAD DIV: sets CMD (argv) and IN (stdin) for the workload at 1/(SCALE*DIV) size.
wl_cmd() {
	local d=$((SCALE * $2))
	IN=/dev/null
	case $1 in
	churn) CMD=("$BIN/churn" $((10000000 / d))) ;;
	mt1) CMD=("$BIN/mt_churn" 1 $((20000000 / d))) ;;
	mt2) CMD=("$BIN/mt_churn" 2 $((20000000 / d))) ;;
	tree) CMD=("$BIN/tree" 1 $((1000000 / d))) ;;
	leaky) CMD=("$BIN/leaky_server" $((3000000 / d))) ;;
	sqlite) CMD=(sqlite3 :memory:) IN=$B/sql.$((200000 / d)).sql ;;
	# the shared script starts redis-server under the tool's words (given after its
	# own arguments), drives it with redis-benchmark on loopback and shuts it down
	redis) CMD=(sh "$WL_SRC/redis_run.sh" $((100000 / d))) ;;
	esac
	SIZE[$1,$2]="${CMD[*]#"$BIN/"}"
	[[ $1 == sqlite ]] && SIZE[$1,$2]="sqlite3 < gen_sql.sh $((200000 / d))"
	return 0
}

# --- build -----------------------------------------------------------------------------------
build() {
	mkdir -p "$BIN" "$LOGS" "$SCRATCH"
	note "building workloads into $BIN"
	make -s -C "$WL_SRC" B="$BIN" >&2
	local d
	for d in 1 "$DIV"; do
		wl_cmd sqlite "$d"
		[[ -s $IN ]] || "$WL_SRC/gen_sql.sh" $((200000 / (SCALE * d))) >"$IN"
	done
}

# --- measuring -------------------------------------------------------------------------------
# measure CONFIG WORKLOAD: one run; appends wall µs to T and maxrss KiB to M, or sets FAIL.
# Wall time comes from bash's microsecond clock around /usr/bin/time (which gives maxrss:
# the largest process of the tree, e.g. the program under heaptrack, not the sum).
measure() {
	local c=$1 w=$2 rc=0 t0 t1 log=$LOGS/$1.$2.log
	wl_cmd "$w" "$(tool_div "$c")"
	tool_prefix "$c"
	local argv=("${PRE[@]}" "${CMD[@]}")
	[[ $w == redis ]] && argv=("${CMD[@]}" "${PRE[@]}")
	t0=$EPOCHREALTIME
	REDIS_PORT=${REDIS_PORT:-16399} /usr/bin/time -o "$B/time.out" -f '%M' timeout -k 10 "$LIMIT" \
		"${argv[@]}" <"$IN" >/dev/null 2>"$log" || rc=$?
	t1=$EPOCHREALTIME
	rm -rf "${SCRATCH:?}"/* "${SCRATCH:?}"/.[!.]* 2>/dev/null || true  # traces, heaptrack files
	if ((rc)); then
		FAIL[$c,$w]=1
		note "FAIL $c $w: exit status $rc ($(head -1 "$B/time.out")); see $log"
		return 0
	fi
	T[$c,$w]+=" $((${t1/./} - ${t0/./}))"
	M[$c,$w]+=" $(tail -1 "$B/time.out")"
}

# run_all: for each workload, runs the configurations in turn (native, tool, native, tool...),
# so that slow drifts in the machine's load hit every configuration alike.
run_all() {
	local w c r n
	cd "$SCRATCH"   # memsleuth writes its trace to the current directory
	for w in "${WORKLOADS[@]}"; do
		if [[ $w == sqlite ]] && ! command -v sqlite3 >/dev/null; then continue; fi
		if [[ $w == redis ]] && ! command -v redis-benchmark >/dev/null; then continue; fi
		for ((r = 1; r <= (RUNS > PEER_RUNS ? RUNS : PEER_RUNS); r++)); do
			for c in "${CONFIGS[@]}"; do
				case $c in native*|memsleuth|msample) n=$RUNS ;; *) n=$PEER_RUNS ;; esac
				if ((r > n || !AVAIL[$c])) || [[ -n ${FAIL[$c,$w]:-} ]]; then continue; fi
				note "$w: $c (run $r/$n)"
				measure "$c" "$w"
			done
		done
	done
	cd - >/dev/null
}

# --- report ----------------------------------------------------------------------------------
# median "V1 V2 ...": the median of a space-separated list (empty if the list is).
median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {
	if (NR == 0) print ""; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
fmt_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; printf (r < 10 ? "%.2f" : "%.0f"), r }'; }
secs() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1e6 }'; }

# cell ARRAYNAME CONFIG WORKLOAD: the ratio of medians of CONFIG to its native reference.
cell() {
	local -n arr=$1
	local c=$2 w=$3 ref a b
	ref=$(ref_of "$c")
	((AVAIL[$c])) || { echo "n/a"; return; }
	[[ -n ${FAIL[$c,$w]:-} ]] && { echo "fail"; return; }
	a=$(median "${arr[$c,$w]:-}") b=$(median "${arr[$ref,$w]:-}")
	[[ -n $a && -n $b ]] || { echo "n/a"; return; }
	echo "$(fmt_ratio "$a" "$b")$([[ $ref == native25 ]] && echo " [/$DIV]")"
}

table() { # ARRAYNAME: one row per tool, one column per workload
	local c w line
	printf '| tool |'; for w in "${WORKLOADS[@]}"; do printf ' %s |' "${TITLE[$w]}"; done; echo
	printf '|---|'; for w in "${WORKLOADS[@]}"; do printf -- '---|'; done; echo
	for c in memsleuth msample heaptrack valgrind lsan; do
		((AVAIL[$c])) || [[ $c == memsleuth ]] || continue
		line="| ${LABEL[$c]} |"
		for w in "${WORKLOADS[@]}"; do line+=" $(cell "$1" "$c" "$w") |"; done
		echo "$line"
	done
}

# speedup_row CONFIG: time(mt_churn 1 N)/time(mt_churn 2 N); SPEEDUP_NATIVE is set by native's.
speedup_row() {
	local c=$1 t1 t2 s pct="100 %"
	if ! ((AVAIL[$c])) || [[ -n ${FAIL[$c,mt1]:-}${FAIL[$c,mt2]:-} ]]; then
		echo "| $c | n/a | n/a | n/a | n/a |"; return
	fi
	t1=$(median "${T[$c,mt1]:-}") t2=$(median "${T[$c,mt2]:-}")
	[[ -n $t1 && -n $t2 ]] || { echo "| $c | n/a | n/a | n/a | n/a |"; return; }
	s=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", a / b }')
	[[ $c == native ]] && SPEEDUP_NATIVE=$s
	[[ $c != native ]] && pct=$(awk -v a="$s" -v b="${SPEEDUP_NATIVE:-0}" \
		'BEGIN { if (b > 0) printf "%.0f %%", 100 * a / b; else print "n/a" }')
	echo "| $c | $(secs "$t1") s | $(secs "$t2") s | $s | $pct |"
}

report() {
	local w c d cpu
	cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
	echo "# memsleuth benchmark$( ((QUICK)) && echo " (--quick: smoke-test sizes, 1 run each)")"
	echo
	echo "- date: $(date '+%Y-%m-%d %H:%M:%S %Z')"
	echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r)"
	echo "- command: \`$CMDLINE\`"
	echo "- runs per cell: $RUNS (native, memsleuth), $PEER_RUNS (peers); medians; [/$DIV]: run at" \
		"1/$DIV of the size, against native at that size"
	echo
	echo "Native baseline (median wall time, peak RSS):"
	echo
	echo "| workload | size | wall | RSS | size [/$DIV] | wall [/$DIV] | RSS [/$DIV] |"
	echo "|---|---|---|---|---|---|---|"
	for w in "${WORKLOADS[@]}"; do
		local row="| ${TITLE[$w]} |"
		for c in native native25; do
			d=$(tool_div "$c"); wl_cmd "$w" "$d"
			if [[ -n ${T[$c,$w]:-} ]]; then
				row+=" \`${SIZE[$w,$d]}\` | $(secs "$(median "${T[$c,$w]}")") s | $(median "${M[$c,$w]}") KiB |"
			elif [[ -n ${FAIL[$c,$w]:-} ]]; then row+=" \`${SIZE[$w,$d]}\` | fail | |"
			else row+=" \`${SIZE[$w,$d]}\` | n/a | |"; fi
		done
		echo "$row"
	done
	echo
	echo "## Wall time, ratio to native (smaller is better)"
	echo; table T; echo
	echo "## Peak RSS, ratio to native"
	echo; table M; echo
	echo "## mt_churn 2-thread speedup: time(mt_churn 1 N) / time(mt_churn 2 N)"
	echo
	echo "| tool | 1 thread | 2 threads | speedup | % of native's speedup |"
	echo "|---|---|---|---|---|"
	speedup_row native; speedup_row memsleuth
	((AVAIL[memsleuth])) && mem_report
}

# --- the agent's own memory: per live block and per distinct stack ---------------------------
# min_rss CMD...: the smallest peak RSS (KiB) of 2 runs.
min_rss() {
	local a b
	(cd "$SCRATCH" && /usr/bin/time -o "$B/time.out" -f '%M' "$@" >/dev/null 2>&1) || return 1
	a=$(tail -1 "$B/time.out")
	(cd "$SCRATCH" && /usr/bin/time -o "$B/time.out" -f '%M' "$@" >/dev/null 2>&1) || return 1
	b=$(tail -1 "$B/time.out"); rm -rf "${SCRATCH:?}"/* 2>/dev/null || true
	echo $((a < b ? a : b))
}

mem_report() {
	local n=$((1000000 / SCALE)) c=$((2000000 / SCALE)) t_nat t_ms s0 s16 pre
	pre=("$MS" run --leak-check=full --log-file=/dev/null --)
	# tree 1 N: 2N live blocks at the peak, a few stacks
	t_nat=$(min_rss "$BIN/tree" 1 "$n") || return 0
	t_ms=$(min_rss "${pre[@]}" "$BIN/tree" 1 "$n") || return 0
	# churn with 2^16 distinct stacks against 1, a small live set
	s16=$(min_rss "${pre[@]}" "$BIN/churn" "$c" 16) || return 0
	s0=$(min_rss "${pre[@]}" "$BIN/churn" "$c" 0) || return 0
	echo
	echo "## The agent's own memory (peak RSS differences, smallest of 2 runs, trace on)"
	echo
	echo "| what | measured | per unit |"
	echo "|---|---|---|"
	echo "| live blocks: \`tree 1 $n\` ($((2 * n)) live blocks at the peak) | native $t_nat KiB, memsleuth $t_ms KiB |" \
		"$(awk -v a="$t_ms" -v b="$t_nat" -v k=$((2 * n)) 'BEGIN { printf "%.1f bytes per live block", (a - b) * 1024 / k }') |"
	echo "| distinct stacks: \`churn $c 16\` (65536 stacks of 19 frames) against \`churn $c 0\` (1 stack) | $s16 KiB against $s0 KiB |" \
		"$(awk -v a="$s16" -v b="$s0" 'BEGIN { printf "%.0f bytes per stack", (a - b) * 1024 / 65535 }') |"
}

main() {
	detect_tools
	build
	run_all
	mkdir -p "$(dirname "$OUT")"
	report >"$B/report.md"
	cp "$B/report.md" "$OUT"
	cat "$B/report.md"
	note "written to $OUT; per-run stderr in $LOGS"
}
main
