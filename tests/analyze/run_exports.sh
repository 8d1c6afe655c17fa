#!/usr/bin/env bash
# run_exports.sh BUILD_DIR [MEMSLEUTH] - tests of `memsleuth report --format=collapsed|pprof|
# xml|html` (src/analyze/export.c, pprof.c, html.c).
#
# Builds in BUILD_DIR ms-analyze (tests/analyze/analyze_main.c + src/analyze, -Werror) and
# ms-analyze-asan (ASan+UBSan), and mktrace; on mktrace's fixtures checks every format's
# figures against the JSON report of the same trace: collapsed sums per --collapsed-value,
# pprof decoded by our own protobuf reader (excheck.py) and by `go tool pprof -raw` when go
# is installed, valgrind XML parsed by xml.etree, the HTML page in headless Chromium (no
# JavaScript error, its #selftest search/zoom/sort, a screenshot that is not blank).  With
# MEMSLEUTH, `MEMSLEUTH run` traces tests/analyze/progs/export_leak.c under a name holding
# "<b>" with "<script>alert(1)</script>" in its argv: the XML must match valgrind's own
# --xml=yes leak records for the same program, and the page must show those strings as text.
# Prints "ok - ..." / "not ok - ..." / "skip - ..." lines and "N passed, M failed".
set -u
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [MEMSLEUTH]"; exit 2; }
mkdir -p "$1"
B=$(cd "$1" && pwd)
MS=${2:+$(realpath "$2")}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T="$ROOT/tests/analyze"
EX="python3 $T/excheck.py"
# the screenshot check: PIL of the system's python3 (python3-pil) when there, else our decoder
PNGPY=python3
/usr/bin/python3 -c 'import PIL' 2>/dev/null && PNGPY=/usr/bin/python3
pass=0
fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
nok() { echo "not ok - $*"; fail=$((fail + 1)); }
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
# py EXPR... : each a Python expression over J (the JSON report's first process), D (the
# excheck.py output), C (collapsed lines as [(frames, value)]); files set by the caller
py() {
    python3 - "$@" <<'EOF'
import json, os, sys
env = os.environ
J = json.load(open(env["JSONF"]))["processes"][0] if env.get("JSONF") else None
PS = json.load(open(env["JSONF"]))["processes"] if env.get("JSONF") else None
D = json.load(open(env["EXF"])) if env.get("EXF") else None
C = []
if env.get("COLF"):
    for l in open(env["COLF"], encoding="utf-8").read().splitlines():
        s, _, v = l.rpartition(" ")
        C.append((s.split(";"), int(v)))
bad = 0
for e in sys.argv[1:]:
    try:
        r = eval(e)
    except Exception as x:
        r = "%s: %s" % (type(x).__name__, x)
    if r is not True:
        print("failed:", e, "->", r)
        bad = 1
sys.exit(bad)
EOF
}

CF="-std=c17 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror"
# every source of the analyzer (others work in src/analyze too), and the symbolizer
SRC="$(ls "$ROOT"/src/analyze/*.c) $ROOT/src/common/symbolize.c"
INC="-I$ROOT/src/analyze -I$ROOT/src/common"
LIBS="-lzstd -lz -ldw -lelf -ldl -lm"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

# ---------------------------------------------------------------- builds
t "html_page.h is made from html_page.html (scripts/gen_html_page.py --check)" \
    python3 "$ROOT/scripts/gen_html_page.py" --check
# the ASan build in the background (the machine has 2 cores), waited for below
rm -f "$B/ms-analyze-asan"
# shellcheck disable=SC2086
gcc $CF -O0 -g $SAN $INC -o "$B/ms-analyze-asan" "$T/analyze_main.c" $SRC $LIBS >"$B/asan-build.out" 2>&1 &
ASAN_PID=$!
# shellcheck disable=SC2086
t "build ms-analyze" gcc $CF -O2 -g $INC -o "$B/ms-analyze" "$T/analyze_main.c" $SRC $LIBS
t "build mktrace" gcc $CF -O0 -g -o "$B/mktrace" "$T/mktrace.c" -lzstd
[ -x "$B/ms-analyze" ] && [ -x "$B/mktrace" ] || { echo "$pass passed, $((fail + 1)) failed"; exit 1; }
A="$B/ms-analyze"

W="$B/work"
rm -rf "$W"
mkdir -p "$W"
cd "$W" || exit 1
t "fixtures" sh -c "'$B/mktrace' normal normal.trace normal.expect && '$B/mktrace' child child.trace child.expect && '$B/mktrace' killed killed.trace killed.expect"
"$A" report --format=json --top=100000 normal.trace >normal.json 2>/dev/null
"$A" report --format=json --top=100000 killed.trace >killed.json 2>/dev/null

# ---------------------------------------------------------------- collapsed
for v in peak leaked allocs allocated inuse; do
    "$A" report --format=collapsed --collapsed-value=$v normal.trace >"col-$v.txt" 2>col.err
    echo $? >"col-$v.rc"
done
export JSONF="$W/normal.json" COLF="$W/col-peak.txt"
t "collapsed: exit 0, 'frame;frame VALUE' lines, outermost first" sh -c '
  [ "$(cat col-peak.rc)" = 0 ] || exit 1
  grep -qvE "^[^;]+(;[^;]+)* [0-9]+$" col-peak.txt && { echo "bad line:"; grep -vE "^[^;]+(;[^;]+)* [0-9]+$" col-peak.txt; exit 1; }
  grep -qx "make_stacks;grow_cache 55000" col-peak.txt || { cat col-peak.txt; exit 1; }'
t "collapsed: peak (default) sums to the peak heap; no zero lines" py \
    "sum(v for _, v in C) == J['peak_bytes'] == 337396" "all(v > 0 for _, v in C)" \
    "sorted(v for _, v in C) == sorted(s['peak_bytes'] for s in J['top_peak'] if s['peak_bytes'])"
"$A" report --format=collapsed normal.trace >col-default.txt 2>/dev/null
t "collapsed: the default value is peak" cmp col-default.txt col-peak.txt
COLF="$W/col-leaked.txt" t "collapsed: leaked = definitely + indirectly + possibly lost bytes" py \
    "sum(v for _, v in C) == sum(J['leaks'][k]['bytes'] for k in ('definitely_lost', 'indirectly_lost', 'possibly_lost')) == 100768" \
    "sorted(f[-1] for f, _ in C) == ['grow_cache', 'make_children', 'maybe_leak']"
COLF="$W/col-allocs.txt" t "collapsed: allocs = allocation calls; inlined frames expanded" py \
    "sum(v for _, v in C) == J['allocations'] == 1317" \
    "(['make_stacks', 'inl_site', 'inl_helper'], 1) in C"
COLF="$W/col-allocated.txt" t "collapsed: allocated = bytes allocated" py \
    "sum(v for _, v in C) == J['allocated_bytes']"
COLF="$W/col-inuse.txt" t "collapsed: inuse = bytes live at the end" py \
    "sum(v for _, v in C) == J['exit_live_bytes']"
"$A" report --format=collapsed normal.trace child.trace >col-two.txt 2>/dev/null
COLF="$W/col-two.txt" t "collapsed: several traces: a first frame exe[pid] each" py \
    "set(f[0] for f, _ in C) == {'server[1000]', 'server[1001]'}" \
    "sum(v for f, v in C if f[0] == 'server[1000]') == 337396"
"$A" report --format=collapsed --collapsed-value=bogus normal.trace >/dev/null 2>col.err
rc=$?
t "collapsed: --collapsed-value=bogus: usage error (2)" sh -c "[ $rc -eq 2 ] && grep -q 'collapsed-value needs' col.err"
unset COLF

# ---------------------------------------------------------------- pprof
"$A" report --format=pprof -o normal.pb.gz normal.trace 2>pp.err
rc=$?
t "pprof: exit 0, gzip" sh -c "[ $rc -eq 0 ] && [ \"\$(head -c2 normal.pb.gz | od -An -tx1 | tr -d ' ')\" = 1f8b ]"
$EX pprof normal.pb.gz >pp.json 2>&1
export EXF="$W/pp.json"
t "pprof: decoded (own reader): sample types, sums = the JSON report's" py \
    "D['problems'] == []" \
    "D['types'] == ['alloc_objects/count', 'alloc_space/bytes', 'inuse_objects/count', 'inuse_space/bytes']" \
    "D['sums']['alloc_objects/count'] == J['allocations'] == 1317" \
    "D['sums']['alloc_space/bytes'] == J['allocated_bytes']" \
    "D['sums']['inuse_objects/count'] == J['exit_live_blocks']" \
    "D['sums']['inuse_space/bytes'] == J['exit_live_bytes']" \
    "D['default'] == 'inuse_space' and D['period'] == 1 and D['pids'] == [1000]"
t "pprof: locations with function and line, inlined lines, mapping with build-id" py \
    "D['leaves']['grow_cache'] == [100, 100000, 100, 100000]" \
    "D['leaves']['temp_buffer'][:2] == [1000, 256000]" \
    "D['inlined_locations'] == 1" \
    "any(m['file'].endswith('/mktrace') and len(m['build_id']) == 40 for m in D['mappings'])"
if command -v go >/dev/null 2>&1; then
    export HOME="$W/gohome" GOCACHE="$W/gohome/cache" GOFLAGS=-mod=mod GOTOOLCHAIN=local
    mkdir -p "$HOME"
    go tool pprof -raw normal.pb.gz >pp.raw 2>pp.raw.err
    go tool pprof -top -sample_index=alloc_space normal.pb.gz >pp.top 2>&1
    t "pprof: go tool pprof -raw reads it; its sums = the JSON report's" python3 - <<'EOF'
import json, re
J = json.load(open("normal.json"))["processes"][0]
raw = open("pp.raw").read()
assert "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes[dflt]" in raw, raw[:500]
sums = [0, 0, 0, 0]
for m in re.finditer(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+): ", raw, re.M):
    sums = [a + int(b) for a, b in zip(sums, m.groups())]
want = [J["allocations"], J["allocated_bytes"], J["exit_live_blocks"], J["exit_live_bytes"]]
assert sums == want, (sums, want)
assert re.search(r"grow_cache mktrace.c:\d+", raw), raw
EOF
    t "pprof: go tool pprof -top lists the sites" sh -c 'grep -q "churn_buffer" pp.top && grep -q "Type: alloc_space" pp.top || { cat pp.top; exit 1; }'
else
    echo "skip - go tool pprof: go is not installed (apt-get install golang-go); our own reader checked it"
fi
"$A" report --format=pprof -o two.pb.gz normal.trace child.trace 2>/dev/null
$EX pprof two.pb.gz >pp2.json 2>&1
"$A" report --format=json child.trace >child.json 2>/dev/null
EXF="$W/pp2.json" JSONF="$W/child.json" t "pprof: several traces: one profile, a pid label per sample" py \
    "D['problems'] == [] and D['pids'] == [1000, 1001]" \
    "D['sums']['alloc_objects/count'] == J['allocations'] + 1317"

# ---------------------------------------------------------------- xml
"$A" report --format=xml -o normal.xml normal.trace 2>x.err
rc=$?
t "xml: exit 0" sh -c "[ $rc -eq 0 ] && [ ! -s x.err ]"
$EX xml normal.xml >x.json 2>&1
EXF="$W/x.json" t "xml: valgrind protocol 4; kinds, bytes, blocks = the JSON report's" py \
    "D['protocolversion'] == '4' and D['tool'] == 'memcheck' and D['pid'] == '1000'" \
    "D['exe'] == '/opt/fixture/server' and D['args'] == ['--port', '8080']" \
    "sum(e['direct'] for e in D['errors'] if e['kind'] == 'Leak_DefinitelyLost') == J['leaks']['definitely_lost']['bytes'] == 100000" \
    "sum(e['blocks'] for e in D['errors'] if e['kind'] == 'Leak_DefinitelyLost') == J['leaks']['definitely_lost']['blocks']" \
    "sum(e['bytes'] for e in D['errors'] if e['kind'] == 'Leak_IndirectlyLost') == J['leaks']['indirectly_lost']['bytes'] == 640" \
    "sum(e['bytes'] for e in D['errors'] if e['kind'] == 'Leak_PossiblyLost') == J['leaks']['possibly_lost']['bytes'] == 128" \
    "sum(e['bytes'] for e in D['errors'] if e['kind'] == 'Leak_StillReachable') == J['leaks']['still_reachable']['bytes'] == 50000" \
    "[e['bytes'] for e in D['errors']] == sorted(e['bytes'] for e in D['errors'])" \
    "[e['unique'] for e in D['errors']] == ['0x%x' % i for i in range(len(D['errors']))]"
EXF="$W/x.json" t "xml: definite record with indirect bytes; frames with fn, obj, file, line" py \
    "[e['text'] for e in D['errors'] if e['kind'] == 'Leak_DefinitelyLost'] == ['100640 (100000 direct, 640 indirect) bytes in 100 blocks are definitely lost in loss record 4 of 4']" \
    "[(f['fn'], f['file']) for f in D['errors'][-1]['frames']] == [('grow_cache', 'mktrace.c'), ('make_stacks', 'mktrace.c')]" \
    "D['errors'][-1]['frames'][0]['obj'].endswith('/mktrace') and int(D['errors'][-1]['frames'][0]['line']) > 0"
"$A" report normal.trace >normal.txt 2>/dev/null
t "xml: the text report says the same totals" sh -c 'grep -q "definitely lost   97.7 KiB in 100 blocks" normal.txt && grep -q "possibly lost     128 B in 1 block" normal.txt'
"$A" report --format=xml normal.trace child.trace >/dev/null 2>x2.err
rc=$?
t "xml: two traces: usage error (2)" sh -c "[ $rc -eq 2 ] && grep -q 'takes one trace' x2.err"

# ---------------------------------------------------------------- html (static checks)
"$A" report --format=html -o normal.html normal.trace child.trace killed.trace 2>h.err
rc=$?
t "html: exit 0" sh -c "[ $rc -eq 0 ] && [ ! -s h.err ]"
t "html: self-contained: no external resource, no src=/href= to a URL, two script elements" python3 - <<'EOF'
import re
h = open("normal.html", encoding="utf-8").read()
urls = set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[a-z]{2,}[^\s\"'<>)]*", h))
assert urls <= {"http://www.w3.org/2000/svg"}, urls
assert not re.search(r"<(link|img|iframe|object|embed)\b", h, re.I)
assert not re.search(r"\b(src|href)\s*=\s*[\"']?(https?:|//)", h, re.I)
assert not re.search(r"@import|url\(", h)
assert h.count("</script>") == 2 and h.count("<script") == 2, (h.count("</script>"), h.count("<script"))
EOF

# ---------------------------------------------------------------- sanitizers
if wait "$ASAN_PID"; then
    ok "build ms-analyze-asan (ASan+UBSan)"
else
    nok "build ms-analyze-asan (ASan+UBSan)"
    sed 's/^/#   /' "$B/asan-build.out" | head -30
fi
if [ -x "$B/ms-analyze-asan" ]; then
    asan_same() {
        for f in "collapsed --collapsed-value=leaked" "pprof" "xml" "html"; do
            # shellcheck disable=SC2086
            ASAN_OPTIONS=detect_leaks=1 "$B/ms-analyze-asan" report --format=$f -o asan.out normal.trace 2>asan.err ||
                { echo "$f: exit $?"; cat asan.err; return 1; }
            # shellcheck disable=SC2086
            "$A" report --format=$f -o plain.out normal.trace 2>/dev/null
            [ -s asan.err ] && { echo "$f:"; cat asan.err; return 1; }
            cmp -s asan.out plain.out || { echo "$f: output differs from the plain build"; return 1; }
        done
        ASAN_OPTIONS=detect_leaks=1 "$B/ms-analyze-asan" report --format=html -o /dev/null normal.trace child.trace killed.trace 2>asan.err || { cat asan.err; return 1; }
        [ ! -s asan.err ]
    }
    t "ASan+UBSan build: every format, no report, same output" asan_same
fi

# ---------------------------------------------------------------- html in Chromium
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
chrome() { timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$W/chrome" "$@" 2>>"$W/chrome.log"; }
if [ -z "$CHROME" ]; then
    echo "skip - html in headless Chromium: chromium is not installed (apt-get install chromium)"
else
    chrome --window-size=1400,1000 --dump-dom "file://$W/normal.html#selftest" >dom.html
    t "html: Chromium renders it without a JavaScript error (data-status=ready)" sh -c '
      grep -q "<body data-status=\"ready\"" dom.html || { grep -o "<body[^>]*>" dom.html; grep -o "JavaScript error: [^<]*" dom.html; exit 1; }
      grep -q "<div id=\"ms-errors\"></div>" dom.html || { grep -o "<div id=\"ms-errors\".\{0,300\}" dom.html; exit 1; }'
    t "html: selftest: flame graph search, click-to-zoom, sortable table" sh -c '
      grep -o "data-selftest=\"[^\"]*\"" dom.html | tee /dev/stderr | grep -q "frames=[1-9][0-9]* search=make_stacks matches=[1-9][0-9]* zoomed=true sorted=true"'
    t "html: the DOM holds the summary, the flame frames, tables, growth suspects and the tree" sh -c '
      for s in "pid 1000 — server" "pid 1001 — server" "329 KiB at 5.470 s" "grow_cache" "session_table" \
               "mktrace.c:" "Growth suspects (2)" "freed at exit" "Processes" "href=\"#proc-1\"" \
               "no END record: killed or crashed" "97.7 KiB in 100 blocks" "other sites"; do
        grep -qF "$s" dom.html || { echo "missing: $s"; exit 1; }
      done'
    chrome --screenshot="$W/normal.png" --window-size=1400,1000 "file://$W/normal.html" >/dev/null
    t "html: the screenshot is not blank (many colours, no colour over 90% of it)" sh -c "
      $PNGPY $T/excheck.py png '$W/normal.png' | tee /dev/stderr | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d[\"width\"] == 1400 and d[\"height\"] == 1000, d
assert d[\"colours\"] >= 200 and d[\"top_share\"] < 0.9, d'"
fi

# ---------------------------------------------------------------- a real program (the agent)
if [ -z "$MS" ]; then
    echo "skip - traces of a real program: no MEMSLEUTH argument"
elif ! gcc -O0 -g -o "$W/el" "$T/progs/export_leak.c"; then
    nok "build progs/export_leak.c"
else
    D="$W/d<b>ir"
    mkdir -p "$D"
    cp "$W/el" "$D/le<b>ak"
    rm -f real.trace
    "$MS" run --log-file=/dev/null --trace="$W/real.trace" -- "$D/le<b>ak" '<script>alert(1)</script>' 'x&y"z' '</script><!--' >/dev/null 2>&1
    t "real: memsleuth run wrote a trace" test -s real.trace
    "$A" report --format=json real.trace >real.json 2>/dev/null
    "$A" report --format=xml -o real.xml real.trace 2>/dev/null
    $EX xml real.xml >rx.json 2>&1
    if command -v valgrind >/dev/null 2>&1; then
        valgrind --xml=yes --xml-file="$W/vg.xml" --leak-check=full --show-leak-kinds=definite,possible \
            "$W/el" x >/dev/null 2>&1
        $EX xml vg.xml >vg.json 2>&1
        t "real: the XML's leak records = valgrind's own --xml=yes (kind, bytes, blocks, function)" python3 - <<'EOF'
import json
ours, vg = json.load(open("rx.json")), json.load(open("vg.json"))
def recs(d, skip_alloc):
    out = []
    for e in d["errors"]:
        fr = [f for f in e["frames"] if not (skip_alloc and f["fn"] in ("malloc", "calloc", "realloc"))]
        out.append((e["kind"], e["bytes"], e["blocks"], fr[0]["fn"], fr[0]["file"], fr[0]["line"]))
    return sorted(out)
a, b = recs(ours, False), recs(vg, True)
assert a == b, "\n".join(["ours:"] + [str(x) for x in a] + ["valgrind:"] + [str(x) for x in b])
assert len(a) == 3, a
EOF
    else
        echo "skip - real: comparison with valgrind --xml=yes: valgrind is not installed"
    fi
    JSONF="$W/real.json" EXF="$W/rx.json" t "real: XML argv and exe as given, escaped and parsed back" py \
        "D['exe'].endswith('/d<b>ir/le<b>ak')" \
        "D['args'] == ['<script>alert(1)</script>', 'x&y\"z', '</script><!--']" \
        "J['leaks']['definitely_lost']['bytes'] == sum(e['direct'] for e in D['errors'] if e['kind'] == 'Leak_DefinitelyLost')"
    "$A" report --format=collapsed --collapsed-value=allocs real.trace >rcol.txt 2>/dev/null
    JSONF="$W/real.json" COLF="$W/rcol.txt" t "real: collapsed: inlined frame expanded; calls add up" py \
        "any(f[-2:] == ['grow_cache', 'inl_alloc'] and v == 60 for f, v in C)" \
        "sum(v for _, v in C) == J['allocations']"
    # a function whose symbol holds ';' (a quoted assembler name): '_' in collapsed stacks
    printf '%s\n' '#include <stdlib.h>' \
        '__attribute__((noinline)) void *weird(size_t n) __asm__("\"we;ird\"");' \
        '__attribute__((noinline)) void *weird(size_t n) { return malloc(n); }' \
        'int main(void) { return weird(10) == 0; }' >semi.c
    if gcc -O0 -g -o semi semi.c 2>/dev/null; then
        rm -f semi.trace
        "$MS" run --log-file=/dev/null --trace="$W/semi.trace" -- ./semi >/dev/null 2>&1
        "$A" report --format=collapsed --collapsed-value=leaked semi.trace >semi.txt 2>/dev/null
        t "real: collapsed: ';' in a function name becomes '_'" sh -c \
            'grep -qE "(^|;)main;we_ird 10$" semi.txt && [ "$(wc -l <semi.txt)" -eq 1 ] || { cat semi.txt; exit 1; }'
    else
        echo "skip - real: ';' in a function name: the assembler does not take quoted names"
    fi
    "$A" report --format=pprof -o real.pb.gz real.trace 2>/dev/null
    $EX pprof real.pb.gz >rpp.json 2>&1
    JSONF="$W/real.json" EXF="$W/rpp.json" t "real: pprof: mappings of the program and libc with build-ids, sums" py \
        "D['problems'] == []" \
        "any(m['file'].endswith('le<b>ak') and len(m['build_id']) == 40 for m in D['mappings'])" \
        "any('libc.so' in m['file'] and m['build_id'] for m in D['mappings'])" \
        "D['sums']['alloc_objects/count'] == J['allocations'] and D['sums']['inuse_space/bytes'] == J['exit_live_bytes']" \
        "D['leaves']['inl_alloc'][0] == 60"
    "$A" report --format=html -o real.html real.trace 2>/dev/null
    t "real: html: no raw injected tag; the strings only JSON-escaped" python3 - <<'EOF'
h = open("real.html", encoding="utf-8").read()
for bad in ("<script>alert", "<b>", "</script><!--", "x&y"):
    assert bad not in h, bad
assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in h
assert "<title>memsleuth report: le&lt;b&gt;ak</title>" in h, h[:800]
EOF
    if [ -n "$CHROME" ]; then
        chrome --window-size=1400,1000 --dump-dom "file://$W/real.html" >rdom.html
        t "real: html in Chromium: the strings shown as text, no script ran" sh -c '
          grep -q "<body data-status=\"ready\"" rdom.html || { grep -o "<body[^>]*>" rdom.html; exit 1; }
          for s in "&lt;script&gt;alert(1)&lt;/script&gt;" "le&lt;b&gt;ak" "d&lt;b&gt;ir" "x&amp;y" "&lt;/script&gt;&lt;!--" \
                   "leak_block" "export_leak.c:" "inl_alloc"; do
            grep -qF "$s" rdom.html || { echo "missing: $s"; exit 1; }
          done
          ! grep -q "<b>" rdom.html && ! grep -q "<script>alert" rdom.html'
    fi
fi

# ---------------------------------------------------------------- labels: an xmalloc wrapper
# progs/wrapper_sites.c: read_config (40 x 100 B) and add_session (25 x 1000 B) both call
# malloc through xmalloc; each site must be named by its caller (text, JSON label_frame, the
# HTML legend and tables), also when the program is stripped (distinct addresses then)
if [ -z "$MS" ]; then
    echo "skip - labels of sites behind a wrapper: no MEMSLEUTH argument"
elif ! gcc -O0 -g -o "$W/ws" "$T/progs/wrapper_sites.c"; then
    nok "build progs/wrapper_sites.c"
else
    cp "$W/ws" "$W/ws-stripped" && strip "$W/ws-stripped"
    for v in ws ws-stripped; do
        rm -f "$W/$v.trace"
        "$MS" run --log-file=/dev/null --trace="$W/$v.trace" -- "$W/$v" >/dev/null 2>&1
        "$A" report --format=json "$W/$v.trace" >"$W/$v.json" 2>/dev/null
        "$A" report "$W/$v.trace" >"$W/$v.txt" 2>/dev/null
        "$A" report --format=html -o "$W/$v.html" "$W/$v.trace" 2>/dev/null
    done
    JSONF="$W/ws.json" t "labels: two sites behind xmalloc are named read_config and add_session (JSON label_frame)" py \
        "sorted((s['leaked_bytes'], s['leaked_blocks'], s['stack'][s['label_frame']]['function'], s['stack'][s['label_frame']]['file']) for s in J['top_leaked']) == [(4000, 40, 'read_config', 'wrapper_sites.c'), (25000, 25, 'add_session', 'wrapper_sites.c')]" \
        "all(s['stack'][0]['function'] == 'xmalloc' and s['label_frame'] == 1 for s in J['top_leaked'])"
    t "labels: the text report names them by their callers, not xmalloc" sh -c "
      sed -n '/Top sites by leaked/,/Top sites by allocation/p' '$W/ws.txt' >'$W/ws.sec'
      grep -qE ' 24.4 KiB +25  definite  add_session \(wrapper_sites.c:[0-9]+\)\$' '$W/ws.sec' &&
      grep -qE ' 3.91 KiB +40  definite  read_config \(wrapper_sites.c:[0-9]+\)\$' '$W/ws.sec' &&
      ! grep -q xmalloc '$W/ws.sec' || { cat '$W/ws.txt'; exit 1; }"
    JSONF="$W/ws-stripped.json" t "labels: stripped: two different frames after the shared xmalloc return address" py \
        "len(J['top_leaked']) == 2" \
        "all(s['stack'][0]['function'] is None and s['label_frame'] == 1 for s in J['top_leaked'])" \
        "J['top_leaked'][0]['stack'][0]['address'] == J['top_leaked'][1]['stack'][0]['address']" \
        "J['top_leaked'][0]['stack'][1]['address'] != J['top_leaked'][1]['stack'][1]['address']"
    t "labels: stripped: the text labels differ" sh -c "
      sed -n '/Top sites by leaked/,/Top sites by allocation/p' '$W/ws-stripped.txt' | grep -E 'definite  0x[0-9a-f]+ \(in ws-stripped\)\$' | awk '{print \$NF, \$(NF-2)}' | sort -u | wc -l | grep -qx 2 || { cat '$W/ws-stripped.txt'; exit 1; }"
    t "labels: the HTML chart legend (series labels) names the callers" python3 - "$W/ws.html" <<'EOF2'
import json, re, sys
h = open(sys.argv[1], encoding="utf-8").read()
d = json.loads(re.search(r'<script type="application/json" id="ms-data">(.*?)</script>', h, re.S).group(1))
labels = [s["label"] for s in d["extra"][0]["series"]]
assert any(l.startswith("add_session (wrapper_sites.c:") for l in labels), labels
assert any(l.startswith("read_config (wrapper_sites.c:") for l in labels), labels
assert not any(l.startswith("xmalloc") for l in labels), labels
EOF2
    if [ -n "$CHROME" ]; then
        chrome --window-size=1400,1000 --dump-dom "file://$W/ws.html" >wsdom.html
        chrome --screenshot="$W/ws.png" --window-size=1400,1400 "file://$W/ws.html" >/dev/null
        t "labels: html in Chromium: legend and table cells name read_config and add_session" python3 - "$W/wsdom.html" <<'EOF2'
import re, sys
h = open(sys.argv[1], encoding="utf-8").read()
assert '<body data-status="ready"' in h, re.findall(r"<body[^>]*>", h)
legend = re.findall(r'<span class="sw"[^>]*></span>([^<]*)</span>', h)
assert any(l.startswith("add_session (wrapper_sites.c:") for l in legend), legend
assert any(l.startswith("read_config (wrapper_sites.c:") for l in legend), legend
cells = re.findall(r'<td class=" mono">([^<]*)</td>', h)
assert cells.count("add_session") >= 2 and cells.count("read_config") >= 2, cells
assert "xmalloc" not in cells, cells
EOF2
    fi
fi

# ---------------------------------------------------------------- html: the Threads table
if [ -n "$MS" ] && [ -n "$CHROME" ] && gcc -O0 -g -pthread -o "$W/tn" "$T/progs/threads_named.c"; then
    rm -f "$W/tn.trace"
    "$MS" run --log-file=/dev/null --trace="$W/tn.trace" -- "$W/tn" >/dev/null 2>&1
    "$A" report --format=html -o "$W/tn.html" "$W/tn.trace" 2>/dev/null
    chrome --window-size=1400,1000 --dump-dom "file://$W/tn.html" >tndom.html
    t "threads: html in Chromium: the Threads table, one row per named thread" python3 - "$W/tndom.html" <<'EOF2'
import re, sys
h = open(sys.argv[1], encoding="utf-8").read()
assert '<body data-status="ready"' in h, re.findall(r"<body[^>]*>", h)
assert "Threads (4; each with the blocks it allocated" in h
rows = [re.findall(r"<td[^>]*>([^<]*)</td>", r) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", h)]
by = {r[1]: r for r in rows if len(r) == 10}
assert by["alpha"][2:] == ["101", "97.7 KiB", "60", "97.7 KiB", by["alpha"][6], "39.1 KiB", "39.1 KiB", "39.1 KiB"], by.get("alpha")
assert by["gamma-late"][2:4] == ["10", "2.93 KiB"] and "boss" in by and "beta" in by, by
assert "leaked from sites several threads allocated from: 154 B" in h
EOF2
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
