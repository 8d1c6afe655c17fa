#!/usr/bin/env bash
# run_tests.sh BUILD_DIR - tests of the analyzer (src/analyze/): `memsleuth report` and
# `memsleuth diff` on traces written by tests/analyze/mktrace.c (our own writer, with the
# figures it expects computed by a plain replay), and on damaged traces.
#
# Builds, in BUILD_DIR:  ms-analyze (tests/analyze/analyze_main.c + src/analyze + symbolizer,
# gcc -Wall -Wextra -Wshadow -Werror), ms-analyze-asan (the same with ASan+UBSan), mktrace.
# Runs every check against both builds (the ASan one with leak detection), then valgrind on
# the plain build when it is installed, then a small memory-bound check.
# Prints "ok - ..." / "not ok - ..." lines and "N passed, M failed"; exit 1 if any failed.
set -u
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR"; exit 2; }
mkdir -p "$1"
B=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T="$ROOT/tests/analyze"
PY="python3 $T/jcheck.py"
pass=0
fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
nok() { echo "not ok - $*"; fail=$((fail + 1)); }

# t NAME CMD...: a check that passes when CMD exits 0 (its output is shown otherwise)
t() {
    local name=$1
    shift
    if "$@" >"$B/check.out" 2>&1; then
        ok "$name"
    else
        nok "$name"
        sed 's/^/#   /' "$B/check.out" | head -30
    fi
}

# run NAME [args...]: run the analyzer; sets $OUT $ERR (files) and $RC
run() {
    local name=$1
    shift
    OUT="$W/$name.out"
    ERR="$W/$name.err"
    "$BIN" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    if grep -q -e "Sanitizer" -e "runtime error" -e "LeakSanitizer" "$ERR"; then
        nok "$VARIANT: $name: sanitizer report"
        sed 's/^/#   /' "$ERR" | head -40
    fi
}
rc_is() { [ "$RC" -eq "$1" ] || { echo "exit status $RC, expected $1"; cat "$ERR"; return 1; }; }
one_line_err() { [ "$(wc -l <"$ERR")" -eq 1 ] || { echo "stderr has $(wc -l <"$ERR") lines:"; cat "$ERR"; return 1; }; }
err_is() { [ "$(cat "$ERR")" = "$1" ] || { echo "stderr: $(cat "$ERR")"; echo "wanted: $1"; return 1; }; }
err_has() { grep -qF -- "$1" "$ERR" || { echo "stderr lacks '$1':"; cat "$ERR"; return 1; }; }
out_has() { grep -qF -- "$1" "$OUT" || { echo "stdout lacks '$1'"; head -50 "$OUT"; return 1; }; }
out_count() { local n; n=$(grep -c -- "$1" "$OUT"); [ "$n" -eq "$2" ] || { echo "'$1': $n lines, expected $2"; return 1; }; }
out_empty() { [ ! -s "$OUT" ] || { echo "stdout not empty:"; head -5 "$OUT"; return 1; }; }
width100() {
    python3 - "$OUT" <<'EOF'
import sys
bad = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n") if len(l) > 100]
for l in bad:
    print(len(l), l)
sys.exit(1 if bad else 0)
EOF
}
all() { for c in "$@"; do eval "$c" || return 1; done; }

CF="-std=c17 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror"
SRC="$ROOT/src/analyze/trace_read.c $ROOT/src/analyze/model.c $ROOT/src/analyze/out.c
     $ROOT/src/analyze/report.c $ROOT/src/analyze/diff.c $ROOT/src/analyze/pools.c
     $ROOT/src/analyze/export.c $ROOT/src/analyze/pprof.c $ROOT/src/analyze/html.c
     $ROOT/src/analyze/graph.c $ROOT/src/common/symbolize.c"
INC="-I$ROOT/src/analyze -I$ROOT/src/common"
LIBS="-lzstd -lz -ldw -lelf -ldl -lm"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

# ---------------------------------------------------------------- builds
# shellcheck disable=SC2086
t "build ms-analyze (gcc $CF)" gcc $CF -O2 -g $INC -o "$B/ms-analyze" "$T/analyze_main.c" $SRC $LIBS
# shellcheck disable=SC2086
t "build ms-analyze-asan (ASan+UBSan)" gcc $CF -O1 -g $SAN $INC -o "$B/ms-analyze-asan" "$T/analyze_main.c" $SRC $LIBS
# each file alone, as the CMake build will compile them
for f in trace_read model out report diff export pprof html graph; do
    # shellcheck disable=SC2086
    t "compile src/analyze/$f.c alone" gcc $CF -O2 -c $INC -o "$B/$f.o" "$ROOT/src/analyze/$f.c"
done
t "build mktrace (fixture writer)" gcc $CF -O0 -g -o "$B/mktrace" "$T/mktrace.c" -lzstd
[ -x "$B/ms-analyze" ] && [ -x "$B/mktrace" ] || { echo "$pass passed, $((fail + 1)) failed"; exit 1; }

# ---------------------------------------------------------------- fixtures
F="$B/fixtures"
rm -rf "$F"
mkdir -p "$F"
cd "$F" || exit 1
t "fixtures" sh -c '
  set -e
  M='"$B/mktrace"'
  $M normal normal.trace normal.expect
  $M child child.trace child.expect
  $M killed killed.trace killed.expect
  $M iter 100 it100.trace it100.expect
  $M iter 200 it200.trace it200.expect
  $M exec exec-a.trace exec-b.trace exec-c.trace
  MKTRACE_LAG=1000 $M normal lag.trace lag.expect
  for k in v2 badvarint absurd garbage; do $M $k $k.trace; done
  : > empty.trace
  mkdir -p dir.trace
  python3 - <<EOF
exp = dict(l.split(" ", 1) for l in open("normal.expect").read().splitlines())
offs = [int(x) for x in exp["chunk_offsets"].split()]
d = open("normal.trace", "rb").read()
open("cut.trace", "wb").write(d[:offs[200] + 20])      # inside chunk 201 data
open("cuthdr.trace", "wb").write(d[:offs[50] + 7])     # inside chunk 51 header
b = bytearray(d); b[offs[100] + 16 + 5] ^= 0xFF          # chunk 101 data: check fails
open("corrupt.trace", "wb").write(bytes(b))
b = bytearray(d)                                         # chunk 31: raw_len - 1
rl = int.from_bytes(b[offs[30] + 8:offs[30] + 12], "little") - 1
b[offs[30] + 8:offs[30] + 12] = rl.to_bytes(4, "little")
open("rawlen.trace", "wb").write(bytes(b))
b = bytearray(d); b[offs[10]:offs[10] + 4] = b"XXXX"     # chunk 11: bad chunk magic
open("magic.trace", "wb").write(bytes(b))
open("hdrcut.trace", "wb").write(d[:40])                 # inside the header payload
EOF
'

# ---------------------------------------------------------------- the checks
suite() {
    W="$B/work-$VARIANT"
    rm -rf "$W"
    mkdir -p "$W"
    local V=$VARIANT

    # --- normal: one process, every kind of site
    run n_json report --format=json normal.trace
    t "$V: normal json: exit 0, no message" all "rc_is 0" "[ ! -s $ERR ]"
    t "$V: normal json: process, totals, temporaries" $PY "$OUT" normal.expect \
        "P['pid'] == 1000 and P['ppid'] == 1 and P['exe'] == '/opt/fixture/server'" \
        "P['argv'] == ['server', '--port', '8080'] and P['cwd'] == '/srv'" \
        "P['allocations'] == E('allocations') and P['allocated_bytes'] == E('allocated_bytes')" \
        "P['frees'] == E('frees')" \
        "P['temporary']['allocations'] == E('temporary') == 1000" \
        "P['temporary']['threshold_ns'] == 1000000" \
        "P['run_time_ns'] == 10000000000 and P['exit_status'] == 0 and P['complete']" \
        "P['end'] == {'how': 'exit', 'status': 0, 'time_ns': 10000000000}" \
        "abs(P['allocation_rate_per_s'] - E('allocations') / 10.0) < 0.01" \
        "P['read'] == {'status': 'ok', 'message': None, 'chunks': E('chunks'), 'records': P['read']['records'], 'unknown_records': 1}"
    t "$V: normal json: peak heap value and time, peak RSS" $PY "$OUT" normal.expect \
        "P['peak_bytes'] == E('peak_bytes') == 337396" \
        "P['peak_time_ns'] == E('peak_time_ns') == 5470000000" \
        "P['peak_blocks'] == E('peak_blocks')" \
        "P['peak_rss_bytes'] == E('peak_rss')" \
        "P['exit_live_bytes'] == E('exit_live_bytes')"
    t "$V: normal json: leaks by kind at exit" $PY "$OUT" - \
        "P['leak_check'] is True" \
        "P['leaks']['definitely_lost'] == {'bytes': 100000, 'blocks': 100}" \
        "P['leaks']['indirectly_lost'] == {'bytes': 640, 'blocks': 10}" \
        "P['leaks']['possibly_lost'] == {'bytes': 128, 'blocks': 1}" \
        "P['leaks']['still_reachable'] == {'bytes': 50000, 'blocks': 1}" \
        "P['leaks']['suppressed'] == {'bytes': 32, 'blocks': 1}"
    t "$V: normal json: top_peak = each site's live bytes at the peak" $PY "$OUT" normal.expect \
        "[fn(x) + ':' + str(x['peak_bytes']) for x in P['top_peak']] == ES('top_peak').split()" \
        "site(P['top_peak'], 'grow_cache')['peak_blocks'] == 55"
    t "$V: normal json: top_leaked, top_allocations, top_temporary" $PY "$OUT" normal.expect \
        "fns(P['top_leaked']) == ['grow_cache', 'make_children', 'maybe_leak']" \
        "P['top_leaked'][0]['leaked_bytes'] == 100000 and P['top_leaked'][0]['indirect_bytes'] == 640" \
        "P['top_allocations'][0]['allocations'] == 1000 and fn(P['top_allocations'][0]) == 'temp_buffer'" \
        "fns(P['top_temporary']) == ['temp_buffer'] and P['top_temporary'][0]['temporary'] == 1000" \
        "P['top_temporary'][0]['temporary_bytes'] == 256000" \
        "len(P['top_allocations']) == 10"
    t "$V: normal json: growth suspects ranked, with their state" $PY "$OUT" normal.expect \
        "fns(P['growth_suspects']) == ['grow_cache', 'session_table']" \
        "[x['state'] for x in P['growth_suspects']] == ['lost', 'freed_at_exit']" \
        "P['growth_suspects'][0]['score'] > P['growth_suspects'][1]['score'] > 0" \
        "len(P['growth_suspects'][0]['samples']) == 64" \
        "P['growth_suspects'][0]['samples'] == sorted(P['growth_suspects'][0]['samples'])" \
        "P['growth_suspects'][0]['samples'][-1] == 100000 and P['growth_suspects'][1]['samples'][-1] == 0" \
        "P['growth_suspects'][0]['increases'] >= 60 and P['growth_suspects'][0]['decreases'] == 0" \
        "P['growth_suspects_total'] == 2"
    t "$V: normal json: frames (function, file:line, module, inlined)" $PY "$OUT" normal.expect \
        "P['growth_suspects'][0]['stack'][0]['file'] == 'mktrace.c'" \
        "P['growth_suspects'][0]['stack'][0]['line'] == LINE('grow_cache')" \
        "P['growth_suspects'][0]['stack'][0]['module'].endswith('/mktrace')" \
        "P['growth_suspects'][0]['stack'][0]['address'].startswith('0x')" \
        "P['growth_suspects'][0]['stack'][1]['function'] == 'make_stacks'" \
        "site(P['top_allocations'], 'inl_helper')['stack'][0]['inlined'] is True" \
        "site(P['top_allocations'], 'inl_helper')['stack'][0]['line'] == LINE('inl_site')" \
        "site(P['top_allocations'], 'inl_helper')['stack'][1]['function'] == 'inl_site'" \
        "sorted(site(P['top_allocations'], 'resize_array')['allocators']) == ['malloc', 'realloc']"
    t "$V: normal json: memory over time, forks" $PY "$OUT" - \
        "len(P['memory_over_time']['live_bytes']) == 64 == len(P['memory_over_time']['time_ns'])" \
        "P['memory_over_time']['time_ns'][-1] == P['samples_end_ns'] == 9990990000" \
        "P['memory_over_time']['time_ns'] == sorted(P['memory_over_time']['time_ns'])" \
        "max(P['memory_over_time']['live_bytes']) <= P['peak_bytes']" \
        "P['memory_over_time']['live_bytes'][-1] == P['exit_live_bytes']" \
        "[(f['pid'], f['traced']) for f in P['forks']] == [(1001, False), (1002, False)]" \
        "'growth_suspects' in d['definitions'] and 'temporary' in d['definitions']" \
        "P['snapshots'] == [{'id': 1, 'time_ns': 5099000001, 'trigger': 'signal', 'pause_ns': 1500000, 'live_bytes': 101000, 'live_blocks': 52, 'leaks': {'definitely_lost': {'bytes': 51000, 'blocks': 51}, 'indirectly_lost': {'bytes': 0, 'blocks': 0}, 'possibly_lost': {'bytes': 0, 'blocks': 0}, 'still_reachable': {'bytes': 50000, 'blocks': 1}}}]"

    run n_text report normal.trace
    t "$V: normal text: summary, sites, 100 columns" all "rc_is 0" \
        "out_has '  peak heap  329 KiB in 125 blocks at 5.470 s'" \
        "out_has '  temporary  1,000 allocations freed within 1 ms'" \
        "out_has '  allocs     1,317 calls (131/s)'" \
        "out_has 'definitely lost   97.7 KiB in 100 blocks'" \
        "out_has 'suppressed        32 B in 1 block'" \
        "out_has 'grow_cache (mktrace.c:$(awk '/^line grow_cache /{print $3}' normal.expect))'" \
        "out_has 'inl_helper (mktrace.c:'" \
        "out_has 'children   1001 (no trace), 1002 (no trace)'" \
        "out_has '  snapshots  1 at 5.099 s (signal, pause 1.5 ms): lost 49.8 KiB in 51 blocks, reachable 48.8 KiB'" \
        width100
    t "$V: normal text: growth suspects with state and sparkline" all \
        "grep -A1 '   1. grow_cache' $OUT | grep -q ' lost '" \
        "grep -A1 '   2. session_table' $OUT | grep -q 'freed_at_exit'" \
        "out_has 'lost at exit: 97.7 KiB in 100 blocks'" \
        "out_has 'freed at exit:'" \
        "grep -q '|▁▁▁▁▁▁▁▂▂▂' $OUT"
    run n_stacks report --stacks --top=3 normal.trace
    t "$V: normal text --stacks: full stacks, --top" all "rc_is 0" \
        "grep -q 'at 0x[0-9a-f]*: grow_cache (mktrace.c:[0-9]*)' $OUT" \
        "grep -q 'by 0x[0-9a-f]*: make_stacks (mktrace.c:[0-9]*)' $OUT" \
        "[ \$(grep -c '^     4 ' $OUT) -eq 0 ]" width100
    run n_v report -v normal.trace
    t "$V: -v is --stacks" all "rc_is 0" "grep -q 'by 0x[0-9a-f]*: make_stacks' $OUT"

    run n_dump report --format=dump normal.trace
    t "$V: normal dump: one line per record, greppable" all "rc_is 0" \
        "head -1 $OUT | grep -qx 'TRACE file=\"normal.trace\" version=1'" \
        "out_count '^ALLOC ' $(awk '/^allocations/{print $2}' normal.expect)" \
        "out_count '^FREE ' $(awk '/^frees/{print $2}' normal.expect)" \
        "out_count '^STACK id=' 11" \
        "out_count '^CHUNK n=' $(awk '/^chunks/{print $2}' normal.expect)" \
        "out_count '^UNKNOWN type=99 len=3\$' 1" \
        "out_count '^ALLOC t=4102000001 addr=0x[0-9a-f]* size=200 stack=11 fn=realloc\$' 1" \
        "out_count '^ALLOC t=10000000 addr=0x55036ee800 size=256 stack=2 fn=malloc\$' 1" \
        "out_count '^LEAK kind=definite stack=7 bytes=32 blocks=1 indirect_bytes=0 suppressed=1\$' 1" \
        "out_count '^FORK t=2999999999 child_pid=1001\$' 1" \
        "out_count '^SNAPSHOT t=5099000001 id=1 trigger=signal pause_ns=1500000\$' 1" \
        "out_count '^SNAP_LEAK kind=definite stack=1 bytes=51000 blocks=51\$' 1" \
        "out_count '^END t=10000000000 how=exit status=0\$' 1" \
        "out_count '^PROCESS pid=1000 ppid=1 start_unix_ns=1700000000000000000 exe=\"/opt/fixture/server\" argc=3 argv=\[\"server\",\"--port\",\"8080\"\] cwd=\"/srv\"\$' 1" \
        "out_count '^MODULE t=0 path=\"[^\"]*/mktrace\" build_id=[0-9a-f]* bias=0x' 1" \
        "[ \$(grep -vc '^[A-Z_]* ' $OUT) -eq 0 ]"

    # --- the forked child, and both as a process tree
    run c_json report --format=json child.trace
    t "$V: child json: inherited blocks, growth reachable, LOST" $PY "$OUT" child.expect \
        "P['pid'] == 1001 and P['ppid'] == 1000" \
        "P['inherited'] == {'bytes': 80000, 'blocks': 31}" \
        "P['allocations'] == E('allocations') == 100" \
        "P['peak_bytes'] == E('peak_bytes') == 95000 and P['peak_time_ns'] == E('peak_time_ns')" \
        "fns(P['growth_suspects']) == ['worker_queue'] and P['growth_suspects'][0]['state'] == 'reachable'" \
        "P['lost_events'] == 5 and P['temporary']['allocations'] == 0"
    run c_dump report --format=dump child.trace
    t "$V: child dump: INHERITED count, then the inherited ALLOCs (fn | 64)" all "rc_is 0" \
        "out_count '^INHERITED t=0 count=31\$' 1" \
        "out_count '^ALLOC t=0 addr=0x[0-9a-f]* size=1000 stack=1 fn=malloc inherited=1\$' 30" \
        "out_count ' inherited=1\$' 31" "out_count '^LOST t=1999000000 count=5\$' 1"
    run tree_json report --format=json child.trace normal.trace
    t "$V: two traces: the tree (parent first, child under it)" $PY "$OUT" - \
        "[p['pid'] for p in PS] == [1000, 1001]" \
        "PS[0]['children'] == [1001] and PS[1]['parent_index'] == 0" \
        "[(f['pid'], f['traced']) for f in PS[0]['forks']] == [(1001, True), (1002, False)]" \
        "all(len(p['memory_over_time']['live_bytes']) == 64 for p in PS)"
    run tree_text report normal.trace child.trace
    t "$V: two traces text: every process with its memory line, children under it" all "rc_is 0" \
        "out_has 'Processes (2)'" \
        "grep -A3 '^  1000 server' $OUT | grep -q '^    1001 server'" \
        "grep -A1 '^    1001 server' $OUT | grep -q '^      |'" \
        "out_has 'children   1001, 1002 (no trace)'" \
        "out_has 'parent     1000 (server)'" width100

    run exec_json report --format=json exec-c.trace exec-b.trace exec-a.trace
    t "$V: exec: the new image of the same pid under the old one, its child under it" $PY "$OUT" - \
        "[(p['pid'], p['exe']) for p in PS] == [(4000, '/opt/fixture/launcher'), (4000, '/opt/fixture/worker'), (4001, '/opt/fixture/worker')]" \
        "[p['parent_index'] for p in PS] == [None, 0, 1]" \
        "[p['exec_of_parent'] for p in PS] == [False, True, False]" \
        "PS[0]['end'] == {'how': 'exec', 'path': '/opt/fixture/worker', 'time_ns': 5000000}" \
        "PS[0]['exec'] == '/opt/fixture/worker' and PS[0]['exit_status'] is None and PS[0]['complete']" \
        "PS[1]['end']['how'] == 'exit' and PS[1]['exec'] is None" \
        "site(PS[0]['top_peak'], 'grow_cache')['state'] == 'live_at_exec'" \
        "PS[1]['children'] == [4001] and PS[1]['forks'] == [{'pid': 4001, 'time_ns': 2000000, 'traced': True}]"
    run exec_dump report --format=dump exec-a.trace exec-b.trace
    t "$V: exec dump: EXEC is the last record of the replaced image" all "rc_is 0" \
        "out_count '^EXEC t=5000000 path=\"/opt/fixture/worker\"\$' 1" \
        "out_count '^EXEC t=3000000 path=\"/nonexistent/prog\"\$' 1" "out_count '^TRACE ' 2" \
        "grep -B1 '^TRACE file=\"exec-b.trace\"' $OUT | head -1 | grep -q '^EXEC t=5000000'"
    run exec_text report exec-a.trace exec-b.trace exec-c.trace
    t "$V: exec text: the new image at the same depth, its child under it" all "rc_is 0" \
        "out_has '  4000 worker (exec)  run 10.0 ms'" \
        "out_has '    4001 worker  run 10.0 ms'" "out_has 'run time   5.0 ms, exec /opt/fixture/worker'" \
        "out_has 'at exec    64 B in 1 block live'"

    # --- one shard 1 s behind: beyond the reorder window
    run lag_json report --format=json lag.trace
    t "$V: records 1 s out of order: counted, totals still exact" $PY "$OUT" normal.expect \
        "P['late_events'] > 0" "P['allocations'] == E('allocations')" \
        "P['temporary']['allocations'] == 1000" "P['leaks']['definitely_lost']['bytes'] == 100000" \
        "fns(P['growth_suspects'])[:2] == ['grow_cache', 'session_table']"
    run lag_text report lag.trace
    t "$V: records 1 s out of order: the text says so" all "rc_is 0" \
        "out_has 'came more than 250 ms out of time order: peak and samples are approximate'"

    # --- killed: no END record
    run k_json report --format=json killed.trace
    t "$V: killed (no END): live_at_end, not complete" $PY "$OUT" - \
        "P['complete'] is False and P['end'] is None and P['exit_status'] is None" \
        "fns(P['growth_suspects'])[:2] == ['grow_cache', 'session_table']" \
        "P['growth_suspects'][0]['state'] == 'live_at_end' == P['growth_suspects'][1]['state']" \
        "P['leak_check'] is False"
    run k_text report killed.trace
    t "$V: killed text: says so, in 100 columns" all "rc_is 0" \
        "out_has 'no END record: the program was killed or crashed'" width100

    # --- damaged traces
    run cut report --format=json cut.trace
    t "$V: cut mid-chunk: one warning, exit 0, report of what was read" all "rc_is 0" one_line_err \
        "err_is \"memsleuth: warning: 'cut.trace': trace cut off after 200 chunks: the program probably died; reading what is there\"" \
        "$PY $OUT - \"P['read']['status'] == 'cut'\" \"P['complete'] is False\" \"P['allocations'] > 0\" \"P['read']['chunks'] == 200\""
    run cuthdr report cuthdr.trace
    t "$V: cut inside a chunk header: warning, exit 0" all "rc_is 0" one_line_err \
        "err_has 'trace cut off after 50 chunks'" "out_has 'peak heap'"
    run cutdump report --format=dump cut.trace
    t "$V: cut, dump: records up to the cut" all "rc_is 0" one_line_err "out_count '^CHUNK n=' 200"
    run corrupt report --format=json corrupt.trace
    t "$V: failed check: one error line, exit 3, report of the chunks before" all "rc_is 3" one_line_err \
        "err_has \"memsleuth: error: 'corrupt.trace': chunk 101 at offset $(awk '/^chunk_offsets/{print $102}' normal.expect) is corrupt (check 0x\"" \
        "err_has 'reading the 100 chunks before it'" \
        "$PY $OUT - \"P['read']['status'] == 'error'\" \"P['read']['chunks'] == 100\""
    run rawlen report rawlen.trace
    t "$V: raw_len not what the frame holds: error, exit 3" all "rc_is 3" one_line_err \
        "err_has 'chunk 31 at offset'" "err_has 'is corrupt: its zstd frame holds'" "out_has 'peak heap'"
    run magic report magic.trace
    t "$V: bad chunk magic: error, exit 3" all "rc_is 3" one_line_err "err_has 'no chunk at offset'" \
        "err_has 'reading the 10 chunks before it'"
    run v2 report v2.trace
    t "$V: newer version refused, naming both" all "rc_is 3" out_empty \
        "err_is \"memsleuth: cannot read trace 'v2.trace': trace version 2 is newer than this memsleuth reads (1)\""
    run badvarint report badvarint.trace
    t "$V: 11-byte varint: error, exit 3" all "rc_is 3" one_line_err \
        "err_has 'a varint longer than 10 bytes in a PROCESS record'"
    run absurd report absurd.trace
    t "$V: absurd raw length: error, exit 3, no huge allocation" all "rc_is 3" one_line_err \
        "err_has 'raw length 2147483647 is larger than the limit 67108864'"
    run garbage report garbage.trace
    t "$V: garbage file" all "rc_is 3" out_empty \
        "err_is \"memsleuth: cannot read trace 'garbage.trace': not a memsleuth trace (bad magic)\""
    run empty report empty.trace
    t "$V: empty file" all "rc_is 3" out_empty \
        "err_is \"memsleuth: cannot read trace 'empty.trace': empty file (not a memsleuth trace)\""
    run hdrcut report hdrcut.trace
    t "$V: file cut inside the header" all "rc_is 3" one_line_err "err_has 'truncated header'"
    run dir report dir.trace
    t "$V: a directory" all "rc_is 3" "err_is \"memsleuth: cannot read trace 'dir.trace': is a directory\""
    run missing report --format=dump missing.trace
    t "$V: a missing file" all "rc_is 3" \
        "err_is \"memsleuth: cannot read trace 'missing.trace': No such file or directory\""
    run mixed report normal.trace missing.trace
    t "$V: one unreadable trace among several: exit 3" all "rc_is 3" out_empty one_line_err

    # --- usage and output
    run u1 report
    t "$V: usage: no trace" all "rc_is 2" "err_has 'needs a trace'"
    run u2 report --format=svg normal.trace
    t "$V: usage: unknown format" all "rc_is 2" "err_has \"unknown format 'svg'\""
    run u2b diff --format=html normal.trace normal.trace
    t "$V: usage: diff has no html format" all "rc_is 2" "err_has \"unknown format 'html'\""
    run u3 report --bogus normal.trace
    t "$V: usage: unknown option" all "rc_is 2" "err_has \"unknown option '--bogus'\""
    run u4 diff normal.trace
    t "$V: usage: diff needs two traces" all "rc_is 2" "err_has 'needs two traces'"
    run u5 diff --scale 5:5 it100.trace it200.trace
    t "$V: usage: --scale N:N" all "rc_is 2" "err_has 'N and M must differ'"
    run u6 diff --scale=x it100.trace it200.trace
    t "$V: usage: --scale x" all "rc_is 2" "err_has '--scale needs N:M'"
    run u7 report --help
    t "$V: --help" all "rc_is 0" "out_has 'usage: memsleuth report'"
    run o1 report --format=json -o "$W/o1.json" normal.trace
    t "$V: -o FILE" all "rc_is 0" out_empty "$PY $W/o1.json - \"P['pid'] == 1000\""
    run o2 report -o /nonexistent-dir/x.json normal.trace
    t "$V: -o into a missing directory: exit 1" all "rc_is 1" one_line_err "err_has \"cannot write '/nonexistent-dir/x.json'\""
    if [ -w /dev/full ]; then
        run o3 report -o /dev/full normal.trace
        t "$V: -o /dev/full: exit 1, said once" all "rc_is 1" one_line_err "err_has 'No space left on device'"
    fi

    # --- diff
    run d_json diff --format=json --scale 100:200 it100.trace it200.trace
    t "$V: diff --scale 100:200: per-iteration figures" $PY "$OUT" - \
        "d['scale'] == {'a': 100, 'b': 200} and d['a']['iterations'] == 100" \
        "fn(d['sites'][0]) == 'leak_per_iter' and d['sites'][0]['change'] == 'grew'" \
        "d['sites'][0]['per_iteration_bytes'] == 48 and d['sites'][0]['per_iteration_blocks'] == 1" \
        "d['sites'][0]['a']['max_live_bytes'] == 4800 and d['sites'][0]['b']['max_live_bytes'] == 9600" \
        "d['sites'][0]['a']['leaked_bytes'] == 4800" \
        "site(d['sites'], 'temp_per_iter')['change'] == 'unchanged'" \
        "site(d['sites'], 'temp_per_iter')['per_iteration_allocations'] == 1" \
        "site(d['sites'], 'warmup_cache')['per_iteration_bytes'] == 0" \
        "d['per_iteration_peak_bytes'] == 48"
    run d_text diff --scale 100:200 it100.trace it200.trace
    t "$V: diff text" all "rc_is 0" "out_has 'Grew: 1 site'" \
        "grep 'leak_per_iter' $OUT | grep -q '+48 B *+1.00'" width100
    run d_noscale diff --format=json it100.trace it200.trace
    t "$V: diff without --scale" $PY "$OUT" - "d['scale'] is None" \
        "'per_iteration_bytes' not in d['sites'][0]" "d['sites'][0]['delta_bytes'] == 4800"
    run d_self diff normal.trace normal.trace
    t "$V: diff of a trace with itself: nothing changed" all "rc_is 0" "out_has 'no site changed'"
    run d_tree diff --format=json normal.trace child.trace
    t "$V: diff of different programs: appeared / disappeared" $PY "$OUT" - \
        "site(d['sites'], 'worker_queue')['change'] == 'appeared'" \
        "site(d['sites'], 'temp_buffer')['change'] == 'disappeared'"
    run d_bad diff it100.trace v2.trace
    t "$V: diff of an unreadable trace: exit 3" all "rc_is 3" "err_has 'newer than this memsleuth reads'"
}

VARIANT=plain
BIN="$B/ms-analyze"
suite
if [ -x "$B/ms-analyze-asan" ]; then
    VARIANT=asan
    BIN="$B/ms-analyze-asan"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99
    export UBSAN_OPTIONS=print_stacktrace=1:exitcode=98
    suite
    unset ASAN_OPTIONS UBSAN_OPTIONS
fi

# ---------------------------------------------------------------- valgrind: a leak tool must not leak
if command -v valgrind >/dev/null; then
    t "valgrind: report of two traces, no error, no definite leak" \
        valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
        "$B/ms-analyze" report --format=json -o /dev/null normal.trace child.trace
    t "valgrind: diff, no error, no definite leak" \
        valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
        "$B/ms-analyze" diff --scale 100:200 -o /dev/null it100.trace it200.trace
fi

# ---------------------------------------------------------------- memory does not follow the events
# (tests/analyze/run_membound.sh measures the 20 M event case)
maxrss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
if [ -x /usr/bin/time ]; then
    "$B/mktrace" big 2000000 big1.trace >/dev/null
    "$B/mktrace" big 8000000 big4.trace >/dev/null
    r1=$(maxrss "$B/ms-analyze" report -o /dev/null big1.trace)
    r4=$(maxrss "$B/ms-analyze" report -o /dev/null big4.trace)
    echo "# peak RSS: 2 M events $r1 KiB, 8 M events $r4 KiB"
    t "memory: 4x the events, same live set: peak RSS within 10% + 2 MiB" \
        [ "$r4" -le $((r1 * 11 / 10 + 2048)) ]
    rm -f big1.trace big4.trace
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
