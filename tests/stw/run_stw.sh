#!/usr/bin/env bash
# run_stw.sh MEMSLEUTH - stopping the threads for a snapshot or the exit check
# is invisible to the program (ptrace, not a signal handler): threads blocked
# in nanosleep, poll, select, epoll_wait, sigtimedwait, read, epoll_wait and
# rt_sigtimedwait through syscall(), epoll_pwait2, semtimedop, recv and
# recvmsg on a socket with SO_RCVTIMEO (the socket's timeout intact after; a handler
# without SA_RESTART installed) see their calls return as natively (no EINTR,
# the whole timeout elapsed, not more) while snapshots are taken in the middle
# of them; the program's signals sent while the threads are stopped arrive
# exactly once; wait(-1) never sees the tracer; no thread stays traced.  The
# fallback (ptrace refused: a test knob, or strace -f) still works and says
# so in one line - and the same checks see its EINTRs; so does a seccomp
# filter forbidding ptrace (EPERM, or killing the tracer).
set -u
MS=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/ms-stw.XXXXXX); echo "# in $T"
pids=()
trap 'for p in "${pids[@]}"; do kill -9 $p 2>/dev/null; done; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
cd "$T" || exit 1
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -30; }
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi; }
gcc -O1 -g -pthread -o stw_prog "$HERE/stw_prog.c" || exit 1
FALLBACK="cannot stop the threads with ptrace"

# start NAME ROUNDS MODE [ENV...] [-- WRAPPER...]: stw_prog under memsleuth; sets PID
start() {
    local name=$1 rounds=$2 mode=$3
    shift 3
    local envs=() wrap=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
    [ "${1:-}" = "--" ] && { shift; wrap=("$@"); }
    rm -f in; mkfifo in
    env MEMSLEUTH_DEBUG=1 "${envs[@]}" "${wrap[@]}" "$MS" run --trace=no -- ./stw_prog "$rounds" "$mode" <in >"$name.out" 2>"$name.err" &
    pids+=($!)
    exec 3>in
    PID=
    for _ in $(seq 1 200); do
        PID=$(for d in $(descendants "${pids[-1]}"); do [ "$(cat /proc/$d/comm 2>/dev/null)" = stw_prog ] && echo $d; done | head -1)
        [ -n "$PID" ] && break
        sleep 0.05
    done
}
descendants() { for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
# go NAME K: start round K (the program waits for a line), wait until it runs
go() { echo go >&3; for _ in $(seq 1 300); do grep -q "round $2" "$1.out" 2>/dev/null && break; sleep 0.02; done; }
finish() { echo end >&3; exec 3>&-; for _ in $(seq 1 400); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done; wait "${pids[-1]}"; }
# untraced: no thread of PID traced any more (the tracer detaches just after the reply)
untraced() {
    for _ in $(seq 1 40); do
        local t=0
        for s in /proc/"$1"/task/*/status; do
            tp=$(sed -n 's/^TracerPid:\t*//p' "$s" 2>/dev/null)
            [ -n "$tp" ] && [ "$tp" != 0 ] && t=1
        done
        [ $t -eq 0 ] && return 0
        sleep 0.05
    done
    return 1
}
# calls NAME: every timed call returned as natively (one check per kind of call)
calls_native() {
    for c in nanosleep poll select epoll_wait sigtimedwait read epoll_wait_raw sigtimedwait_raw epoll_pwait2 semtimedop recv_rcvtimeo recvmsg_rcvtimeo_raw; do
        line=$(grep "^call=$c " "$1.out")
        check "$2: $c returned as natively with snapshots in the middle: $line" \
            $(echo "$line" | grep -Eq "^call=$c n=$3 eintr=0 short=0 long=0 other=0 " && echo 0 || echo 1) "$1.out"
    done
}
verdicts() { # verdicts FILE: the leak and the registry, as the program made them
    grep -q "definitely lost: 4,321 bytes in 1 blocks" "$1" && grep -q "12,800 bytes in 200 blocks are still reachable" "$1"
}

# ---- 1. ptrace: 3 rounds of 1.5 s calls, snapshots 0.4 s and 1.1 s into each ----
start a 3 exit MEMSLEUTH_TEST_HOLD_MS=200
nsnap=0 vok=0 traced=0 sent_usr1=0
for k in 1 2 3; do
    go a $k
    sleep 0.3
    "$MS" snapshot "$PID" >a.snap$k.1 2>&1 && nsnap=$((nsnap + 1))
    verdicts a.snap$k.1 && vok=$((vok + 1))
    untraced "$PID" || traced=$((traced + 1))
    # a SIGUSR1 sent while the threads are held stopped (200 ms)
    "$MS" snapshot "$PID" >a.snap$k.2 2>&1 &
    sp=$!
    sleep 0.08
    kill -USR1 "$PID" && sent_usr1=$((sent_usr1 + 1))
    wait $sp && nsnap=$((nsnap + 1))
    verdicts a.snap$k.2 && vok=$((vok + 1))
done
finish; rc=$?
check "ptrace: 6 snapshots taken ($nsnap), each with the right verdicts ($vok): 4,321 bytes lost, the 200-block registry reachable" $([ $nsnap -eq 6 ] && [ $vok -eq 6 ] && echo 0 || echo 1) a.snap1.1
calls_native a "ptrace" 3
check "ptrace: the sockets' SO_RCVTIMEO is the program's 1.5 s after the receives restarted with the time left" $(grep -q "^rcvtimeo_after=1500,1500$" a.out && echo 0 || echo 1) a.out
check "ptrace: every SIGUSR1 sent while the threads were stopped handled exactly once ($sent_usr1 sent)" $(grep -q "^sigusr1=$sent_usr1 " a.out && echo 0 || echo 1) a.out
check "ptrace: no thread left traced after a snapshot (TracerPid 0 in /proc/PID/task/*/status within 2 s)" $([ $traced -eq 0 ] && echo 0 || echo 1)
check "ptrace: wait(-1) in a thread forking meanwhile sees its children only, never the tracer" $(grep -Eq "^forks=[1-9][0-9]* fork_bad=0$" a.out && echo 0 || echo 1) a.out
check "ptrace: every stop (6 snapshots, the exit check) used ptrace; no fallback line" $([ "$(grep -c "stopped [0-9]* threads with ptrace" a.err)" -ge 7 ] && ! grep -q "$FALLBACK" a.err && ! grep -q "threads with signal" a.err && echo 0 || echo 1) a.err
check "ptrace: the exit check (threads still running) reports the leak; exit status 0" $([ $rc -eq 0 ] && grep -q "done" a.out && grep -q "4,321 bytes in 1 blocks are definitely lost" a.err && echo 0 || echo 1) a.err
check "ptrace: the exit check calls nothing else definitely lost (the joined threads' cached TLS blocks are what freeres frees)" $(grep -q "definitely lost: 4,321 bytes in 1 blocks$" a.err && echo 0 || echo 1) a.err

# ---- 2. queued real-time signals sent while snapshots stop the world in a loop ----
start r 2 exit
go r 1
( for i in $(seq 1 300); do kill -s RTMIN+1 "$PID" 2>/dev/null || break; sleep 0.004; done; echo sent >r.sent ) &
sp=$!
nsnap=0
while kill -0 $sp 2>/dev/null && [ $nsnap -lt 40 ]; do "$MS" snapshot "$PID" >/dev/null 2>&1 && nsnap=$((nsnap + 1)); done
wait $sp
go r 2
finish
check "ptrace: 300 SIGRTMIN+1 sent during $nsnap snapshots: each handled exactly once ($(sed -n 's/^sigusr1=[0-9]* //p' r.out); $(grep -o "([0-9]* caught in a signal-delivery-stop" r.err | awk '{s += substr($1, 2)} END {print s + 0}') caught in a signal-delivery-stop)" $([ -f r.sent ] && [ $nsnap -ge 1 ] && grep -q "^sigusr1=0 rt=300$" r.out && echo 0 || echo 1) r.out
calls_native r "ptrace, signals flowing" 2

# ---- 3. the fatal-signal exit check with ptrace ----
start c 1 abort
go c 1
sleep 0.5
"$MS" snapshot "$PID" >c.snap 2>&1
finish; rc=$?
check "ptrace: abort() with threads running: the exit check stops them with ptrace, reports the leak, status 134" $([ $rc -eq 134 ] && verdicts c.snap && [ "$(grep -c "stopped [0-9]* threads with ptrace" c.err)" -ge 2 ] && grep -q "4,321 bytes in 1 blocks are definitely lost" c.err && echo 0 || echo 1) c.err

# ---- 4. fallback, forced by the test knob: _exit with threads running ----
start b 2 _exit MEMSLEUTH_TEST_NO_PTRACE=1
nsnap=0 vok=0
for k in 1 2; do
    go b $k
    sleep 0.5
    "$MS" snapshot "$PID" >b.snap$k 2>&1 && nsnap=$((nsnap + 1))
    verdicts b.snap$k && vok=$((vok + 1))
done
finish; rc=$?
check "fallback (ptrace refused): snapshots still right, the _exit check too (status 3)" $([ $nsnap -eq 2 ] && [ $vok -eq 2 ] && [ $rc -eq 3 ] && grep -q "4,321 bytes in 1 blocks are definitely lost" b.err && echo 0 || echo 1) b.err
check "fallback: said once, in one line, for 3 stops" $([ "$(grep -c "$FALLBACK" b.err)" -eq 1 ] && [ "$(grep -c "threads with signal" b.err)" -ge 3 ] && echo 0 || echo 1) b.err
check "fallback: the same checks see the signal cut calls short (they can fail)" $(grep "^call=" b.out | grep -qv "eintr=0 short=0" && echo 0 || echo 1) b.out
check "fallback: read on a pipe goes on after the stop handler (installed with SA_RESTART), as natively" $(grep -Eq "^call=read n=2 eintr=0 short=0 long=0 other=0 " b.out && echo 0 || echo 1) b.out

# ---- 5. a process traced already (strace -f): the fallback, said once ----
if command -v strace >/dev/null; then
    start s 1 exit -- strace -f -o /dev/null
    go s 1
    sleep 0.5
    "$MS" snapshot "$PID" >s.snap 2>&1; r=$?
    finish; rc=$?
    check "under strace -f: the snapshot falls back to the signal, says so once, verdicts right" $([ $r -eq 0 ] && [ $rc -eq 0 ] && verdicts s.snap && [ "$(grep -c "$FALLBACK" s.err)" -eq 1 ] && grep -q "$FALLBACK (thread [0-9]*: Operation not permitted)" s.err && echo 0 || echo 1) s.err
fi
# ---- 6. ptrace forbidden by seccomp (EPERM, or the tracer killed): the exit check on main ----
if gcc -O1 -pthread -o seccomp_prog "$HERE/seccomp_prog.c"; then
    for m in errno kill; do
        "$MS" run --trace=no -- ./seccomp_prog $m >q.$m.out 2>q.$m.err; rc=$?
        check "seccomp forbids ptrace ($m): the exit check falls back, says so once, reports the 999 bytes, status 0" $([ $rc -eq 0 ] && grep -q "seccomp $m ok" q.$m.out && [ "$(grep -c "$FALLBACK" q.$m.err)" -eq 1 ] && grep -q "999 bytes in 1 blocks are definitely lost" q.$m.err && echo 0 || echo 1) q.$m.err
    done
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
