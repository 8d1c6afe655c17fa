#!/usr/bin/env bash
# run_e2e.sh MEMSLEUTH BUILD_DIR - end-to-end checks of `memsleuth run` on real
# programs: the valgrind text layout, every option, exit codes, free errors,
# suppressions, descriptors, a static binary, real Debian programs, the demo.
# Prints "ok N - ..." / "not ok N - ..." lines, then "N passed, M failed".
set -u
MS=$(realpath "$1")
BUILD=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/ms-e2e.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1   # trace files of the runs land here
pass=0
fail=0
n=0

ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() {
    n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"
    [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | head -40
}
check() { # check DESC COND-EXIT-STATUS [LOG]
    if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi
}
has() { grep -qE -- "$2" "$1"; }

cc() { gcc -O0 -g -o "$T/$1" "$HERE/progs/$1.c" "${@:2}"; }
cxx() { g++ -O0 -g -Wno-mismatched-new-delete -o "$T/$1" "$HERE/progs/$1.cc" "${@:2}"; }
cc leaks && cc clean && cc errors && cc fds && cc own_alloc && cc errno_keep && cc stale && cxx mismatch && cxx dead_copies ||
    { echo "building the test programs failed"; exit 1; }

# ---- usage errors: one line, exit 2 (127 for a program that cannot run)
"$MS" run --frobnicate -- "$T/clean" >"$T/o" 2>"$T/e"; st=$?
check "unknown option: exit 2" $([ $st -eq 2 ] && echo 0 || echo 1)
check "unknown option: one line naming it" $([ "$(wc -l <"$T/e")" -eq 1 ] && has "$T/e" "frobnicate" && echo 0 || echo 1) "$T/e"
"$MS" run --leak-check=maybe -- "$T/clean" 2>"$T/e"; st=$?
check "bad value: exit 2, one line" $([ $st -eq 2 ] && [ "$(wc -l <"$T/e")" -eq 1 ] && has "$T/e" "maybe" && echo 0 || echo 1) "$T/e"
"$MS" run "$(printf -- '--bad\nline')" -- "$T/clean" 2>"$T/e"; st=$?
check "an option with a newline in it: still one line" $([ $st -eq 2 ] && [ "$(wc -l <"$T/e")" -eq 1 ] && echo 0 || echo 1) "$T/e"
"$MS" run 2>"$T/e"; st=$?
check "no program: exit 2" $([ $st -eq 2 ] && [ "$(wc -l <"$T/e")" -eq 1 ] && echo 0 || echo 1) "$T/e"
"$MS" run -- /nonexistent/prog 2>"$T/e"; st=$?
check "missing program: exit 127, one line" $([ $st -eq 127 ] && [ "$(wc -l <"$T/e")" -eq 1 ] && echo 0 || echo 1) "$T/e"
"$MS" run --suppressions=/nonexistent.supp -- "$T/clean" 2>"$T/e"; st=$?
check "missing suppressions file: exit 2, one line" $([ $st -eq 2 ] && [ "$(wc -l <"$T/e")" -eq 1 ] && echo 0 || echo 1) "$T/e"
"$MS" frob 2>"$T/e"; st=$?
check "unknown command: exit 2" $([ $st -eq 2 ] && echo 0 || echo 1) "$T/e"
"$MS" run --help >"$T/o"; st=$?
check "--help reads like a man page" $([ $st -eq 0 ] && has "$T/o" "^SYNOPSIS" && has "$T/o" "^EXIT STATUS" && has "$T/o" "--show-leak-kinds" && echo 0 || echo 1) "$T/o"

# ---- the text layout (valgrind's), on a program with known leaks
"$MS" run -- "$T/leaks" >"$T/out" 2>"$T/log"; st=$?
check "program exit status passed through (7)" $([ $st -eq 7 ] && echo 0 || echo 1) "$T/log"
check "program stdout untouched" $([ "$(cat "$T/out")" = "leaks: done" ] && echo 0 || echo 1) "$T/out"
P='==[0-9]+=='
check "HEAP SUMMARY block" $(has "$T/log" "^$P HEAP SUMMARY:$" && has "$T/log" "^$P     in use at exit: [0-9,]+ bytes in [0-9,]+ blocks$" && has "$T/log" "^$P   total heap usage: [0-9,]+ allocs, [0-9,]+ frees, [0-9,]+ bytes allocated$" && echo 0 || echo 1) "$T/log"
check "definite record with direct/indirect split" $(has "$T/log" "^$P 1,000 \(200 direct, 800 indirect\) bytes in 1 blocks are definitely lost in loss record [0-9]+ of [0-9]+$" && echo 0 || echo 1) "$T/log"
check "plain definite record with thousands separators" $(has "$T/log" "^$P 12,345 bytes in 1 blocks are definitely lost in loss record [0-9]+ of [0-9]+$" && echo 0 || echo 1) "$T/log"
check "'at' line names the allocation function" $(has "$T/log" "^$P    at 0x[0-9A-F]+: malloc \(in .*libmemsleuth_agent.so\)$" && echo 0 || echo 1) "$T/log"
check "'by' lines with function (file:line)" $(has "$T/log" "^$P    by 0x[0-9A-F]+: make_tree \(leaks.c:[0-9]+\)$" && has "$T/log" "^$P    by 0x[0-9A-F]+: main \(leaks.c:[0-9]+\)$" && echo 0 || echo 1) "$T/log"
check "stacks end at main, as valgrind's (--show-below-main=no): malloc, big_leak, main" $(has "$T/log" "^$P    by 0x[0-9A-F]+: main \(leaks.c:[0-9]+\)$" && ! has "$T/log" "__libc_start|: _start |below main" && grep -A4 '12,345 bytes in 1 blocks are definitely' "$T/log" | tail -2 | tr '\n' '|' | grep -qE "^$P    by 0x[0-9A-F]+: main \(leaks.c:[0-9]+\)\|$P \|$" && echo 0 || echo 1) "$T/log"
gcc -O0 -o "$T/leaks_nog" "$HERE/progs/leaks.c"
"$MS" run --trace=no -- "$T/leaks_nog" >/dev/null 2>"$T/log2"
check "frames without line info name their module" $(has "$T/log2" "^$P    by 0x[0-9A-F]+: big_leak \(in $T/leaks_nog\)$" && has "$T/log2" "^$P    by 0x[0-9A-F]+: main \(in $T/leaks_nog\)$" && echo 0 || echo 1) "$T/log2"
check "possibly lost shown by default" $(has "$T/log" "bytes in 1 blocks are possibly lost" && echo 0 || echo 1) "$T/log"
check "reachable and indirect not shown by default" $(! has "$T/log" "are still reachable in" && ! has "$T/log" "are indirectly lost in" && has "$T/log" "To see them, rerun with: --leak-check=full --show-leak-kinds=all" && echo 0 || echo 1) "$T/log"
check "LEAK SUMMARY block" $(has "$T/log" "^$P    definitely lost: 12,345\+?.* bytes" || true; has "$T/log" "^$P LEAK SUMMARY:$" && has "$T/log" "^$P    definitely lost: 12,545 bytes in 2 blocks$" && has "$T/log" "^$P    indirectly lost: 800 bytes in 4 blocks$" && has "$T/log" "^$P      possibly lost: 300 bytes in 1 blocks$" && has "$T/log" "^$P    still reachable: 500 bytes in 1 blocks$" && has "$T/log" "^$P         suppressed: 0 bytes in 0 blocks$" && echo 0 || echo 1) "$T/log"
check "ERROR SUMMARY counts loss records of the error kinds" $(has "$T/log" "^$P ERROR SUMMARY: 3 errors from 3 contexts" && echo 0 || echo 1) "$T/log"

"$MS" run --show-leak-kinds=all -- "$T/leaks" >/dev/null 2>"$T/log"
check "--show-leak-kinds=all shows indirect and reachable records" $(has "$T/log" "800 bytes in 4 blocks are indirectly lost" && has "$T/log" "500 bytes in 1 blocks are still reachable" && echo 0 || echo 1) "$T/log"
"$MS" run --show-leak-kinds=definite -- "$T/leaks" >/dev/null 2>"$T/log"
check "--show-leak-kinds=definite hides possible" $(! has "$T/log" "are possibly lost in" && has "$T/log" "are definitely lost in" && echo 0 || echo 1) "$T/log"
"$MS" run --leak-check=summary -- "$T/leaks" >/dev/null 2>"$T/log"
check "--leak-check=summary: summary only" $(! has "$T/log" "loss record" && has "$T/log" "LEAK SUMMARY" && has "$T/log" "Rerun with --leak-check=full" && echo 0 || echo 1) "$T/log"
"$MS" run --leak-check=no -- "$T/leaks" >/dev/null 2>"$T/log"
check "--leak-check=no: no leak report" $(! has "$T/log" "LEAK SUMMARY" && ! has "$T/log" "loss record" && echo 0 || echo 1) "$T/log"
# --num-callers counts the allocation function's line, as valgrind's does
"$MS" run --num-callers=2 -- "$T/leaks" >/dev/null 2>"$T/log"
check "--num-callers=2 keeps one caller frame" $(! has "$T/log" "by 0x[0-9A-F]+: make_tree" && has "$T/log" "by 0x[0-9A-F]+: mk_node" && [ "$(grep -c 'by 0x' "$T/log")" -eq "$(grep -c 'in loss record' "$T/log")" ] && echo 0 || echo 1) "$T/log"
"$MS" run --num-callers=1 -- "$T/leaks" >/dev/null 2>"$T/log"
check "--num-callers=1: the allocation function's line alone, malloc and calloc blocks in records of their own" $(! has "$T/log" "by 0x" && ! has "$T/log" "stack unknown" && [ "$(grep -c ' at 0x' "$T/log")" -eq "$(grep -c 'in loss record' "$T/log")" ] && has "$T/log" "12,345 bytes in 1 blocks are definitely lost" && has "$T/log" "1,000 \(200 direct, 800 indirect\) bytes in 1 blocks are definitely lost" && echo 0 || echo 1) "$T/log"

# ---- the frame lines against valgrind's on the same program (not PIE: the
# same addresses): as many lines per record for each --num-callers, every
# "by" line the same text (the caller's address is the return address - 1),
# the "at" line at the agent's own allocation function
if command -v valgrind >/dev/null; then
    gcc -O0 -g -no-pie -fno-pie -o "$T/vgdepth" "$HERE/progs/vgdepth.c"
    for nc in 1 2 3 5 12; do
        valgrind --leak-check=full --num-callers=$nc "$T/vgdepth" >/dev/null 2>"$T/vgl.vg.$nc.log"
        "$MS" run --trace=no --num-callers=$nc -- "$T/vgdepth" >/dev/null 2>"$T/vgl.ms.$nc.log"
        python3 "$HERE/vglayout.py" "$T/vgl.ms.$nc.log" "$T/vgl.vg.$nc.log" "$BUILD/libmemsleuth_agent.so" >"$T/vgl.out.$nc" 2>&1
        check "--num-callers=$nc: the loss records' frame lines are valgrind's (count, caller addresses, functions, lines)" $? "$T/vgl.out.$nc"
    done
else
    echo "skip - the frame lines against valgrind's (valgrind not installed)"
fi

# ---- threads running at exit, threads joined before it: the joined threads'
# cached TLS blocks (glibc's stack cache) are what valgrind's __libc_freeres
# frees; the agent cannot run freeres with threads running and leaves them out
gcc -O0 -g -pthread -o "$T/thread_cache" "$HERE/progs/thread_cache.c"
"$MS" run --trace=no -- "$T/thread_cache" >/dev/null 2>"$T/tc.log"; st=$?
check "threads running at exit: the joined threads' cached TLS blocks are not lost (77 bytes definitely lost, 4 frees counted as freeres')" $([ $st -eq 0 ] && has "$T/tc.log" "^$P    definitely lost: 77 bytes in 1 blocks$" && has "$T/tc.log" "^$P   total heap usage: 9 allocs, 4 frees, " && ! has "$T/tc.log" "allocate_dtv" && echo 0 || echo 1) "$T/tc.log"
"$MS" run --trace=no --run-libc-freeres=no -- "$T/thread_cache" >/dev/null 2>"$T/tc2.log"
check "--run-libc-freeres=no: no frees counted for it" $(has "$T/tc2.log" "^$P   total heap usage: 9 allocs, 0 frees, " && echo 0 || echo 1) "$T/tc2.log"
if command -v valgrind >/dev/null; then
    valgrind --leak-check=full "$T/thread_cache" >/dev/null 2>"$T/tc.vg.log"
    sumline() { grep -oE "(definitely lost: .*|total heap usage: [0-9,]+ allocs, [0-9,]+ frees)" "$1"; }
    check "threads running at exit: definitely lost and the alloc/free counts as valgrind's" $([ -n "$(sumline "$T/tc.vg.log")" ] && [ "$(sumline "$T/tc.log")" = "$(sumline "$T/tc.vg.log")" ] && echo 0 || echo 1) "$T/tc.vg.log"
else
    echo "skip - threads running at exit, against valgrind (valgrind not installed)"
fi

# ---- exit codes for CI
"$MS" run --error-exitcode=42 -- "$T/leaks" >/dev/null 2>&1; st=$?
check "--error-exitcode fires on leaks" $([ $st -eq 42 ] && echo 0 || echo 1)
"$MS" run --error-exitcode=42 -- "$T/clean" >/dev/null 2>&1; st=$?
check "--error-exitcode silent without leaks (status 0)" $([ $st -eq 0 ] && echo 0 || echo 1)
"$MS" run --error-exitcode=42 --errors-for-leak-kinds=indirect -- "$T/leaks" >/dev/null 2>&1; st=$?
check "--errors-for-leak-kinds=indirect still fires" $([ $st -eq 42 ] && echo 0 || echo 1)
"$MS" run --error-exitcode=42 --errors-for-leak-kinds=none -- "$T/leaks" >/dev/null 2>&1; st=$?
check "--errors-for-leak-kinds=none: program status" $([ $st -eq 7 ] && echo 0 || echo 1)

# ---- files
( cd "$T" && "$MS" run --log-file="$T/ms.%p.log" --json="$T/ms.%p.json" -- "$T/leaks" >/dev/null 2>"$T/e" )
lf=$(ls "$T"/ms.*.log 2>/dev/null | head -1)
check "--log-file with %p names the file by pid, stderr stays clean" $([ -n "$lf" ] && has "$lf" "LEAK SUMMARY" && [ ! -s "$T/e" ] && echo 0 || echo 1) "$T/e"
check "report files are created 0600" $([ -n "$lf" ] && [ "$(stat -c %a "$lf")" = 600 ] && echo 0 || echo 1)
jf=$(ls "$T"/ms.*.json 2>/dev/null | head -1)
python3 - "$jf" <<'EOF' >"$T/j" 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
assert r["tool"] == "memsleuth" and r["exit_status"] == 7, r
assert s["definitely_lost"] == {"bytes": 12545, "blocks": 2}, s
assert s["indirectly_lost"] == {"bytes": 800, "blocks": 4}, s
assert s["possibly_lost"] == {"bytes": 300, "blocks": 1}, s
assert s["still_reachable"] == {"bytes": 500, "blocks": 1}, s
kinds = sorted(x["kind"] for x in r["records"])
assert kinds == ["definitely_lost", "definitely_lost", "possibly_lost"], kinds
top = [x for x in r["records"] if x["bytes"] == 12345][0]
assert top["stack"][0]["function"] == "big_leak" and top["stack"][0]["file"] == "leaks.c", top["stack"][0]
assert top["stack"][1]["function"] == "main", top["stack"][1]
assert isinstance(top["stack"][0]["line"], int) and top["stack"][0]["line"] > 0
assert r["errors"] == {"invalid_free": 0, "mismatched_free": 0}
print("json ok")
EOF
check "JSON report: schema, summary, records, stack[0] is the caller" $(has "$T/j" "json ok" && echo 0 || echo 1) "$T/j"
mkdir -p "$T/ro" && chmod 500 "$T/ro"
if [ "$(id -u)" = 0 ]; then roarg="/proc/version/x.json"; else roarg="$T/ro/x.json"; fi
"$MS" run --json="$roarg" -- "$T/leaks" >/dev/null 2>"$T/e"; st=$?
check "unwritable JSON path: program runs, status kept, one warning" $([ $st -eq 7 ] && [ "$(grep -c '^memsleuth:' "$T/e")" -eq 1 ] && echo 0 || echo 1) "$T/e"

ln -sf "$T/victim" "$T/link.log" && echo keep >"$T/victim"
"$MS" run --log-file="$T/link.log" -- "$T/clean" >/dev/null 2>"$T/e"; st=$?
check "a symlink planted as the log file is not followed" $([ $st -eq 2 ] && [ "$(cat "$T/victim")" = keep ] && echo 0 || echo 1) "$T/e"
if [ "$(id -u)" = 0 ]; then
    touch "$T/other.json" && chown 65534 "$T/other.json" && echo theirs >"$T/other.json"
    "$MS" run --json="$T/other.json" -- "$T/leaks" >/dev/null 2>"$T/e"; st=$?
    check "another user's file is never overwritten" $([ $st -eq 7 ] && [ "$(cat "$T/other.json")" = theirs ] && grep -q "belongs to another user" "$T/e" && echo 0 || echo 1) "$T/e"
fi

# ---- suppressions
cat >"$T/vg.supp" <<'EOF'
# valgrind format, with wildcards and an ellipsis
{
   tree-is-known
   Memcheck:Leak
   match-leak-kinds: definite,indirect
   fun:calloc
   fun:mk*
   ...
   fun:main
}
EOF
"$MS" run --suppressions="$T/vg.supp" -- "$T/leaks" >/dev/null 2>"$T/log"
check "valgrind suppression removes the tree records and counts them" $(! has "$T/log" "200 direct" && has "$T/log" "suppressed: 1,000 bytes in 5 blocks" && has "$T/log" "used_suppression: 2 tree-is-known" && echo 0 || echo 1) "$T/log"
printf 'leak:big_leak\nleak:make_tree\n' >"$T/lsan.supp"
"$MS" run --suppressions="$T/lsan.supp" -- "$T/leaks" >/dev/null 2>"$T/log"
check "LSan 'leak:' suppressions" $(has "$T/log" "definitely lost: 0 bytes in 0 blocks" && echo 0 || echo 1) "$T/log"
"$MS" run --gen-suppressions=all --show-leak-kinds=all -- "$T/leaks" >/dev/null 2>"$T/log"
awk '/^\{/{p=1} p{print} /^\}/{p=0}' "$T/log" >"$T/gen.supp"
check "--gen-suppressions=all prints one entry per shown record" $([ "$(grep -c '^{' "$T/gen.supp")" -eq 5 ] && has "$T/gen.supp" "Memcheck:Leak" && has "$T/gen.supp" "fun:main" && echo 0 || echo 1) "$T/log"
"$MS" run --suppressions="$T/gen.supp" --show-leak-kinds=all -- "$T/leaks" >/dev/null 2>"$T/log"
check "generated suppressions suppress everything they were made for" $(has "$T/log" "definitely lost: 0 bytes in 0 blocks" && has "$T/log" "possibly lost: 0 bytes in 0 blocks" && has "$T/log" "still reachable: 0 bytes in 0 blocks" && echo 0 || echo 1) "$T/log"

# ---- free errors: reported with their stacks, the program goes on
"$MS" run --json="$T/err.json" -- "$T/errors" >"$T/out" 2>"$T/log"; st=$?
check "invalid and double free: program continues to the end" $([ $st -eq 0 ] && has "$T/out" "errors: survived" && echo 0 || echo 1) "$T/log"
check "invalid free reported with its stack" $(has "$T/log" "Invalid free\(\) / delete / delete\[\] / realloc\(\)" && has "$T/log" "by 0x[0-9A-F]+: main \(errors.c:[0-9]+\)" && echo 0 || echo 1) "$T/log"
check "double free names the block and where it was allocated" $(has "$T/log" "is 0 bytes inside a block of size 40 free'd" && has "$T/log" "Block was alloc'd at" && echo 0 || echo 1) "$T/log"
check "JSON counts invalid frees" $(python3 -c "import json,sys; e=json.load(open('$T/err.json'))['errors']; sys.exit(0 if e['invalid_free']==3 else 1)" && echo 0 || echo 1) "$T/err.json"
"$MS" run --keep-stacktraces=alloc-and-free -- "$T/errors" >/dev/null 2>"$T/log"
check "--keep-stacktraces=alloc-and-free shows where it was first freed" $(has "$T/log" "at 0x[0-9A-F]+: free \(in" && ! has "$T/log" "rerun with --keep-stacktraces" && echo 0 || echo 1) "$T/log"
"$MS" run --json="$T/mm.json" -- "$T/mismatch" >/dev/null 2>"$T/log"; st=$?
check "mismatched new[]/delete, malloc/delete, new/free: 3 reported, no leak" $([ $st -eq 0 ] && [ "$(grep -c 'Mismatched free() / delete / delete \[\]' "$T/log")" -eq 3 ] && python3 -c "import json,sys; r=json.load(open('$T/mm.json')); sys.exit(0 if r['errors']['mismatched_free']==3 and r['summary']['definitely_lost']['blocks']==0 else 1)" && echo 0 || echo 1) "$T/log"

# ---- the program's own behaviour
"$MS" run -- "$T/own_alloc" >"$T/out" 2>"$T/log"; st=$?
check "a program with its own malloc keeps working (and keeps using it)" $([ $st -eq 0 ] && has "$T/out" "own allocator: used" && echo 0 || echo 1) "$T/log"
"$MS" run -- "$T/errno_keep" >"$T/out" 2>"$T/log"; st=$?
check "errno preserved by every hook, ENOMEM passed through" $([ $st -eq 0 ] && has "$T/out" "errno: kept" && echo 0 || echo 1) "$T/out"

JE=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
if [ -e $JE ] && gcc -O0 -g -o "$T/jemalloc_stale" "$HERE/progs/jemalloc_stale.c" $JE; then
    "$MS" run --json="$T/je.json" -- "$T/jemalloc_stale" >/dev/null 2>"$T/log"; st=$?
    check "jemalloc program: freed memory is no root (4000 lost, 3000 reachable)" $([ $st -eq 0 ] && python3 -c "
import json,sys
s=json.load(open('$T/je.json'))['summary']
sys.exit(0 if s['definitely_lost']=={'bytes':4000,'blocks':1} and s['still_reachable']['bytes']>=3000 else 1)" && echo 0 || echo 1) "$T/log"
else
    bad "jemalloc program: libjemalloc2 missing (scripts/deps.sh installs it)"
fi

"$MS" run --malloc-fill=0 --json="$T/stale.json" -- "$T/stale" >/dev/null 2>"$T/log"; st=$?
check "--malloc-fill=0: a stale pointer in never-written bytes keeps nothing alive" $([ $st -eq 0 ] && python3 -c "
import json,sys
s=json.load(open('$T/stale.json'))['summary']
sys.exit(0 if s['definitely_lost']=={'bytes':4000,'blocks':1} and s['still_reachable']=={'bytes':256,'blocks':1} else 1)" && echo 0 || echo 1) "$T/log"
# the hooks leave no copy of the returned pointer in the dead stack (a later
# uninitialized frame would keep a lost block reachable), for every
# allocation function; nothing they wrote survives below the scrubbed span
"$MS" run --trace="$T/dc.trace" -- "$T/dead_copies" >"$T/dc.out" 2>"$T/log"; st=$?
check "no copy of a returned pointer left in the dead stack, 9 allocation calls, trace on" $([ $st -eq 0 ] && [ "$(grep -c ' copies=0 deepest=0 ' "$T/dc.out")" -eq 9 ] && awk '{split($4, d, "="); if (d[2] > 1200) bad = 1} END {exit bad}' "$T/dc.out" && echo 0 || echo 1) "$T/dc.out"
"$MS" run --trace=no -- "$T/dead_copies" >"$T/dc.out" 2>"$T/log"; st=$?
check "no copy of a returned pointer left in the dead stack, trace off" $([ $st -eq 0 ] && [ "$(grep -c ' copies=0 deepest=0 ' "$T/dc.out")" -eq 9 ] && echo 0 || echo 1) "$T/dc.out"
"$MS" run --trace=no --sample-rate=1 -- "$T/dead_copies" >"$T/dc.out" 2>"$T/log"; st=$?
check "no copy left in the dead stack with --sample-rate=1 (the scrub is skipped only for unrecorded calls)" $([ $st -eq 0 ] && [ "$(grep -c ' copies=0 deepest=0 ' "$T/dc.out")" -eq 9 ] && echo 0 || echo 1) "$T/dc.out"
"$MS" run --malloc-fill=ab --free-fill=cd -- "$T/clean" >"$T/out" 2>"$T/log"; st=$?
check "--malloc-fill/--free-fill keep a correct program correct" $([ $st -eq 0 ] && has "$T/out" "clean: done" && echo 0 || echo 1) "$T/log"

# ---- descriptors
"$MS" run --track-fds=yes -- "$T/fds" </dev/null >/dev/null 2>"$T/log"
check "--track-fds=yes lists open descriptors with their open site" $(has "$T/log" "FILE DESCRIPTORS: [0-9]+ open \(3 std\) at exit" && has "$T/log" "Open file descriptor [0-9]+: /dev/null" && has "$T/log" "by 0x[0-9A-F]+: main \(fds.c:[0-9]+\)" && has "$T/log" "<inherited from parent>" && echo 0 || echo 1) "$T/log"
check "closed descriptors are not listed" $([ "$(grep -A1 'Open file descriptor' "$T/log" | grep -c ' at 0x')" -eq 3 ] && echo 0 || echo 1) "$T/log"

# ---- a statically linked program: said once, run untraced, status kept
if gcc -static -O0 -o "$T/static" "$HERE/progs/clean.c" 2>/dev/null; then
    "$MS" run -- "$T/static" >"$T/out" 2>"$T/e"; st=$?
    check "static binary: one-line message, runs untraced, status kept" $([ $st -eq 0 ] && [ "$(wc -l <"$T/e")" -eq 1 ] && has "$T/e" "statically linked" && has "$T/out" "clean: done" && echo 0 || echo 1) "$T/e"
fi

# ---- real programs behave exactly as without memsleuth
printf 'create table t(a,b);\ninsert into t values(1,2),(3,4);\nselect sum(a), sum(b) from t;\n' >"$T/q.sql"
if command -v sqlite3 >/dev/null; then
    sqlite3 :memory: <"$T/q.sql" >"$T/native" 2>&1
    "$MS" run --log-file="$T/sq.log" -- sqlite3 :memory: <"$T/q.sql" >"$T/traced" 2>&1
    check "sqlite3: same output, no definitely lost" $(cmp -s "$T/native" "$T/traced" && has "$T/sq.log" "(All heap blocks were freed|definitely lost: 0 bytes)" && echo 0 || echo 1) "$T/sq.log"
fi
py=/usr/bin/python3
if [ -x $py ]; then
    $py -c 'import json; print(sum(len(json.dumps(list(range(i)))) for i in range(300)))' >"$T/native"
    "$MS" run --log-file="$T/py.log" -- $py -c 'import json; print(sum(len(json.dumps(list(range(i)))) for i in range(300)))' >"$T/traced"
    check "python3: same output and a report" $(cmp -s "$T/native" "$T/traced" && has "$T/py.log" "HEAP SUMMARY" && echo 0 || echo 1) "$T/py.log"
fi
mkdir -p "$T/repo" && ( cd "$T/repo" && git init -q && echo hi >f && git add f && git -c user.email=a@b -c user.name=n commit -qm one )
( cd "$T/repo" && git log --oneline >"$T/native" 2>&1 )
( cd "$T/repo" && "$MS" run --log-file="$T/git.%p.log" -- git log --oneline >"$T/traced" 2>&1 ); st=$?
check "git log: same output, status 0" $([ $st -eq 0 ] && cmp -s "$T/native" "$T/traced" && echo 0 || echo 1) "$T/traced"

# ---- the demo: planted leaks named at their lines
if [ -x "$BUILD/examples/push_server" ]; then
    rm -f "$T"/demo.*.json
    bash "$HERE/../../examples/run_demo.sh" "$BUILD/examples" "$MS" run --show-leak-kinds=all --json="$T/demo.%p.json" -- >"$T/demo.out" 2>&1; st=$?
    python3 - "$T" "$HERE/../../examples/push_server.c" <<'EOF' >"$T/j" 2>&1
import glob, json, re, sys
src = open(sys.argv[2]).read().splitlines()
leak1 = [i + 1 for i, l in enumerate(src) if re.search(r"PLANTED LEAK:? #?1", l)]
leak2 = [i + 1 for i, l in enumerate(src) if re.search(r"PLANTED LEAK:? #?2", l)]
reps = [json.load(open(f)) for f in glob.glob(sys.argv[1] + "/demo.*.json")]
srv = [r for r in reps if r["exe"].endswith("push_server")][0]
def sites(kind):
    out = set()
    for rec in srv["records"]:
        if rec["kind"] == kind:
            fr = [f for f in rec["stack"] if f.get("file") == "push_server.c"]
            out.add(fr[0]["line"])
    return out
d, r = sites("definitely_lost"), sites("still_reachable")
assert srv["summary"]["definitely_lost"]["blocks"] > 0 and srv["summary"]["still_reachable"]["blocks"] > 0, srv["summary"]
assert srv["summary"]["possibly_lost"]["blocks"] == 0 and srv["summary"]["indirectly_lost"]["blocks"] == 0, srv["summary"]
def near(lines, marks):   # the allocation line is the marked line or the one after the comment
    return all(any(0 <= l - m <= 3 for m in marks) for l in lines)
assert d and near(d, leak1), (d, leak1)
assert r and near(r, leak2), (r, leak2)
print("demo ok", d, r)
EOF
    check "demo: definitely lost at planted leak 1, still reachable at planted leak 2, nothing else" $([ $st -eq 0 ] && has "$T/j" "demo ok" && echo 0 || echo 1) "$T/j"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
