#!/usr/bin/env bash
# run_faults.sh MEMSLEUTH - the program under memsleuth meets hard times: 200
# forked children, a daemon that closes every descriptor, a report to a full
# disk, SIGKILL, an address-space limit too small for the agent's tables, the
# trace's disk filling up (a 64 KiB tmpfs), output folders that cannot be
# written (a read-only bind mount, a file in place of a folder), 16 threads
# freeing each other's blocks, posix_spawn and vfork, allocating signal
# handlers, a program that clears its environment, dlopen/dlclose 1000 times,
# a main thread that ends with pthread_exit while its threads run on.
# The program must behave as without memsleuth (same stdout, same status) and
# the leak figures must be exact; memsleuth says what it could not do once.
# The mounts need root: those cases print "skip" lines otherwise.
# Prints "ok/not ok/skip" lines and "N passed, M failed".
set -u
MS=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/ms-faults.XXXXXX)
cleanup() {
    for m in "$T/tfs" "$T/ro"; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 1   # trace files of the runs land here
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() {
    n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"
    [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -20
}
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi; }
# ---- most cases compare with a run without memsleuth: same stdout, same status
skip() { echo "skip - $1"; }
# native PROG ARGS...: stdout to $T/n.out, status to $T/n.st
native() { "$@" >"$T/n.out" 2>/dev/null; echo $? >"$T/n.st"; }
# same ST: the traced run's stdout ($T/out) and status ST are the native ones
same() { [ "$1" -eq "$(cat "$T/n.st")" ] && cmp -s "$T/n.out" "$T/out"; }
nlines() { grep -c '^memsleuth:' "$1"; }
for p in fork200 daemon sleeper killme churn ring16 spawner sigmalloc noenv dlloop mainexit; do
    gcc -O0 -g -o "$T/$p" "$HERE/progs/$p.c" -lpthread -ldl || exit 1
done
gcc -O0 -g -shared -fPIC -o "$T/libdlloop.so" "$HERE/progs/dlloop_lib.c" || exit 1
gcc -O0 -g -o "$T/leaks" "$HERE/../e2e/progs/leaks.c" || exit 1

# 200 children: 201 reports, each child with its own leak
native "$T/fork200"
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
check "200 forked children: same output and status, 201 reports, each child's own leak" $(same $st && grep -q "children ok: 200" "$T/out" && grep -q "fork ok" "$T/j" && echo 0 || echo 1) "$T/j"

# a daemon: setsid, double fork, closes every descriptor; its report still lands in the log file
rm -f "$T/marker"
"$MS" run --log-file="$T/d.%p.log" -- "$T/daemon" "$T/marker" 2>"$T/e"; st=$?
for _ in $(seq 1 100); do [ -s "$T/marker" ] && break; sleep 0.1; done
sleep 0.5
check "daemon that closes all descriptors: works, reports its 321 lost bytes" $([ $st -eq 0 ] && [ -s "$T/marker" ] && grep -qs "definitely lost: 321 bytes in 1 blocks" "$T"/d.*.log && echo 0 || echo 1) "$T/e"
# the same daemon natively: same status, same marker; under memsleuth with
# relative paths (the daemon changes to /): its log and its whole trace still
# land here (the paths are made absolute at the start; the trace, closed by
# the daemon, is reopened by that name)
mkdir -p "$T/dn" && rm -f "$T/dn"/*
"$T/daemon" "$T/dn/marker.native"; nst=$?
for _ in $(seq 1 100); do [ -s "$T/dn/marker.native" ] && break; sleep 0.1; done
(cd "$T/dn" && "$MS" run --log-file=d.%p.log --trace=d.%p.trace -- "$T/daemon" "$T/dn/marker" 2>"$T/e"); st=$?
for _ in $(seq 1 100); do [ -s "$T/dn/marker" ] && break; sleep 0.1; done
sleep 0.5
python3 - "$T/dn" "$MS" <<'PY' >"$T/j" 2>&1
import glob, json, subprocess, sys
d, ms = sys.argv[1], sys.argv[2]
traces = sorted(glob.glob(d + "/d.*.trace"))
assert len(traces) == 3, traces
procs = []
for t in traces:
    r = subprocess.run([ms, "report", "--format=json", t], capture_output=True, text=True)
    assert r.returncode == 0, (t, r.returncode, r.stderr)
    procs += json.loads(r.stdout)["processes"]
assert all(p["complete"] for p in procs), [(p["pid"], p["complete"]) for p in procs]
daemon = [p for p in procs if p["end"]["how"] == "exit" and p["leaks"] and p["leaks"]["definitely_lost"]["bytes"] == 321]
assert len(daemon) == 1, [(p["pid"], p["end"], p["leaks"]) for p in procs]
loop = [s for s in daemon[0]["top_allocations"] if s["allocations"] == 1000 and s["exit_live_blocks"] == 0]
assert loop and loop[0]["allocated_bytes"] == sum(64 + i for i in range(1000)), daemon[0]["top_allocations"][:2]
assert len(glob.glob(d + "/d.*.log")) == 3, glob.glob(d + "/d.*.log")
print("daemon trace ok")
PY
check "daemon with relative log and trace paths: same status and marker as natively, its whole trace and log land here" \
    $([ $st -eq $nst ] && cmp -s "$T/dn/marker" "$T/dn/marker.native" && grep -q "daemon trace ok" "$T/j" &&
      grep -qs "definitely lost: 321 bytes in 1 blocks" "$T"/dn/d.*.log && [ ! -s "$T/e" ] && echo 0 || echo 1) "$T/j"

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

# SIGKILL mid-run: the trace is readable up to the writer's last flush (every
# 50 ms): 0.4 s after "ready" it holds every allocation made before, exactly
rm -f "$T/k.trace"
"$MS" run --trace="$T/k.trace" -- "$T/killme" >"$T/out" 2>"$T/e" &
l=$!
for _ in $(seq 1 100); do grep -q ready "$T/out" 2>/dev/null && break; sleep 0.1; done
sleep 0.4
pkill -KILL -P $l killme
wait $l; st=$?
"$MS" report --format=json "$T/k.trace" >"$T/k.json" 2>"$T/ke"; rst=$?
python3 - "$T/k.json" <<'PY' >"$T/j" 2>&1
import json, sys
p = json.load(open(sys.argv[1]))["processes"]
assert len(p) == 1 and p[0]["complete"] is False and p[0]["end"] is None, p[0]["complete"]
p = p[0]
keep = [s for s in p["top_peak"] if s["stack"] and s["stack"][0]["function"] == "keep_before_kill"]
assert keep and (keep[0]["allocations"], keep[0]["exit_live_bytes"], keep[0]["exit_live_blocks"]) == (50, 5000, 50), keep
churn = [s for s in p["top_allocations"] if s["allocations"] == 20000]
assert churn and churn[0]["allocated_bytes"] == 20000 * 16 + sum(i % 64 for i in range(20000)) and churn[0]["exit_live_blocks"] == 0, churn
assert churn[0]["stack"][0]["function"] == "main" and churn[0]["stack"][0]["file"] == "killme.c", churn[0]["stack"][0]
print("killed trace ok")
PY
check "SIGKILL mid-run: status 137, the trace readable (report exit 0): 50 kept blocks and 20,000 freed, exactly" \
    $([ $st -eq 137 ] && [ $rst -eq 0 ] && grep -q "killed trace ok" "$T/j" && echo 0 || echo 1) "$T/j"

# a statically linked program: one line saying it cannot be traced, then it
# runs as without memsleuth (same output, same status 7)
if gcc -static -O0 -g -o "$T/leaks-static" "$HERE/../e2e/progs/leaks.c" 2>/dev/null; then
    native "$T/leaks-static"
    "$MS" run --json="$T/st.json" -- "$T/leaks-static" >"$T/out" 2>"$T/e"; st=$?
    check "statically linked program: one line, runs untraced with the same output and status" \
        $(same $st && [ "$(wc -l <"$T/e")" -eq 1 ] && grep -q "^memsleuth: '$T/leaks-static' is statically linked: it cannot be traced" "$T/e" &&
          [ ! -e "$T/st.json" ] && echo 0 || echo 1) "$T/e"
    # ... started by a traced program (exec from a shell, posix_spawnp through
    # PATH from env): that program's agent says it, once per program
    native sh -c "exec '$T/leaks-static'"
    "$MS" run --json="$T/st2.%p.json" -- sh -c "exec '$T/leaks-static'" >"$T/out" 2>"$T/e"; st=$?
    check "statically linked program exec'd by a traced shell: one line from the shell's agent, same output and status" \
        $(same $st && [ "$(grep -c "^memsleuth: '$T/leaks-static' is statically linked: it cannot be traced" "$T/e")" -eq 1 ] &&
          [ "$(grep -c . "$T/e")" -eq 1 ] && echo 0 || echo 1) "$T/e"
    native env PATH="$T:$PATH" leaks-static
    "$MS" run -- env PATH="$T:$PATH" leaks-static >"$T/out" 2>"$T/e"; st=$?
    check "statically linked program found in PATH by a traced env (execvp): said once, same output and status" \
        $(same $st && [ "$(grep -c "^memsleuth: '$T/leaks-static' is statically linked: it cannot be traced" "$T/e")" -eq 1 ] &&
          echo 0 || echo 1) "$T/e"
else
    skip "statically linked program: no static libc (libc6-dev's libc.a)"
fi

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


# jcheck GLOB SPEC: the JSON reports GLOB hold exactly the processes SPEC
# names (python literal: list of {"exe": suffix, "parent": index or None,
# "definitely_lost": [bytes, blocks], "others_zero": bool, "frame": function
# every definite record's stack must name, "status": exit status})
cat >"$T/jcheck.py" <<'PY'
import glob, json, sys
reps = [json.load(open(f)) for f in sorted(glob.glob(sys.argv[1]))]
spec = eval(sys.argv[2])
assert len(reps) == len(spec), ("reports", len(reps), "expected", len(spec))
byexe = {}
for s in spec:
    cands = [r for r in reps if r["exe"].endswith(s["exe"]) and id(r) not in byexe.values()]
    assert cands, ("no report for", s["exe"], [r["exe"] for r in reps])
    byexe[id(s)] = id(cands[0])
    r = cands[0]
    s["_r"] = r
for s in spec:
    r = s["_r"]
    sm = r["summary"]
    assert [sm["definitely_lost"]["bytes"], sm["definitely_lost"]["blocks"]] == s["definitely_lost"], (s["exe"], sm)
    if s.get("others_zero", True):
        for k in ("indirectly_lost", "possibly_lost", "still_reachable"):
            assert sm[k]["blocks"] == 0, (s["exe"], k, sm[k])
    if "status" in s:
        assert r["exit_status"] == s["status"], (s["exe"], r["exit_status"])
    if s.get("parent") is not None:
        assert r["ppid"] == spec[s["parent"]]["_r"]["pid"], (s["exe"], "ppid", r["ppid"])
    if "frame" in s:
        recs = [x for x in r["records"] if x["kind"] == "definitely_lost"]
        assert recs and sum(x["blocks"] for x in recs) == s["definitely_lost"][1], recs
        for x in recs:
            assert x["stack"], ("a definitely lost record of %d blocks has no stack at all" % x["blocks"])
            assert any(f["function"] == s["frame"] for f in x["stack"]), ("stack without", s["frame"], x["stack"])
print("json ok")
PY
jcheck() { python3 "$T/jcheck.py" "$1" "$2" >"$T/j" 2>&1 && grep -q "json ok" "$T/j"; }

# the trace's disk fills up (64 KiB tmpfs): the program runs on to its end, one
# line says so, the leak report is exact, the trace so far is readable
mkdir -p "$T/tfs"
if mount -t tmpfs -o size=64k memsleuth-faults "$T/tfs" 2>/dev/null; then
    native "$T/churn"
    "$MS" run --trace="$T/tfs/t.%p.trace" -- "$T/churn" >"$T/out" 2>"$T/e"; st=$?
    tr=$(ls "$T"/tfs/t.*.trace 2>/dev/null | head -1)
    check "trace disk full: program unaffected (stdout, status 5), one line about it, exact leak" \
        $(same $st && [ "$(nlines "$T/e")" -eq 1 ] && grep -q "^memsleuth: the trace .*No space left" "$T/e" &&
          grep -q "definitely lost: 3,333 bytes in 3 blocks" "$T/e" && grep -q "still reachable: 0 bytes in 0 blocks" "$T/e" &&
          echo 0 || echo 1) "$T/e"
    "$MS" report "$tr" >"$T/r" 2>"$T/re"; rst=$?
    check "trace disk full: the trace up to the cut is readable by memsleuth report" \
        $([ -n "$tr" ] && [ $rst -eq 0 ] && grep -q "pick (churn.c:" "$T/r" && grep -q "trace cut off" "$T/re" &&
          echo 0 || echo 1) "$T/re"
    umount "$T/tfs"
else
    skip "trace disk full: cannot mount a tmpfs (not root?)"
fi

# output folders that cannot be written: a read-only bind mount, and a file
# standing where a folder should be (root may write anywhere else)
dirs=("$T/afile")
: >"$T/afile"
mkdir -p "$T/ro"
if mount --bind "$T/ro" "$T/ro" 2>/dev/null && mount -o remount,bind,ro "$T/ro" 2>/dev/null; then
    dirs+=("$T/ro")
else
    skip "read-only output folder: cannot make a read-only bind mount (not root?)"
fi
native "$T/leaks"
for d in "${dirs[@]}"; do
    w=$(basename "$d")
    for o in "--json=$d/x.json" "--trace=$d/t.trace" "--log-file=$d/x.%p.log"; do
        "$MS" run "$o" -- "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
        check "unwritable output ($w) ${o%%=*}: program unaffected, one line, report on stderr" \
            $(same $st && [ "$(nlines "$T/e")" -eq 1 ] && grep -q "$d/" "$T/e" &&
              grep -q "definitely lost: 12,545 bytes in 2 blocks" "$T/e" && echo 0 || echo 1) "$T/e"
    done
    # one log file shared by every process is opened by the launcher first: a
    # usage error as with valgrind, exit 2 before the program starts
    "$MS" run "--log-file=$d/x.log" -- "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
    check "unwritable output ($w) --log-file without %p: exit 2, one line, program not started" \
        $([ $st -eq 2 ] && [ "$(wc -l <"$T/e")" -eq 1 ] && grep -q "$d/x.log" "$T/e" && [ ! -s "$T/out" ] &&
          echo 0 || echo 1) "$T/e"
done
mountpoint -q "$T/ro" && umount "$T/ro"

# 16 threads (8 producers, 8 consumers) pass 800,000 blocks through a ring:
# each freed on another thread than it was allocated on; each thread drops one
native "$T/ring16"
rm -f "$T"/r16.*.json
timeout 300 "$MS" run --json="$T/r16.%p.json" -- "$T/ring16" >"$T/out" 2>"$T/e"; st=$?
check "16 threads freeing each other's blocks: same output and status, exactly 1,720 bytes in 16 blocks lost" \
    $(same $st && jcheck "$T/r16.*.json" '[{"exe": "/ring16", "definitely_lost": [1720, 16], "frame": "drop", "status": 3}]' &&
      echo 0 || echo 1) "$T/j"

# posix_spawn and vfork+exec of a program that leaks: three reports
native "$T/spawner" "$T/leaks"
rm -f "$T"/sp.*.json
timeout 120 "$MS" run --json="$T/sp.%p.json" -- "$T/spawner" "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
check "posix_spawn and vfork: same output and status, the parent and both children reported exactly" \
    $(same $st && jcheck "$T/sp.*.json" '[{"exe": "/spawner", "definitely_lost": [55, 1], "status": 6},
        {"exe": "/leaks", "parent": 0, "definitely_lost": [12545, 2], "others_zero": False, "status": 7},
        {"exe": "/leaks", "parent": 0, "definitely_lost": [12545, 2], "others_zero": False, "status": 7}]' &&
      echo 0 || echo 1) "$T/j"

# a SIGALRM handler allocates and frees (and drops 64 blocks) while the main
# thread loops in malloc/free: no deadlock, every dropped block counted
native timeout 60 "$T/sigmalloc"
rm -f "$T"/sig.*.json
timeout 120 "$MS" run --json="$T/sig.%p.json" -- "$T/sigmalloc" >"$T/out" 2>"$T/e"; st=$?
check "allocating signal handler over a malloc loop: no deadlock, same output, exactly 3,072 bytes in 64 blocks" \
    $(same $st && jcheck "$T/sig.*.json" '[{"exe": "/sigmalloc", "definitely_lost": [3072, 64], "frame": "on_alarm", "status": 4}]' &&
      echo 0 || echo 1) "$T/j"

# the same at a signal every 50 us (3000 signals): under memsleuth a handler
# run can cost more than the period, so the interrupted hook barely
# progresses and its queue of deferred operations can fill up: no deadlock,
# same output and status, and either the exact figures or one line saying how
# many operations could not be recorded (never a silent difference)
native timeout 60 "$T/sigmalloc" 50 3000
rm -f "$T"/sig.*.json
timeout 120 "$MS" run --json="$T/sig.%p.json" -- "$T/sigmalloc" 50 3000 >"$T/out" 2>"$T/e"; st=$?
check "allocating signal handler every 50 us: no deadlock, same output; exact figures or the shortfall said once" \
    $(same $st && { jcheck "$T/sig.*.json" '[{"exe": "/sigmalloc", "definitely_lost": [3072, 64], "frame": "on_alarm", "status": 4}]' ||
      [ "$(grep -c 'made by signal handlers could not be recorded' "$T/e")" -eq 1 ]; } &&
      echo 0 || echo 1) "$T/e"

# clearenv() then fork+exec: the agent puts LD_PRELOAD and MEMSLEUTH_OPTIONS
# back into the children's environment (execv with the empty environ, execve
# with an explicit empty one), so both children are still followed
native "$T/noenv" "$T/leaks"
rm -f "$T"/ne.*.json
timeout 120 "$MS" run --json="$T/ne.%p.json" -- "$T/noenv" "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
check "clearenv then fork+exec: same output and status, parent and both children reported exactly" \
    $(same $st && jcheck "$T/ne.*.json" '[{"exe": "/noenv", "definitely_lost": [66, 1], "status": 8},
        {"exe": "/leaks", "parent": 0, "definitely_lost": [12545, 2], "others_zero": False, "status": 7},
        {"exe": "/leaks", "parent": 0, "definitely_lost": [12545, 2], "others_zero": False, "status": 7}]' &&
      echo 0 || echo 1) "$T/j"

# what the children of a cleared environment see: exactly the two variables
# that make them traced (LD_PRELOAD, MEMSLEUTH_OPTIONS), nothing else; the one
# difference from a run without memsleuth (docs/ROBUSTNESS.md)
native "$T/noenv" /usr/bin/env
"$MS" run --trace=no -- "$T/noenv" /usr/bin/env >"$T/out" 2>"$T/e"; st=$?
check "clearenv: the children's environment holds only LD_PRELOAD and MEMSLEUTH_OPTIONS" \
    $([ $st -eq "$(cat "$T/n.st")" ] && [ "$(grep -c '^LD_PRELOAD=.*libmemsleuth_agent' "$T/out")" -eq 2 ] &&
      [ "$(grep -c '^MEMSLEUTH_OPTIONS=--trace=no$' "$T/out")" -eq 2 ] &&
      cmp -s "$T/n.out" <(grep -v -e '^LD_PRELOAD=' -e '^MEMSLEUTH_OPTIONS=' "$T/out") && echo 0 || echo 1) "$T/out"

# dlopen/dlclose 1000 times while another thread allocates; one block dropped
# per load, its stack in the unloaded library still named
native "$T/dlloop" "$T/libdlloop.so"
rm -f "$T"/dl.*.json
timeout 300 "$MS" run --json="$T/dl.%p.json" -- "$T/dlloop" "$T/libdlloop.so" >"$T/out" 2>"$T/e"; st=$?
check "dlopen/dlclose x1000 with a busy thread: same output, 77,000 bytes in 1,000 blocks, stacks name lib_leak_once" \
    $(same $st && jcheck "$T/dl.*.json" '[{"exe": "/dlloop", "definitely_lost": [77000, 1000], "frame": "lib_leak_once", "status": 9}]' &&
      echo 0 || echo 1) "$T/j"

# main ends with pthread_exit, three threads run on: glibc ends the process
# when the last one returns (the agent's thread must not keep it alive); the
# report is made from that thread while main is a zombie, whose /proc/self
# shows no maps, exe or fds: stacks with file:line, the globals still roots
native "$T/mainexit"
timeout -s KILL 60 "$MS" run -- "$T/mainexit" >"$T/out" 2>"$T/e"; st=$?
check "main thread ends with pthread_exit: the process exits when its threads are done, same output and status" \
    $(same $st && echo 0 || echo 1) "$T/e"
check "main thread ends with pthread_exit: main's 17 and the threads' 3 x 40 bytes lost with file:line, the globals' 72 bytes reachable" \
    $(grep -A2 '17 bytes in 1 blocks are definitely lost' "$T/e" | grep -q 'main (mainexit.c:' &&
      grep -A2 '120 bytes in 3 blocks are definitely lost' "$T/e" | grep -q 'worker (mainexit.c:' &&
      grep -q 'still reachable: 72 bytes in 3 blocks' "$T/e" && echo 0 || echo 1) "$T/e"
# a snapshot while main is a zombie, with ptrace and with the signal stop (a
# zombie never answers the signal: it is not waited for)
for how in ptrace signal; do
    rm -f "$T/go" "$T/go.ready"
    if [ $how = signal ]; then export MEMSLEUTH_TEST_NO_PTRACE=1; fi
    timeout -s KILL 60 "$MS" run -- "$T/mainexit" "$T/go" >"$T/out" 2>"$T/e" & lp=$!
    unset MEMSLEUTH_TEST_NO_PTRACE
    for i in $(seq 300); do [ -e "$T/go.ready" ] && break; sleep 0.1; done
    pid=$(pgrep -P "$(pgrep -P $lp)") # timeout > memsleuth > mainexit (a zombie main has no cmdline)
    timeout 30 "$MS" snapshot "$pid" >"$T/snap" 2>&1; sst=$?
    touch "$T/go"; wait $lp; st=$?
    ms=$(sed -n 's/.*threads paused \([0-9.]*\) ms.*/\1/p' "$T/snap")
    check "snapshot while main is a zombie ($how stop): answered, 137 bytes lost, paused ${ms:-?} ms (< 1000), the program exits with status 0" \
        $([ $sst -eq 0 ] && [ $st -eq 0 ] && grep -q 'definitely lost: 137 bytes in 4 blocks' "$T/snap" &&
          awk -v m="${ms:-99999}" 'BEGIN { exit !(m < 1000) }' && echo 0 || echo 1) "$T/snap"
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
