#!/usr/bin/env bash
# run_faults.sh MEMSLEUTH - the program under memsleuth meets hard times: 200
# forked children, a daemon that closes every descriptor, a report to a full
# disk, SIGKILL, an address-space limit too small for the agent's tables.
# The program must behave as without memsleuth; memsleuth says what it could
# not do once.  Prints "ok/not ok" lines and "N passed, M failed".
set -u
MS=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/ms-faults.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1   # trace files of the runs land here
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() {
    n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"
    [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -20
}
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi; }
for p in fork200 daemon sleeper; do gcc -O0 -g -o "$T/$p" "$HERE/progs/$p.c" || exit 1; done
gcc -O0 -g -o "$T/leaks" "$HERE/../e2e/progs/leaks.c" || exit 1

# 200 children: 201 reports, each child with its own leak
"$MS" run --json="$T/f.%p.json" -- "$T/fork200" >"$T/out" 2>/dev/null; st=$?
python3 - "$T" <<'PY' >"$T/j" 2>&1
import glob, json, sys
reps = [json.load(open(f)) for f in glob.glob(sys.argv[1] + "/f.*.json")]
assert len(reps) == 201, len(reps)
pids = {r["pid"] for r in reps}
top = [r for r in reps if r["ppid"] not in pids]
assert len(top) == 1 and top[0]["summary"]["definitely_lost"] == {"bytes": 7, "blocks": 1}, top
kids = sorted(r["summary"]["definitely_lost"]["bytes"] for r in reps if r["ppid"] == top[0]["pid"])
assert kids == list(range(100, 300)), kids[:5]
print("fork ok")
PY
check "200 forked children: 201 reports, each child's own leak" $([ $st -eq 0 ] && grep -q "children ok: 200" "$T/out" && grep -q "fork ok" "$T/j" && echo 0 || echo 1) "$T/j"

# a daemon: setsid, double fork, closes every descriptor; its report still lands in the log file
rm -f "$T/marker"
"$MS" run --log-file="$T/d.%p.log" -- "$T/daemon" "$T/marker" 2>"$T/e"; st=$?
for _ in $(seq 1 100); do [ -s "$T/marker" ] && break; sleep 0.1; done
sleep 0.5
check "daemon that closes all descriptors: works, reports its 321 lost bytes" $([ $st -eq 0 ] && [ -s "$T/marker" ] && grep -qs "definitely lost: 321 bytes in 1 blocks" "$T"/d.*.log && echo 0 || echo 1) "$T/e"

# the report to a full disk: the program's status is kept, memsleuth says so once
"$MS" run --log-file=/dev/full -- "$T/leaks" >/dev/null 2>"$T/e"; st=$?
check "report to a full disk: status kept, one line about it" $([ $st -eq 7 ] && [ "$(grep -c '^memsleuth:' "$T/e")" -eq 1 ] && grep -q "No space left" "$T/e" && echo 0 || echo 1) "$T/e"
"$MS" run --json=/dev/full -- "$T/leaks" >/dev/null 2>"$T/e"; st=$?
check "JSON to a full disk: status kept, one line about it, text report still there" $([ $st -eq 7 ] && [ "$(grep -c '^memsleuth:' "$T/e")" -eq 1 ] && grep -q "LEAK SUMMARY" "$T/e" && echo 0 || echo 1) "$T/e"

# SIGKILL: no report can be written (no handler runs); nothing hangs, the status says so
"$MS" run -- "$T/sleeper" >"$T/out" 2>"$T/e" &
l=$!
for _ in $(seq 1 100); do grep -q ready "$T/out" 2>/dev/null && break; sleep 0.1; done
pkill -KILL -P $l sleeper
wait $l; st=$?
check "SIGKILL: launcher returns 137 at once" $([ $st -eq 137 ] && echo 0 || echo 1) "$T/e"

# SIGTERM to the launcher is passed on; the program reports and dies of it
"$MS" run -- "$T/sleeper" >"$T/out" 2>"$T/e" &
l=$!
for _ in $(seq 1 100); do grep -q ready "$T/out" 2>/dev/null && break; sleep 0.1; done
kill -TERM $l
wait $l; st=$?
check "SIGTERM to memsleuth reaches the program: report, status 143" $([ $st -eq 143 ] && grep -q "LEAK SUMMARY" "$T/e" && echo 0 || echo 1) "$T/e"

# too little address space for the agent's tables: one line, the program runs untraced
(ulimit -v 400000; "$MS" run -- "$T/leaks" >"$T/out" 2>"$T/e"); st=$?
check "address space too small for the agent: one line, program runs, status kept" $([ $st -eq 7 ] && grep -q "leaks: done" "$T/out" && [ "$(grep -c '^memsleuth:' "$T/e")" -le 1 ] && echo 0 || echo 1) "$T/e"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
