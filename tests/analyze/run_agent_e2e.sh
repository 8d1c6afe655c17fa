#!/usr/bin/env bash
# run_agent_e2e.sh MEMSLEUTH [ANALYZE] - the analyzer on traces written by the real agent:
# `MEMSLEUTH run` traces tests/analyze/progs/growth_srv.c (a server and its forked worker),
# then `ANALYZE report` / `ANALYZE diff` (default: MEMSLEUTH itself, once report/diff are
# wired into src/cli/memsleuth.c; before that, the ms-analyze test driver that
# tests/analyze/run_tests.sh builds) must find: the cache freed only at shutdown
# (freed_at_exit), the sessions still reachable, the 48-byte leak (lost), the temporary
# strings, the worker under its parent, and with --scale 100:200 the per-request cost
# of each site.  Prints ok/not ok lines and "N passed, M failed".
set -u
MS=$(realpath "${1:?usage: $0 MEMSLEUTH [ANALYZE]}")
AN=$(realpath "${2:-$1}")
T="$(cd "$(dirname "$0")" && pwd)"
PY="python3 $T/jcheck.py"
W=$(mktemp -d /tmp/ms-analyze-e2e.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
pass=0
fail=0
t() {
    local name=$1
    shift
    if "$@" >check.out 2>&1; then
        echo "ok - $name"
        pass=$((pass + 1))
    else
        echo "not ok - $name"
        sed 's/^/#   /' check.out | head -30
        fail=$((fail + 1))
    fi
}
gcc -O0 -g -o growth_srv "$T/progs/growth_srv.c" || exit 1
line() { grep -n "/\* $1 \*/" "$T/progs/growth_srv.c" | cut -d: -f1; }
CACHE=$(line CACHE)
SESSION=$(line SESSION)
LOST=$(line LOST)

for n in 300 100 200; do
    mkdir -p "run$n"
    (cd "run$n" && "$MS" run --show-leak-kinds=all --log-file=/dev/null --trace="$W/run$n/gs.%p.trace" \
        -- ../growth_srv "$n")
done
# the server's own trace: the one whose pid is the other's ppid
parent() { for f in "$1"/gs.*.trace; do "$AN" report --format=dump "$f" | grep -q '^FORK ' && echo "$f"; done; }

"$AN" report --format=json run300/gs.*.trace >r.json 2>r.err
t "report of the server and its worker: exit 0, no message" sh -c "[ -s r.json ] && [ ! -s r.err ]"
t "the worker under the server; both exited" $PY r.json - \
    "len(PS) == 2 and PS[1]['parent_index'] == 0 and PS[0]['children'] == [PS[1]['pid']]" \
    "PS[0]['end']['how'] == 'exit' and PS[1]['end']['how'] == '_exit'" \
    "PS[0]['forks'][0]['traced'] is True"
t "server: growth suspects, each with its fate" $PY r.json - \
    "[(x['stack'][0]['line'], x['state']) for x in P['growth_suspects']][:3] == [($CACHE, 'freed_at_exit'), ($SESSION, 'reachable'), ($LOST, 'lost')]" \
    "P['growth_suspects'][0]['stack'][0]['function'] == 'handle'" \
    "P['growth_suspects'][0]['stack'][0]['file'] == 'growth_srv.c'"
t "server: leaks by kind at exit" $PY r.json - \
    "P['leaks']['definitely_lost'] == {'bytes': 1440, 'blocks': 30}" \
    "P['leaks']['still_reachable']['blocks'] >= 100" \
    "P['top_leaked'][0]['stack'][0]['line'] == $LOST"
t "server: temporary strings" $PY r.json - \
    "P['temporary']['allocations'] >= 300" \
    "fn(P['top_temporary'][0]) == 'fmt_request' and P['top_temporary'][0]['temporary'] == 300"
t "server: peak = cache + sessions + leaks + the rest, before shutdown" $PY r.json - \
    "P['peak_bytes'] >= 300 * 208 + 100 * 208 + 30 * 48" \
    "P['peak_time_ns'] < P['samples_end_ns'] <= P['run_time_ns']"
t "worker: its cache is still reachable (it _exits)" $PY r.json - \
    "[(x['stack'][0]['line'], x['state']) for x in PS[1]['growth_suspects']][0] == ($CACHE, 'reachable')"
"$AN" report run300/gs.*.trace >r.txt 2>&1
t "text report: the suspects and their states" sh -c "grep -q 'handle (growth_srv.c:$CACHE) *freed_at_exit' r.txt &&
    grep -q 'handle (growth_srv.c:$SESSION) *reachable' r.txt && grep -q 'handle (growth_srv.c:$LOST) *lost' r.txt"

"$AN" diff --format=json --scale 100:200 "$(parent run100)" "$(parent run200)" >d.json 2>d.err
t "diff --scale 100:200: per-request figures" $PY d.json - \
    "site(d['sites'], 'handle') is not None" \
    "[round(x['per_iteration_bytes'], 2) for x in d['sites'] if x['stack'][0]['line'] == $CACHE] == [208.0]" \
    "[round(x['per_iteration_blocks'], 2) for x in d['sites'] if x['stack'][0]['line'] == $CACHE] == [1.0]" \
    "[round(x['per_iteration_bytes'], 2) for x in d['sites'] if x['stack'][0]['line'] == $LOST] == [4.8]" \
    "[round(x['per_iteration_blocks'], 2) for x in d['sites'] if x['stack'][0]['line'] == $SESSION] == [0.33]" \
    "[x['change'] for x in d['sites'] if x['stack'][0]['line'] == $CACHE] == ['grew']"

# ---- per-thread breakdown: progs/threads_named.c, named threads with known allocations
gcc -O0 -g -pthread -o threads_named "$T/progs/threads_named.c" || exit 1
"$MS" run --log-file=/dev/null --trace="$W/tn.trace" -- ./threads_named >tn.out 2>&1
t "threads: the program ran under the agent" grep -qx "threads done" tn.out
"$AN" report --format=json tn.trace >tn.json 2>tn.err
"$AN" report tn.trace >tn.txt 2>>tn.err
"$AN" report --format=dump tn.trace >tn.dump 2>>tn.err
t "threads: every ALLOC names its thread; THREAD records name them" sh -c '
  [ ! -s tn.err ] && ! grep "^ALLOC " tn.dump | grep -qv " tid=[1-9]" &&
  grep -q "^THREAD .* name=\"alpha\"" tn.dump && grep -q "^THREAD .* name=\"gamma-late\"" tn.dump'
t "threads: exact figures per thread (alpha, beta, gamma-late; boss is main)" $PY tn.json - \
    "sorted(x['name'] for x in P['thread_breakdown']['threads']) == ['alpha', 'beta', 'boss', 'gamma-late']" \
    "[(x['allocations'], x['allocated_bytes'], x['frees'], x['max_live_bytes'], x['max_live_blocks'], x['peak_bytes'], x['end_live_bytes'], x['end_live_blocks'], x['leaked_bytes'], x['leaked_blocks']) for x in P['thread_breakdown']['threads'] if x['name'] == 'alpha'] == [(101, 100077, 60, 100077, 101, 40077, 40077, 41, 40000, 40)]" \
    "[(x['allocations'], x['allocated_bytes'], x['frees'], x['max_live_bytes'], x['max_live_blocks'], x['peak_bytes'], x['end_live_bytes'], x['end_live_blocks'], x['leaked_bytes']) for x in P['thread_breakdown']['threads'] if x['name'] == 'beta'] == [(51, 100077, 50, 100077, 51, 100077, 77, 1, 0)]" \
    "[(x['allocations'], x['allocated_bytes'], x['frees'], x['max_live_bytes'], x['peak_bytes'], x['end_live_bytes'], x['end_live_blocks'], x['leaked_bytes']) for x in P['thread_breakdown']['threads'] if x['name'] == 'gamma-late'] == [(10, 3000, 0, 3000, 0, 3000, 10, 0)]" \
    "P['thread_breakdown']['leaked_bytes_unattributed'] == 154" \
    "P['threads'] == 4 and all(x['tid'] > 0 for x in P['thread_breakdown']['threads'])" \
    "sum(x['allocations'] for x in P['thread_breakdown']['threads']) == P['allocations']" \
    "sum(x['allocated_bytes'] for x in P['thread_breakdown']['threads']) == P['allocated_bytes']" \
    "sum(x['end_live_bytes'] for x in P['thread_breakdown']['threads']) == P['exit_live_bytes']" \
    "sum(x['leaked_bytes'] for x in P['thread_breakdown']['threads']) + 154 == P['leaks']['definitely_lost']['bytes'] + P['leaks']['indirectly_lost']['bytes'] + P['leaks']['possibly_lost']['bytes']"
t "threads: the text report's Threads section" sh -c '
  grep -q "^  Threads (4; each with the blocks it allocated, whoever freed them)" tn.txt &&
  grep -Eq "^ +[0-9]+  alpha +101 +97.7 KiB +97.7 KiB +[0-9.]+ ms +39.1 KiB +39.1 KiB +39.1 KiB$" tn.txt &&
  grep -Eq "^ +[0-9]+  beta +51 +97.7 KiB +97.7 KiB +[0-9.]+ ms +97.7 KiB +77 B +0 B$" tn.txt &&
  grep -Eq "^ +[0-9]+  gamma-... +10 +2.93 KiB +2.93 KiB +[0-9.]+ ms +0 B +2.93 KiB +0 B$" tn.txt &&
  grep -q "leaked from sites several threads allocated from: 154 B" tn.txt || { cat tn.txt; exit 1; }'

# ---- the agent's own calls at exit are not the program's allocations
gcc -O0 -g -o own_allocs "$T/progs/own_allocs.c" || exit 1
printf '{\n  unrelated\n  Memcheck:Leak\n  fun:no_such_function\n}\n' >own.supp
for k in 1 2; do
    opts="--log-file=/dev/null"
    [ $k = 2 ] && opts="--log-file=$W/own.log --suppressions=$W/own.supp --track-fds=yes"
    rm -f own.trace
    "$MS" run $opts --trace="$W/own.trace" -- ./own_allocs >own.out 2>&1
    "$AN" report --format=json own.trace >own.json 2>/dev/null
    t "agent's own exit-time allocations are not the program's ($([ $k = 1 ] && echo defaults || echo 'log file, suppressions, track-fds'))" $PY own.json - \
        "(P['allocations'], P['allocated_bytes'], P['frees']) == (3, 600, 1)" \
        "sorted(fn(x) for x in P['top_allocations']) == ['main', 'main', 'main']"
done

# ---- threads renamed by another thread, then SIGKILL (no exit-time names): the names
# must be in the trace from the renames themselves (before, only the thread's own
# rename, its exit and the end of the run wrote a THREAD record)
mkdir -p ren
"$MS" run --log-file=/dev/null --trace="$W/ren/tr.%p.trace" -- ./threads_named renamed >ren.out 2>&1 &
RUNPID=$!
renamed_in_trace() {
    "$AN" report --format=dump ren/tr.*.trace 2>/dev/null >ren.dump &&
        grep -q '^THREAD .* name="delta-renamed"$' ren.dump && grep -q '^THREAD .* name="boss-renamed"$' ren.dump
}
for i in $(seq 100); do # the writer flushes every 50 ms; up to 10 s under load
    grep -qx renamed ren.out && renamed_in_trace && break
    sleep 0.1
done
TPID=$(ls ren/ 2>/dev/null | sed -n 's/^tr\.\([0-9]*\)\.trace$/\1/p' | head -1)
[ -n "$TPID" ] && kill -9 "$TPID"
wait "$RUNPID"
"$AN" report --format=json ren/tr.*.trace >ren.json 2>/dev/null
t "threads: renamed by another thread, then killed: the report has the new names" $PY ren.json - \
    "sorted(x['name'] for x in P['thread_breakdown']['threads']) == ['boss-renamed', 'delta-renamed']" \
    "[x['allocations'] for x in P['thread_breakdown']['threads'] if x['name'] == 'delta-renamed'] == [5]"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
