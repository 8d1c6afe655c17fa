#!/usr/bin/env bash
# run_security.sh MEMSLEUTH - the security promises of issue 7, each checked:
#  A. every file memsleuth creates is 0600 (umask 000 during the runs): trace, --json,
#     --log-file (agent and launcher), `report -o` in every format, `diff -o`, the
#     control socket (in a 0700 folder);
#  B. a symbolic link planted in place of any of them is not followed (the file it
#     points to is untouched, a dangling one is not created): --json, --log-file (agent
#     and launcher), --trace, `report -o` (7 formats), `diff -o`, the control folder;
#  C. in a sticky shared folder (1777, like /tmp) a file of another user (mode 0666, so
#     only memsleuth's own check protects it) is never written: --json, --log-file (agent
#     and launcher), --trace, `report -o`; as a non-root user and as root; a FIFO of
#     another user (no hang, its reader gets nothing); a hard link to a file elsewhere;
#  D. the snapshot control socket serves only its own user: another user gets "permission
#     denied", and with CAP_DAC_OVERRIDE (so it reaches the socket) a refusal from the
#     agent's peer check; root is served (it can read any process's memory anyway);
#  E. heap contents never leave the process: a secret kept in leaked, reachable, freed,
#     realloc'd and indirectly lost blocks appears in no file written by `memsleuth run`
#     (trace, JSON, log, live snapshots) nor by `memsleuth report` in any format;
#  F. `memsleuth report --format=html` (and xml) shows a function name and a source path
#     holding markup as text (Chromium's DOM when chromium is installed).
# The program always behaves as without memsleuth (same stdout, same status) and
# memsleuth says what it refused in exactly one line.  C and D need root (setpriv to
# uids 4242-4244): "skip" lines otherwise.  Prints "ok/not ok/skip" lines and
# "N passed, M failed".
set -u
MS=$(realpath "$1")
AGENT=${MEMSLEUTH_AGENT:-$(dirname "$MS")/libmemsleuth_agent.so}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/ms-sec.XXXXXX)
chmod 711 "$T"   # other uids run programs from here
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
cd "$T" || exit 1
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() {
    n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"
    [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -20
}
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi; }
skip() { echo "skip - $1"; }
# native PROG...: stdout and status of a run without memsleuth; same ST: the traced run's are equal
native() { "$@" >"$T/n.out" 2>/dev/null; echo $? >"$T/n.st"; }
same() { [ "$1" -eq "$(cat "$T/n.st")" ] && cmp -s "$T/n.out" "$T/out"; }
nlines() { grep -c '^memsleuth' "$1"; }
# one ERRFILE WORDS...: exactly one line from memsleuth, holding every WORD
one() { local f=$1; shift; [ "$(wc -l <"$f")" -eq 1 ] || return 1; for w in "$@"; do grep -qF -- "$w" "$f" || return 1; done; }

gcc -O0 -g -o "$T/leaks" "$HERE/../e2e/progs/leaks.c" || exit 1
gcc -O0 -g -o "$T/sleeper" "$HERE/../faults/progs/sleeper.c" || exit 1
gcc -O0 -g -o "$T/secret" "$HERE/progs/secret.c" || exit 1
native "$T/leaks"
LEAKS_REPORT="definitely lost: 12,545 bytes in 2 blocks"
FORMATS="text json dump html pprof collapsed xml"

# ------------------------------------------------------------------ A. 0600
mkdir -p "$T/m" && chmod 777 "$T/m"
(umask 000 && cd "$T/m" && "$MS" run --trace="$T/m/t.%p.trace" --json="$T/m/j.%p.json" --log-file="$T/m/l.%p.log" -- "$T/leaks" >/dev/null 2>"$T/e")
(umask 000 && "$MS" run --log-file="$T/m/shared.log" --trace=no -- "$T/leaks" >/dev/null 2>>"$T/e")
tr=$(ls "$T"/m/t.*.trace 2>/dev/null | head -1)
for f in $FORMATS; do (umask 000 && "$MS" report --format=$f -o "$T/m/r.$f" "$tr" 2>>"$T/e"); done
(umask 000 && "$MS" diff -o "$T/m/d.txt" "$tr" "$tr" 2>>"$T/e")
stat -c '%a %n' "$T"/m/* >"$T/modes"
check "created 0600 under umask 000: trace, JSON, log (agent and launcher), report -o x7, diff -o (12 files)" \
    $([ "$(wc -l <"$T/modes")" -eq 12 ] && [ "$(grep -c '^600 ' "$T/modes")" -eq 12 ] && [ ! -s "$T/e" ] && echo 0 || echo 1) "$T/modes"
mkdir -p "$T/rtA" && chmod 777 "$T/rtA"
(umask 000 && XDG_RUNTIME_DIR="$T/rtA" exec "$MS" run --trace=no -- "$T/sleeper" >"$T/out" 2>"$T/e") &
l=$!; pids+=($l)
for _ in $(seq 1 100); do grep -q ready "$T/out" 2>/dev/null && break; sleep 0.1; done
sp=$(pgrep -P $l sleeper)
sm=$(stat -c %a "$T/rtA/memsleuth/$sp.sock" 2>/dev/null); dm=$(stat -c %a "$T/rtA/memsleuth" 2>/dev/null)
kill -TERM $l; wait $l
check "control socket 0600 in a 0700 folder under umask 000 (got ${sm:-none} in ${dm:-none})" \
    $([ "$sm" = 600 ] && [ "$dm" = 700 ] && echo 0 || echo 1) "$T/e"

# ------------------------------------------------------------------ B. planted symlinks
echo keep >"$T/victim"
plant() { rm -f "$1" && ln -s "$T/victim" "$1"; }
victim_ok() { [ "$(cat "$T/victim")" = keep ] && [ -L "$1" ] && [ "$(readlink "$1")" = "$T/victim" ]; }
plant "$T/ln.json"; ln -sf "$T/made-by-follow.json" "$T/dangle.json"
"$MS" run --trace=no --json="$T/ln.json" -- "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
"$MS" run --trace=no --json="$T/dangle.json" -- "$T/leaks" >/dev/null 2>"$T/e2"
check "symlink as --json: not followed (target kept, a dangling one not created), one line, same output and status" \
    $(same $st && victim_ok "$T/ln.json" && [ ! -e "$T/made-by-follow.json" ] && [ "$(nlines "$T/e")" -eq 1 ] &&
      grep -q "^memsleuth: cannot write '$T/ln.json': it is a symbolic link (not followed)" "$T/e" && grep -q "$LEAKS_REPORT" "$T/e" &&
      [ "$(nlines "$T/e2")" -eq 1 ] && echo 0 || echo 1) "$T/e"
plant "$T/ln.log"
LD_PRELOAD="$AGENT" MEMSLEUTH_OPTIONS="--trace=no"$'\x1f'"--log-file=$T/ln.log" "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
check "symlink as the agent's --log-file: not followed, one line, the report on stderr, same output and status" \
    $(same $st && victim_ok "$T/ln.log" && [ "$(nlines "$T/e")" -eq 1 ] && grep -q "cannot write '$T/ln.log': it is a symbolic link" "$T/e" &&
      grep -q "$LEAKS_REPORT" "$T/e" && echo 0 || echo 1) "$T/e"
"$MS" run --log-file="$T/ln.log" -- "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
check "symlink as the launcher's shared --log-file: not followed, exit 2 with one line, program not started" \
    $([ $st -eq 2 ] && [ ! -s "$T/out" ] && victim_ok "$T/ln.log" && one "$T/e" "$T/ln.log" "symbolic link" && echo 0 || echo 1) "$T/e"
plant "$T/ln.trace"
"$MS" run --trace="$T/ln.trace" -- "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
"$MS" report "$T/ln.trace.1" >"$T/r" 2>"$T/re"; rst=$?
check "symlink as --trace: not followed (the trace goes to ln.trace.1, 0600), same output and status" \
    $(same $st && victim_ok "$T/ln.trace" && [ $rst -eq 0 ] && grep -q "big_leak" "$T/r" && [ "$(stat -c %a "$T/ln.trace.1")" = 600 ] &&
      [ "$(nlines "$T/e")" -eq 0 ] && echo 0 || echo 1) "$T/e"
okall=0
for f in $FORMATS; do
    plant "$T/ln.$f"
    "$MS" report --format=$f -o "$T/ln.$f" "$tr" >"$T/out" 2>"$T/e"; st=$?
    if ! { [ $st -eq 1 ] && victim_ok "$T/ln.$f" && one "$T/e" "memsleuth report: cannot write '$T/ln.$f': it is a symbolic link"; }; then
        okall=1; echo "# --format=$f: status $st"; cat "$T/e"
    fi
done
plant "$T/ln.diff"
"$MS" diff -o "$T/ln.diff" "$tr" "$tr" >"$T/out" 2>"$T/e"; st=$?
[ $st -eq 1 ] && victim_ok "$T/ln.diff" && one "$T/e" "memsleuth diff: cannot write '$T/ln.diff'" || { okall=1; cat "$T/e"; }
check "symlink as report -o (7 formats) and diff -o: not followed, exit 1 with one line" $okall
mkdir -p "$T/rtB" "$T/elsewhere" && chmod 700 "$T/elsewhere" && ln -s "$T/elsewhere" "$T/rtB/memsleuth"
XDG_RUNTIME_DIR="$T/rtB" "$MS" run --trace=no -- "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
check "symlink as the control folder: not used (no socket behind it), one line, same output and status" \
    $(same $st && [ -z "$(ls -A "$T/elsewhere")" ] && [ "$(nlines "$T/e")" -eq 1 ] &&
      grep -q "^memsleuth: cannot use the control folder '$T/rtB/memsleuth'" "$T/e" && echo 0 || echo 1) "$T/e"

# ------------------------------------------------------------------ C. another user's file, sticky folder
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    runas() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
    mkdir -p "$T/shared" && chmod 1777 "$T/shared"
    theirs() { printf 'theirs\n' >"$1" && chown 4242:4242 "$1" && chmod 666 "$1"; }
    untouched() { [ "$(cat "$1")" = theirs ] && [ "$(stat -c %u "$1")" = 4242 ]; }
    # with fs.protected_regular the kernel refuses first (EACCES); without it memsleuth's own check
    if [ "$(cat /proc/sys/fs/protected_regular 2>/dev/null || echo 0)" = 0 ]; then WHY="belongs to another user"; else WHY="'"; fi
    for who in 4243 0; do
        theirs "$T/shared/v.json"
        runas $who "$MS" run --trace=no --json="$T/shared/v.json" -- "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
        check "uid $who, another user's file as --json in a sticky folder: untouched, one line, same output and status" \
            $(same $st && untouched "$T/shared/v.json" && [ "$(nlines "$T/e")" -eq 1 ] && grep -q "'$T/shared/v.json'.*$WHY" "$T/e" &&
              grep -q "$LEAKS_REPORT" "$T/e" && echo 0 || echo 1) "$T/e"
    done
    theirs "$T/shared/v.log"
    runas 4243 env LD_PRELOAD="$AGENT" MEMSLEUTH_OPTIONS="--trace=no"$'\x1f'"--log-file=$T/shared/v.log" "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
    check "another user's file as the agent's --log-file: untouched, one line, the report on stderr" \
        $(same $st && untouched "$T/shared/v.log" && [ "$(nlines "$T/e")" -eq 1 ] && grep -q "$WHY" "$T/e" && grep -q "$LEAKS_REPORT" "$T/e" &&
          echo 0 || echo 1) "$T/e"
    runas 4243 "$MS" run --log-file="$T/shared/v.log" -- "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
    check "another user's file as the launcher's --log-file: untouched, exit 2 with one line" \
        $([ $st -eq 2 ] && [ ! -s "$T/out" ] && untouched "$T/shared/v.log" && one "$T/e" "$T/shared/v.log" && echo 0 || echo 1) "$T/e"
    theirs "$T/shared/v.trace"
    runas 4243 "$MS" run --trace="$T/shared/v.trace" -- "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
    check "another user's file as --trace: untouched, the trace goes to v.trace.1 (ours, 0600)" \
        $(same $st && untouched "$T/shared/v.trace" && [ "$(stat -c '%u %a' "$T/shared/v.trace.1")" = "4243 600" ] && echo 0 || echo 1) "$T/e"
    okall=0
    for f in html json; do
        theirs "$T/shared/v.$f.out"
        runas 4243 "$MS" report --format=$f -o "$T/shared/v.$f.out" "$T/shared/v.trace.1" >"$T/out" 2>"$T/e"; st=$?
        [ $st -eq 1 ] && untouched "$T/shared/v.$f.out" && one "$T/e" "cannot write '$T/shared/v.$f.out'" || { okall=1; cat "$T/e"; }
    done
    check "another user's file as report -o (html, json): untouched, exit 1 with one line" $okall
    # a FIFO of another user, with a reader waiting: no hang, the reader gets nothing
    mkfifo "$T/shared/f.json" && chown 4242:4242 "$T/shared/f.json" && chmod 666 "$T/shared/f.json"
    runas 4242 sh -c "cat '$T/shared/f.json' >'$T/shared/got'" &
    rd=$!; pids+=($rd)
    sleep 0.2
    timeout 60 setpriv --reuid=4243 --regid=4243 --clear-groups "$MS" run --trace=no --json="$T/shared/f.json" -- "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
    kill $rd 2>/dev/null; wait $rd 2>/dev/null
    check "another user's FIFO as --json: no hang, nothing written to it, one line, same output and status" \
        $(same $st && [ -e "$T/shared/got" ] && [ ! -s "$T/shared/got" ] && [ "$(nlines "$T/e")" -eq 1 ] && grep -q "f.json'.*belongs to another user" "$T/e" && echo 0 || echo 1) "$T/e"
    # a hard link planted in the shared folder to a file of ours elsewhere
    echo keep >"$T/victim2" && ln "$T/victim2" "$T/shared/h.json"
    "$MS" run --trace=no --json="$T/shared/h.json" -- "$T/leaks" >"$T/out" 2>"$T/e"; st=$?
    check "a hard link to another file as --json: not written through, one line, same output and status" \
        $(same $st && [ "$(cat "$T/victim2")" = keep ] && [ "$(nlines "$T/e")" -eq 1 ] && grep -q "h.json': it has other hard links" "$T/e" &&
          echo 0 || echo 1) "$T/e"
else
    skip "another user's files in a sticky folder: needs root and setpriv"
fi

# ------------------------------------------------------------------ D. the control socket: same user only
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    mkdir -p "$T/rtD" && chown 4243:4243 "$T/rtD" && chmod 755 "$T/rtD"
    export XDG_RUNTIME_DIR="$T/rtD"
    setpriv --reuid=4243 --regid=4243 --clear-groups "$MS" run --trace=no -- "$T/sleeper" >"$T/out" 2>"$T/e" &
    l=$!; pids+=($l)
    for _ in $(seq 1 100); do grep -q ready "$T/out" 2>/dev/null && break; sleep 0.1; done
    sp=$(pgrep -P $l sleeper)
    sock="$T/rtD/memsleuth/$sp.sock"
    runas 4244 "$MS" snapshot "$sp" >"$T/o1" 2>"$T/e1"; r1=$?
    check "another user: 'permission denied', exit 1, no snapshot" \
        $([ $r1 -eq 1 ] && [ ! -s "$T/o1" ] && one "$T/e1" "process $sp: permission denied" && echo 0 || echo 1) "$T/e1"
    setpriv --reuid=4244 --regid=4244 --clear-groups --inh-caps=+dac_override --ambient-caps=+dac_override \
        "$MS" snapshot "$sp" >"$T/o2" 2>"$T/e2"; r2=$?
    check "another user who reaches the socket (CAP_DAC_OVERRIDE): refused by the peer check, exit 1, no snapshot" \
        $([ $r2 -eq 1 ] && [ ! -s "$T/o2" ] && one "$T/e2" "error: refused: not the same user" && echo 0 || echo 1) "$T/e2"
    runas 4243 "$MS" snapshot "$sp" >"$T/o3" 2>"$T/e3"; r3=$?
    check "the same user is served: SNAPSHOT 1, the 1000 reachable bytes of sleeper.c:10" \
        $([ $r3 -eq 0 ] && grep -q "SNAPSHOT 1 (command)" "$T/o3" && grep -q " 1,000 bytes in 1 blocks are still reachable" "$T/o3" &&
          grep -q "main (sleeper.c:10)" "$T/o3" && echo 0 || echo 1) "$T/o3"
    "$MS" snapshot "$sp" >"$T/o4" 2>"$T/e4"; r4=$?
    check "root is served too (SNAPSHOT 2): root may read any process's memory anyway" \
        $([ $r4 -eq 0 ] && grep -q "SNAPSHOT 2 (command)" "$T/o4" && echo 0 || echo 1) "$T/e4"
    kill -TERM $l; wait $l
    check "the socket is gone when the program ends; the program reported normally" \
        $([ ! -e "$sock" ] && grep -q "LEAK SUMMARY" "$T/e" && echo 0 || echo 1) "$T/e"
    unset XDG_RUNTIME_DIR
else
    skip "the control socket refusing another uid: needs root and setpriv"
fi

# ------------------------------------------------------------------ E. heap contents stay in the process
SECRET="ms-S3cr3t-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
mkdir -p "$T/s"
printf '%s\n' "$SECRET" >"$T/secret.in"
(cd "$T/s" && exec "$MS" run --trace="$T/s/s.%p.trace" --json="$T/s/s.%p.json" --log-file="$T/s/s.%p.log" \
    --show-leak-kinds=all --gen-suppressions=all --track-fds=yes --keep-stacktraces=alloc-and-free \
    --snapshot-interval=0.05 -- "$T/secret" wait <"$T/secret.in" >"$T/s/out" 2>"$T/s/err") &
l=$!; pids+=($l)
for _ in $(seq 1 100); do grep -q ready "$T/s/out" 2>/dev/null && break; sleep 0.1; done
sleep 0.3
# the launcher's child: while a snapshot stops the threads, the agent's tracer is a second
# process with the same command line (newer, so pgrep -n would pick it)
# (the subshell exec'd memsleuth: $l is the launcher)
sp=$(pgrep -P $l -f "^$T/secret wait" | head -1)
[ -n "$sp" ] || echo "# no secret process found" >&2
"$MS" snapshot "$sp" >"$T/s/snap.out" 2>&1
wait $l; st=$?
str=$(ls "$T"/s/s.*.trace | head -1)
for f in $FORMATS; do "$MS" report --format=$f -o "$T/s/rep.$f" --stacks "$str" 2>>"$T/s/rep.err"; done
"$MS" diff --format=json -o "$T/s/diff.json" "$str" "$str" 2>>"$T/s/rep.err"
# as text, as hex, and as the little-endian 64-bit words it is made of
python3 - "$T/s" "$SECRET" <<'PY' >"$T/j" 2>&1
import glob, gzip, json, os, struct, sys
d, s = sys.argv[1], sys.argv[2].encode()
forms = [s, s.hex().encode(), s.hex().upper().encode()]
forms += [str(struct.unpack("<Q", s[i:i + 8])[0]).encode() for i in range(0, len(s) - 7, 8)]
forms += [("%x" % struct.unpack("<Q", s[i:i + 8])[0]).encode() for i in range(0, len(s) - 7, 8)]
files = sorted(glob.glob(d + "/*"))
for f in files:
    b = open(f, "rb").read()
    if f.endswith(".pprof"):
        b = gzip.decompress(b)
    for x in forms:
        assert x not in b, ("secret found", f, x)
j = json.load(open(glob.glob(d + "/s.*.json")[0]))["summary"]
n = len(s) + 1
assert j["definitely_lost"] == {"bytes": (n + 40) + (n + 4000) + 16, "blocks": 3}, j
assert j["indirectly_lost"] == {"bytes": 4 * n, "blocks": 1}, j
assert j["still_reachable"]["bytes"] >= n, j
snaps = open(d + "/snap.out").read()
assert "SNAPSHOT" in snaps, snaps
print("no secret in", len(files), "files")
PY
check "heap contents never leave the process: the secret in none of the files of run, snapshot, report x7, diff" \
    $([ $st -eq 5 ] && [ "$(cat "$T/s/out")" = "secret: ready" ] && grep -q "no secret in" "$T/j" && echo 0 || echo 1) "$T/j"

# ------------------------------------------------------------------ F. HTML (and XML) escaping
mkdir -p "$T/d<b>"
SRC="$T/h<i>tml&esc.c"
cp "$HERE/progs/html_escape.c" "$SRC"
if gcc -O0 -g -o "$T/d<b>/e&v<i>l" "$SRC" 2>"$T/e"; then
    "$MS" run --log-file=/dev/null --trace="$T/h.trace" -- "$T/d<b>/e&v<i>l" '<script>alert(3)</script>' >/dev/null 2>&1
    "$MS" report --format=html -o "$T/h.html" "$T/h.trace" 2>"$T/e"; r1=$?
    "$MS" report --format=xml -o "$T/h.xml" "$T/h.trace" 2>>"$T/e"; r2=$?
    python3 - "$T" <<'PY' >"$T/j" 2>&1
import sys, xml.etree.ElementTree as ET
t = sys.argv[1]
h = open(t + "/h.html", encoding="utf-8").read()
for raw in ("<img", "<i>", "<b>", "<script>alert", "onerror=alert(7)>"):
    assert raw not in h, ("raw markup in the page", raw)
for esc in ("\\u003cimg src=x onerror=alert(7)\\u003e\\u0026amp;", "h\\u003ci\\u003etml\\u0026esc.c",
            "\\u003cscript\\u003ealert(3)\\u003c/script\\u003e"):
    assert esc in h, ("missing", esc)
x = ET.parse(t + "/h.xml").getroot()
fns = [f.text for f in x.iter("fn")]
files = [f.text for f in x.iter("file")]
assert "<img src=x onerror=alert(7)>&amp;" in fns, fns
assert "h<i>tml&esc.c" in files, files
print("escaped ok")
PY
    check "report html/xml: a function name and a source path holding markup stay text (exact escaped forms)" \
        $([ $r1 -eq 0 ] && [ $r2 -eq 0 ] && grep -q "escaped ok" "$T/j" && echo 0 || echo 1) "$T/j"
    CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
    if [ -n "$CHROME" ]; then
        timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --user-data-dir="$T/chrome" --window-size=1400,1000 \
            --dump-dom "file://$T/h.html" >"$T/dom.html" 2>/dev/null
        check "report html in Chromium: the function name and path shown as text, no element made of them" \
            $(grep -q '<body data-status="ready"' "$T/dom.html" && grep -qF '&lt;img src=x onerror=alert(7)&gt;&amp;amp;' "$T/dom.html" &&
              grep -qF 'h&lt;i&gt;tml&amp;esc.c' "$T/dom.html" && ! grep -q '<img' "$T/dom.html" && ! grep -q '<i>' "$T/dom.html" &&
              echo 0 || echo 1) "$T/dom.html"
    else
        skip "report html in Chromium: chromium is not installed"
    fi
else
    bad "building a program from '$SRC'" "$T/e"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
