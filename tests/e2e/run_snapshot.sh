#!/usr/bin/env bash
# run_snapshot.sh MEMSLEUTH - live snapshots of a running program: on command
# (memsleuth snapshot PID), on a signal, on an interval; while threads
# allocate hard; verdicts grow as the program leaks; records in the trace;
# the control socket is private and checks its peer.
set -u
MS=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/ms-snap.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 $p 2>/dev/null; done; rm -rf "$T"' EXIT
cd "$T" || exit 1
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -20; }
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi; }
gcc -O1 -g -pthread -o growsrv "$HERE/progs/growsrv.c" || exit 1
start() { # start OPTIONS...: the program under memsleuth; sets PID
    "$MS" run "$@" -- ./growsrv >out 2>log &
    pids+=($!)
    PID=
    for _ in $(seq 1 100); do PID=$(pgrep -P "${pids[-1]}" growsrv); [ -n "$PID" ] && grep -q ready out 2>/dev/null && break; sleep 0.1; done
}
lost() { sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$1" | tr -d , | head -1; }

start --trace="$T/g.trace"
sleep 0.5
"$MS" snapshot "$PID" >s1 2>e1; r1=$?
sleep 0.5
"$MS" snapshot "$PID" >s2 2>e2; r2=$?
check "memsleuth snapshot PID prints the verdicts of the running program" $([ $r1 -eq 0 ] && grep -q "SNAPSHOT 1 (command)" s1 && grep -q "growsrv.c:" s1 && echo 0 || echo 1) s1
check "a later snapshot sees more lost memory (the program keeps leaking)" $([ $r2 -eq 0 ] && [ "$(lost s2)" -gt "$(lost s1)" ] && echo 0 || echo 1) s2
okall=0
for i in $(seq 1 20); do "$MS" snapshot "$PID" >/dev/null 2>&1 || okall=1; done
kill -0 "$PID" 2>/dev/null || okall=1
check "20 snapshots while 3 threads allocate and free hard: no crash, no deadlock" $okall log
check "the pause is measured and reported" $(grep -qE "threads paused [0-9.]+ ms" s1 && echo 0 || echo 1) s1
dir=$(dirname "$(ls /tmp/memsleuth-$(id -u)/$PID.sock ${XDG_RUNTIME_DIR:-/nonexistent}/memsleuth/$PID.sock 2>/dev/null | head -1)")
check "control socket 0600 in a 0700 folder of ours" $([ "$(stat -c %a "$dir")" = 700 ] && [ "$(stat -c %a "$dir/$PID.sock")" = 600 ] && echo 0 || echo 1)
# another user (refused even when it reaches the socket): tests/security/run_security.sh
# (ctest e2e.security), with its own socket folder: loosening this shared one here would
# make every agent starting meanwhile refuse it and say so
kill -TERM "$PID"; wait "${pids[-1]}"
check "the socket is gone when the program ends" $([ ! -e "$dir/$PID.sock" ] && echo 0 || echo 1)
python3 "$HERE/../trace/check_trace.py" g.trace >c.out 2>&1
check "the trace holds the snapshots (SNAPSHOT and SNAP_LEAK records) and reads cleanly" $([ $? -eq 0 ] && grep -q "SNAPSHOT=2[0-9]" c.out && grep -q "SNAP_LEAK=" c.out && echo 0 || echo 1) c.out

start --snapshot-signal=USR2 --trace=no
kill -USR2 "$PID"; sleep 0.5; kill -USR2 "$PID"; sleep 0.5
kill -TERM "$PID"; wait "${pids[-1]}"
check "--snapshot-signal=USR2: a snapshot per signal, the program unaffected" $(grep -q "SNAPSHOT 1 (signal)" log && grep -q "SNAPSHOT 2 (signal)" log && echo 0 || echo 1) log
start --snapshot-interval=0.2 --trace=no
# wait for 4 interval snapshots (about 0.8 s; up to 30 s on a loaded machine)
for _ in $(seq 1 300); do [ "$(grep -c 'SNAPSHOT [0-9]* (interval)' log)" -ge 4 ] && break; sleep 0.1; done
kill -TERM "$PID"; wait "${pids[-1]}"
check "--snapshot-interval=0.2: a snapshot every 200 ms" $([ "$(grep -c 'SNAPSHOT [0-9]* (interval)' log)" -ge 4 ] && echo 0 || echo 1) log
POOLLIB=${POOLLIB:-}
if [ -n "$POOLLIB" ] && gcc -O0 -g -I"$HERE/../../include" -o pooluser "$HERE/progs/pooluser.c" "$POOLLIB" -Wl,-rpath,"$(dirname "$POOLLIB")"; then
    "$MS" run --trace=no -- ./pooluser >pout 2>plog &
    pids+=($!)
    for _ in $(seq 1 100); do PP=$(pgrep -P "${pids[-1]}" pooluser); [ -n "$PP" ] && grep -q ready pout 2>/dev/null && break; sleep 0.1; done
    "$MS" snapshot --pools "$PP" >pools 2>pe; r=$?
    check "snapshot --pools prints the pool tree of the running program with file:line" $([ $r -eq 0 ] && grep -q "server" pools && [ "$(grep -c "connection" pools)" -ge 3 ] && grep -q "pooluser.c:1[0-9]" pools && echo 0 || echo 1) pools
    kill -TERM "$PP"; wait "${pids[-1]}"
    "$MS" snapshot --pools "$PID" >o 2>e; r=$?
fi
"$MS" snapshot 1 >o 2>e; r=$?
check "snapshot of a process not under memsleuth: one line, exit 1" $([ $r -eq 1 ] && [ "$(wc -l <e)" -eq 1 ] && echo 0 || echo 1) e
"$MS" snapshot 999999999 >o 2>e; r=$?
check "snapshot of no process: one line, exit 1" $([ $r -eq 1 ] && [ "$(wc -l <e)" -eq 1 ] && echo 0 || echo 1) e
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
