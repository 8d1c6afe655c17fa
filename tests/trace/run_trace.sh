#!/usr/bin/env bash
# run_trace.sh MEMSLEUTH - the agent's trace files, checked by an independent
# decoder (check_trace.py): framing, every record, per-address consistency;
# threads, fork (inherited blocks), exec, SIGKILL, a daemon that closes every
# descriptor, --trace=no, an unwritable directory.
set -u
MS=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
CHK="python3 $HERE/check_trace.py"
T=$(mktemp -d /tmp/ms-trace.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -20; }
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi; }
gcc -O2 -pthread -o tcf "$HERE/../cases/threads_cross_free.c" || exit 1
gcc -O0 -o forkleak "$HERE/../../../shared/conformance/fork_child_leak.c" &&
gcc -O0 -o execself "$HERE/../../../shared/conformance/exec_after_leak.c" &&
gcc -O0 -o daemon "$HERE/../faults/progs/daemon.c" && gcc -O0 -o sleeper "$HERE/../faults/progs/sleeper.c" &&
gcc -O0 -o sigterm "$HERE/../cases/sigterm_default.c" || { echo "build failed"; exit 1; }

"$MS" run --log-file=/dev/null -- ./tcf; $CHK memsleuth.tcf.*.trace --expect-end >c.out 2>&1
check "16 threads, 1.6M events: every record decodes, per-address order holds, END" $? c.out
# 16 threads x 100,000 allocations + 16 leaked blocks, and glibc's few of its own
a=$(sed -n 's/.*ALLOC=\([0-9]*\).*/\1/p' c.out)
[ "${a:-0}" -ge 1600016 ] && [ "${a:-0}" -le 1600100 ] && grep -q "LEAK=" c.out && grep -q "live_blocks=16 live_bytes=1456" c.out
check "every allocation recorded, the exit verdicts too" $? c.out

"$MS" run --log-file=/dev/null -- ./forkleak; ls memsleuth.forkleak.*.trace >l.out 2>&1
check "fork: parent and child each write a trace" $([ "$(wc -l <l.out)" -eq 2 ] && echo 0 || echo 1) l.out
okc=0
for f in memsleuth.forkleak.*.trace; do $CHK "$f" --expect-end >c.out 2>&1 || okc=1; grep -q "FORK=1\|INHERITED=1" c.out || okc=1; done
check "fork: both consistent; the parent records FORK, the child its INHERITED blocks" $okc c.out

"$MS" run --log-file=/dev/null -- ./execself; ls memsleuth.execself.*.trace* >l.out 2>&1
check "exec of itself: a second file (.1), the first ends with EXEC" $([ "$(wc -l <l.out)" -eq 2 ] && $CHK "$(head -1 l.out)" 2>&1 | grep -q "EXEC=1" && echo 0 || echo 1) l.out

"$MS" run --log-file=/dev/null -- ./sigterm; $CHK memsleuth.sigterm.*.trace --expect-end >c.out 2>&1
check "a fatal signal: END says how=2 status=143" $(grep -q "end=how=2,status=143" c.out && echo 0 || echo 1) c.out

"$MS" run -- ./sleeper >s.out 2>/dev/null &
l=$!
for _ in $(seq 1 100); do grep -q ready s.out 2>/dev/null && break; sleep 0.1; done
sleep 0.2
pkill -KILL -P $l sleeper; wait $l
$CHK memsleuth.sleeper.*.trace >c.out 2>&1
check "SIGKILL: the trace reads, without END, with the live block" $([ $? -eq 0 ] && grep -q "end=none" c.out && grep -q "live_blocks=[1-9]" c.out && echo 0 || echo 1) c.out

rm -f marker
"$MS" run --log-file=/dev/null --trace="$T/d.%p.trace" -- ./daemon "$T/marker"
for _ in $(seq 1 100); do [ -s marker ] && break; sleep 0.1; done
sleep 0.5
okd=0
for f in d.*.trace; do $CHK "$f" >>c2.out 2>&1 || okd=1; done
check "a daemon closing every descriptor: its trace stays whole, its files untouched" $([ $okd -eq 0 ] && [ "$(cat marker)" = done ] && echo 0 || echo 1) c2.out

"$MS" run --log-file=/dev/null --trace=no -- ./tcf; ls memsleuth.tcf.*.trace | wc -l >c.out
check "--trace=no writes no file" $([ "$(cat c.out)" -eq 1 ] && echo 0 || echo 1) c.out
"$MS" run --log-file=/dev/null --trace=/proc/nonexistent/x.trace -- ./forkleak 2>e.out; st=$?
check "unwritable trace path: one line, the program runs" $([ $st -eq 0 ] && [ "$(grep -c '^memsleuth:' e.out)" -ge 1 ] && grep -q "cannot create the trace" e.out && echo 0 || echo 1) e.out

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
