#!/usr/bin/env bash
# run_real.sh MEMSLEUTH - real Debian programs under memsleuth, each bounded in
# time and requests, servers on loopback ports started and stopped here.
# Each must behave exactly as without memsleuth (same output, same status),
# and its report must be sane: no definitely lost block where the program
# frees everything at a clean shutdown, and where a real leak is known, it
# is named as valgrind memcheck names it (see "known leaks" below; valgrind
# runs here too when installed: MS_REAL_VALGRIND=0 skips it).  Last, the
# status --error-exitcode gives with a leak and without.  Prints "ok/not ok"
# lines and "N passed, M failed".
set -u
MS=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/ms-real.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 1   # trace files of the runs land here
[ -n "${KEEP_REAL:-}" ] && trap - EXIT
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() {
    n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"
    [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -30
}
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi; }
# summary NAME LOGS...: the leak summary lines of every process, for the log
lost_sum() { # total definitely lost bytes over the given logs
    cat "$@" 2>/dev/null | sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' | tr -d , | awk '{s += $1} END {print s + 0}'
}
reports() { ls "$@" 2>/dev/null | wc -l; }
# Debian's python3 by its path: a "python3" first in PATH may be a wrapper
# (pyenv's shim costs 0.8 s a start on the test machine)
PY=/usr/bin/python3
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # wait_port PORT SECONDS
    for _ in $(seq 1 $(($2 * 10))); do
        $PY -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),timeout=0.2)" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
wait_gone() { # wait_gone PID SECONDS
    for _ in $(seq 1 $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}

# ---- sqlite3 running a script (inserts, queries, deletes)
if command -v sqlite3 >/dev/null; then
    sh "$HERE/../../../shared/bench/workloads/gen_sql.sh" 20000 >"$T/q.sql" 2>/dev/null ||
        printf 'create table t(a);\ninsert into t values(1);\nselect * from t;\n' >"$T/q.sql"
    sqlite3 :memory: <"$T/q.sql" >"$T/native" 2>&1; s1=$?
    # --error-exitcode=42: a leak would change the status; none may
    "$MS" run --error-exitcode=42 --log-file="$T/sqlite.%p.log" -- sqlite3 :memory: <"$T/q.sql" >"$T/traced" 2>&1; s2=$?
    check "sqlite3 script: same output and status (also under --error-exitcode=42), nothing lost" \
        $([ $s1 -eq $s2 ] && cmp -s "$T/native" "$T/traced" && [ "$(lost_sum "$T"/sqlite.*.log)" -eq 0 ] && [ "$(reports "$T"/sqlite.*.log)" -ge 1 ] && echo 0 || echo 1) "$T/traced"
fi

# ---- python3, allocation heavy
cat >"$T/alloc.py" <<'EOF'
import json, collections
d = collections.defaultdict(list)
for i in range(60000):
    d[i % 977].append({"k": i, "v": str(i) * 3})
s = json.dumps({str(k): len(v) for k, v in d.items()})
print(len(s), sum(len(v) for v in d.values()))
EOF
$PY "$T/alloc.py" >"$T/native" 2>&1; s1=$?
"$MS" run --error-exitcode=42 --errors-for-leak-kinds=definite --log-file="$T/py.%p.log" -- $PY "$T/alloc.py" >"$T/traced" 2>&1; s2=$?
check "python3 allocation-heavy script: same output and status (also under --error-exitcode=42 for definite leaks), nothing definitely lost" \
    $([ $s1 -eq $s2 ] && cmp -s "$T/native" "$T/traced" && [ "$(reports "$T"/py.*.log)" -ge 1 ] && [ "$(lost_sum "$T"/py.*.log)" -eq 0 ] &&
      echo 0 || echo 1) "$T/traced"

# ---- git on a small repository
mkdir -p "$T/repo"
(cd "$T/repo" && git init -q && for i in 1 2 3 4 5; do echo "line $i" >>f; git add f; git -c user.email=a@b -c user.name=n commit -qm "c$i"; done)
(cd "$T/repo" && git log --stat && git diff HEAD~3 && git gc -q) >"$T/native" 2>&1; s1=$?
(cd "$T/repo" && "$MS" run --log-file="$T/git.%p.log" -- git log --stat && "$MS" run --log-file="$T/git.%p.log" -- git diff HEAD~3 &&
    "$MS" run --log-file="$T/git.%p.log" -- git gc -q) >"$T/traced" 2>&1; s2=$?
check "git log/diff/gc (forks and execs children): same output and status" \
    $([ $s1 -eq $s2 ] && cmp -s "$T/native" "$T/traced" && [ "$(reports "$T"/git.*.log)" -ge 3 ] && echo 0 || echo 1) "$T/traced"

# ---- gcc compiling a file (driver execs cc1 and as: every process traced)
cat >"$T/hello.c" <<'EOF'
#include <stdio.h>
int main(void) { printf("compiled\n"); return 0; }
EOF
gcc -O2 -o "$T/hello.native" "$T/hello.c" >"$T/native" 2>&1; s1=$?
"$MS" run --log-file="$T/gcc.%p.log" -- gcc -O2 -o "$T/hello" "$T/hello.c" >"$T/out" 2>&1; s2=$?
check "gcc compiles under memsleuth: same messages and status, the same executable byte for byte, every exec'd process reports" \
    $([ $s1 -eq $s2 ] && cmp -s "$T/native" "$T/out" && cmp -s "$T/hello.native" "$T/hello" && [ "$("$T/hello")" = compiled ] &&
      [ "$(reports "$T"/gcc.*.log)" -ge 3 ] && echo 0 || echo 1) "$T/out"

# ---- a C++ program that throws and catches
cat >"$T/throw.cc" <<'EOF'
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>
static int depth(int n) {
    std::vector<std::string> v(n, std::string(40, 'x'));
    if (n == 0) throw std::runtime_error("bottom");
    return depth(n - 1) + (int)v.size();
}
int main() {
    int caught = 0;
    for (int i = 0; i < 2000; i++) {
        try { depth(i % 30); } catch (const std::exception &e) { caught++; }
    }
    std::printf("caught %d\n", caught);
    return 0;
}
EOF
g++ -O2 -o "$T/throw" "$T/throw.cc"
"$T/throw" >"$T/native"; s1=$?
"$MS" run --log-file="$T/throw.%p.log" -- "$T/throw" >"$T/traced" 2>&1; s2=$?
check "C++ throw/catch 2000 times: same output, nothing lost" \
    $([ $s1 -eq $s2 ] && cmp -s "$T/native" "$T/traced" && [ "$(lost_sum "$T"/throw.*.log)" -eq 0 ] && echo 0 || echo 1) "$T/throw.$(ls "$T" | sed -n 's/^throw\.\([0-9]*\)\.log$/\1/p' | head -1).log"

# ---- redis-server under redis-benchmark, shut down with SHUTDOWN
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
    port=$(free_port)
    REDIS_PORT=$port timeout 120 sh "$HERE/../../../shared/bench/workloads/redis_run.sh" 20000 \
        "$MS" run --log-file="$T/redis.%p.log" -- >"$T/redis.out" 2>&1; s2=$?
    check "redis-server: 20k requests served, clean shutdown, nothing definitely lost" \
        $([ $s2 -eq 0 ] && grep -q "requests per second" "$T/redis.out" && [ "$(reports "$T"/redis.*.log)" -ge 1 ] && [ "$(lost_sum "$T"/redis.*.log)" -eq 0 ] && echo 0 || echo 1) "$T/redis.out"
else
    bad "redis-server/redis-benchmark missing (scripts/deps.sh installs them)"
fi

# ---- nginx: daemon, master and 2 workers, 300 requests, graceful quit
if [ -x /usr/sbin/nginx ] && command -v curl >/dev/null; then
    port=$(free_port)
    mkdir -p "$T/ngx/html" "$T/ngx/logs" "$T/ngx/tmp" && echo "hello from nginx" >"$T/ngx/html/index.html"
    cat >"$T/ngx/nginx.conf" <<EOF
worker_processes 2;
pid $T/ngx/nginx.pid;
error_log $T/ngx/logs/error.log;
events { worker_connections 128; }
http {
  access_log off;
  client_body_temp_path $T/ngx/tmp; proxy_temp_path $T/ngx/tmp; fastcgi_temp_path $T/ngx/tmp;
  uwsgi_temp_path $T/ngx/tmp; scgi_temp_path $T/ngx/tmp;
  server { listen 127.0.0.1:$port; root $T/ngx/html; }
}
EOF
    # the workers drop root for an unprivileged user: their reports need a writable folder
    mkdir -p "$T/ngxlogs" && chmod 1777 "$T/ngxlogs" && chmod 711 "$T"
    "$MS" run --log-file="$T/ngxlogs/nginx.%p.log" -- /usr/sbin/nginx -c "$T/ngx/nginx.conf" -p "$T/ngx" >"$T/ngx.out" 2>&1; s1=$?
    okreq=0
    if [ $s1 -eq 0 ] && wait_port "$port" 20; then
        for _ in $(seq 1 300); do
            [ "$(curl -s --max-time 5 "http://127.0.0.1:$port/")" = "hello from nginx" ] && okreq=$((okreq + 1))
        done
    fi
    mpid=$(cat "$T/ngx/nginx.pid" 2>/dev/null)
    [ -n "$mpid" ] && kill -QUIT "$mpid" 2>/dev/null && wait_gone "$mpid" 30
    check "nginx: 300/300 requests answered, master and workers report at exit" \
        $([ $okreq -eq 300 ] && [ "$(reports "$T"/ngxlogs/nginx.*.log)" -ge 4 ] && ! grep -q "memsleuth: cannot write" "$T/ngx/logs/error.log" && ! kill -0 "${mpid:-1}" 2>/dev/null && echo 0 || echo 1) "$T/ngx.out"
else
    bad "nginx or curl missing (scripts/deps.sh installs them)"
fi

# ---- memcached: 4 threads, 3000 sets and 1000 gets, SIGTERM
if [ -x /usr/bin/memcached ]; then
    port=$(free_port)
    "$MS" run --log-file="$T/mc.%p.log" -- /usr/bin/memcached -l 127.0.0.1 -p "$port" -U 0 -t 4 -u root >"$T/mc.out" 2>&1 &
    mcl=$!
    pids+=("$mcl")
    res=fail
    if wait_port "$port" 20; then
        res=$(timeout 60 $PY - "$port" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rwb")
for i in range(3000):
    v = b"x" * (i % 500 + 1)
    f.write(b"set k%d 0 0 %d\r\n%s\r\n" % (i, len(v), v)); f.flush()
    assert f.readline() == b"STORED\r\n"
hits = 0
for i in range(0, 3000, 3):
    f.write(b"get k%d\r\n" % i); f.flush()
    if f.readline().startswith(b"VALUE"):
        f.readline(); f.readline(); hits += 1
print("hits", hits)
EOF
)
    fi
    pkill -TERM -P "$mcl" memcached 2>/dev/null
    wait "$mcl"; s2=$?
    check "memcached: 3000 sets, 1000/1000 gets hit, SIGTERM exit, report written" \
        $([ "$res" = "hits 1000" ] && [ "$(reports "$T"/mc.*.log)" -ge 1 ] && grep -q "LEAK SUMMARY" "$T"/mc.*.log && echo 0 || echo 1) "$T/mc.out"
else
    bad "memcached missing (scripts/deps.sh installs it)"
fi

# ---- known leaks, named as valgrind memcheck names them
# Where one of these programs really leaks (or leaves a known set of blocks at
# exit), memsleuth's loss record must be valgrind's: the same kind, bytes
# (direct and indirect) and blocks, and a stack with the same distinguishing
# frames.  Two kinds of check (tests/realprogs/lossrec.py reads both reports):
#  - "named": the record valgrind 3.19.0 gave on the same Debian 12 binary
#    with the same input, written down here (command and date beside it).
#    Always run, valgrind or not.
#  - "as valgrind": valgrind runs here on the same command and input (only the
#    quick ones: 1-5 s each) and every loss record of the kinds compared must
#    pair up, frame by frame.  Skipped when valgrind is not installed or
#    MS_REAL_VALGRIND=0.
# The memsleuth runs below use --num-callers=12, valgrind's default: both
# count the allocator's own frame and merge records by the frames kept.
LR="$PY -S $HERE/lossrec.py"
VG=""
[ "${MS_REAL_VALGRIND:-1}" != 0 ] && command -v valgrind >/dev/null && VG=valgrind
VGOPT="--leak-check=full --num-callers=12"
named() { # named TEXT LOG KIND BYTES[/DIRECT] BLOCKS FRAME...
    local text=$1; shift
    $LR has "$@" >"$T/named.out" 2>&1; check "$text" $? "$T/named.out"
}
as_valgrind() { # as_valgrind TEXT MSLOG VGLOG KINDS
    if [ -z "$VG" ]; then echo "skip - $1 (valgrind not installed)"; return; fi
    $LR same "$2" "$3" "$4" 12 >"$T/same.out" 2>&1; check "$1" $? "$T/same.out"
}
log_of() { # log_of MODULE LOG... : valgrind's report of the process running MODULE
    grep -l "(in $1)" "${@:2}" 2>/dev/null | head -1
}
ms_log_of() { # ms_log_of EXE DIR : memsleuth's DIR/PID.log of the process running EXE (its DIR/PID.json says)
    local j; j=$(grep -l "\"exe\": \"$1\"" "$2"/*.json 2>/dev/null | head -1)
    [ -n "$j" ] && echo "${j%.json}.log"
}
status_is() { # status_is TEXT WANT GOT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1"; echo "#   status $3, expected $2"; fi
}

# python3: memory malloc'd through ctypes and dropped is lost by the program
# itself.  valgrind 3.19.0, 5 Dec 2026: PYTHONMALLOC=malloc valgrind
#   --leak-check=full /usr/bin/python3 ctleak.py  ->  12,345 bytes in 1 blocks
#   are definitely lost: malloc / ??? (libffi.so.8.1.2) x2 / ffi_call /
#   ??? (_ctypes.cpython-311-x86_64-linux-gnu.so) x2 / _PyObject_MakeTpCall /
#   _PyEval_EvalFrameDefault / PyEval_EvalCode (in python3.11)
cat >"$T/ctleak.py" <<'PYEOF'
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc(12345)          # the address is dropped: a leak of the program's own
print("dropped 12345 bytes")
PYEOF
PYTHONMALLOC=malloc $PY "$T/ctleak.py" >"$T/native" 2>&1; s1=$?
PYTHONMALLOC=malloc "$MS" run --num-callers=12 --log-file="$T/ctleak.ms.log" -- $PY "$T/ctleak.py" >"$T/traced" 2>&1; s2=$?
check "python3 ctypes leak: same output and status" $([ $s1 -eq $s2 ] && cmp -s "$T/native" "$T/traced" && echo 0 || echo 1) "$T/traced"
named "python3 ctypes leak named as valgrind does: definitely lost, 12,345 bytes in 1 block, malloc / ffi_call / _ctypes / _PyObject_MakeTpCall / _PyEval_EvalFrameDefault" \
    "$T/ctleak.ms.log" definite 12345 1 malloc "ffi_call in libffi.so.8.1.2" "??? in _ctypes.cpython-311-x86_64-linux-gnu.so" \
    "_PyObject_MakeTpCall in python3.11" "_PyEval_EvalFrameDefault in python3.11" "PyEval_EvalCode in python3.11"
[ -n "$VG" ] && PYTHONMALLOC=malloc $VG $VGOPT --log-file="$T/ctleak.vg.log" $PY "$T/ctleak.py" >/dev/null 2>&1
as_valgrind "python3 ctypes leak: the definitely lost records are valgrind's, frame by frame" "$T/ctleak.ms.log" "$T/ctleak.vg.log" definite

# gcc: the driver, as, collect2 and ld do not free at exit (cc1 does: nothing
# definitely lost there).  valgrind 3.19.0, 5 Dec 2026: valgrind
#   --trace-children=yes --leak-check=full gcc -O2 -o hello hello.c  ->
#   gcc: definitely lost 40 blocks (6,195 bytes with /tmp/k4/hello.c: some
#   blocks hold the paths), among them 4,064 bytes in 1 block and 792 bytes
#   in 9 at 0x48BA2B/0x48BAC7 (xmalloc) in x86_64-linux-gnu-gcc-12 (not PIE:
#   both tools print link addresses); as: 30 bytes in 8 blocks, among them
#   144 bytes in 2 at xcalloc / bfd_map_over_sections; cc1: 0 definitely lost.
mkdir -p "$T/gccms" "$T/gccvg"
"$MS" run --num-callers=12 --show-leak-kinds=definite,indirect,possible --log-file="$T/gccms/%p.log" --json="$T/gccms/%p.json" -- \
    gcc -O2 -o "$T/hello.k" "$T/hello.c" >"$T/out" 2>&1
GCCDRV=/usr/bin/x86_64-linux-gnu-gcc-12
named "gcc driver: its 4,064-byte block definitely lost, at the same code addresses as valgrind's" \
    "$(ms_log_of $GCCDRV "$T/gccms")" definite 4064 1 malloc "??? in x86_64-linux-gnu-gcc-12+0x48ba2b" \
    "??? in x86_64-linux-gnu-gcc-12+0x48a044" "??? in x86_64-linux-gnu-gcc-12+0x41367f" "??? in x86_64-linux-gnu-gcc-12+0x405195" "(below main)"
named "gcc driver: 792 bytes in 9 blocks definitely lost, as valgrind says" \
    "$(ms_log_of $GCCDRV "$T/gccms")" definite 792 9 malloc "??? in x86_64-linux-gnu-gcc-12+0x48bac7" \
    "??? in x86_64-linux-gnu-gcc-12+0x4113c4" "??? in x86_64-linux-gnu-gcc-12+0x411a71"
named "as: 144 bytes in 2 blocks definitely lost at xcalloc / bfd_map_over_sections, as valgrind says" \
    "$(ms_log_of /usr/bin/x86_64-linux-gnu-as "$T/gccms")" definite 144 2 calloc "xcalloc in libbfd-2.40-system.so" \
    "??? in x86_64-linux-gnu-as+0x6bbad" "bfd_map_over_sections in libbfd-2.40-system.so" "??? in x86_64-linux-gnu-as+0x6e36d"
cc1log=$(ms_log_of /usr/lib/gcc/x86_64-linux-gnu/12/cc1 "$T/gccms")
check "cc1: nothing definitely lost (valgrind agrees)" $([ -n "$cc1log" ] && [ "$(lost_sum "$cc1log")" -eq 0 ] && echo 0 || echo 1) "$cc1log"
# cc1 runs natively under valgrind here (30 s under it, and no definite leak)
[ -n "$VG" ] && $VG $VGOPT --show-leak-kinds=definite,indirect,possible --trace-children=yes --trace-children-skip='*/cc1' \
    --log-file="$T/gccvg/%p.log" gcc -O2 -o "$T/hello.k" "$T/hello.c" >/dev/null 2>&1
for p in $GCCDRV /usr/bin/x86_64-linux-gnu-as /usr/lib/gcc/x86_64-linux-gnu/12/collect2 /usr/bin/x86_64-linux-gnu-ld.bfd; do
    as_valgrind "gcc, $(basename $p): every definitely, indirectly and possibly lost record is valgrind's" \
        "$(ms_log_of $p "$T/gccms")" "$(log_of $p "$T"/gccvg/*.log)" definite,indirect,possible
done

# git diff keeps the array of the revisions named on its command line: 64
# entries of 32 bytes, and behind it their names ("HEAD~3" and its NUL: 7
# bytes; `git diff HEAD~3 HEAD~1` loses 14).  valgrind 3.19.0, 5 Dec 2026,
# git 2.39.5: valgrind --leak-check=full git diff HEAD~3  ->  2,055 (2,048
#   direct, 7 indirect) bytes in 1 blocks are definitely lost: malloc /
#   0x3918C5 / 0x2D1CEF / 0x15C093 / 0x1273F9 / 0x1286B1 / 0x1270B2 (in
#   /usr/bin/git, a PIE that valgrind maps at 0x108000) / (below main)
(cd "$T/repo" && git diff HEAD~3 >"$T/native" 2>&1; echo $? >"$T/s1"
 "$MS" run --num-callers=12 --log-file="$T/gitd.ms.log" -- git diff HEAD~3 >"$T/traced" 2>&1; echo $? >"$T/s2")
check "git diff HEAD~3: same output and status" $(cmp -s "$T/s1" "$T/s2" && cmp -s "$T/native" "$T/traced" && echo 0 || echo 1) "$T/traced"
named "git diff: the revision array named as valgrind does: 2,055 bytes (2,048 direct) in 1 block definitely lost, the same 6 code addresses" \
    "$T/gitd.ms.log" definite 2055/2048 1 malloc "??? in git+0x2898c5" "??? in git+0x1c9cef" "??? in git+0x54093" \
    "??? in git+0x1f3f9" "??? in git+0x206b1" "??? in git+0x1f0b2" "(below main)"
[ -n "$VG" ] && (cd "$T/repo" && $VG $VGOPT --log-file="$T/gitd.vg.log" git diff HEAD~3 >/dev/null 2>&1)
as_valgrind "git diff: every definitely, indirectly and possibly lost record is valgrind's" "$T/gitd.ms.log" "$T/gitd.vg.log" definite,indirect,possible

# sqlite3's ".exit N" calls exit() at once: the connection is never closed,
# its memory stays, some of it reached only through interior pointers.
# valgrind 3.19.0, 5 Dec 2026: valgrind --leak-check=full --show-leak-kinds=all
#   sqlite3 :memory: < exit.sql  ->  possibly lost: 12,840 bytes in 3 blocks
#   (4,104 at sqlite3VdbeExec / sqlite3_step; 4,368 at sqlite3BtreeBeginTrans;
#   4,368 at sqlite3BtreeCreateTable), still reachable: 21,664 bytes in 211
#   blocks, nothing definitely lost
if command -v sqlite3 >/dev/null; then
    printf 'create table t(a);\ninsert into t values(1);\n.exit 3\n' >"$T/exit.sql"
    sqlite3 :memory: <"$T/exit.sql" >"$T/native" 2>&1; s1=$?
    "$MS" run --num-callers=12 --show-leak-kinds=all --log-file="$T/sqlx.ms.log" -- sqlite3 :memory: <"$T/exit.sql" >"$T/traced" 2>&1; s2=$?
    check "sqlite3 .exit 3: same output and status 3" $([ $s1 -eq 3 ] && [ $s2 -eq 3 ] && cmp -s "$T/native" "$T/traced" && echo 0 || echo 1) "$T/traced"
    named "sqlite3 .exit: 4,104 bytes in 1 block possibly lost at sqlite3VdbeExec / sqlite3_step, as valgrind says" \
        "$T/sqlx.ms.log" possible 4104 1 malloc "sqlite3Malloc in libsqlite3.so.0.8.6" "sqlite3VdbeExec in libsqlite3.so.0.8.6" "sqlite3_step in libsqlite3.so.0.8.6"
    named "sqlite3 .exit: 4,368 bytes in 1 block possibly lost at sqlite3BtreeBeginTrans / sqlite3InitOne, as valgrind says" \
        "$T/sqlx.ms.log" possible 4368 1 malloc "sqlite3Malloc in libsqlite3.so.0.8.6" "sqlite3BtreeBeginTrans in libsqlite3.so.0.8.6" "sqlite3InitOne in libsqlite3.so.0.8.6"
    named "sqlite3 .exit: 4,368 bytes in 1 block possibly lost at sqlite3BtreeCreateTable / sqlite3VdbeExec, as valgrind says" \
        "$T/sqlx.ms.log" possible 4368 1 malloc "sqlite3Malloc in libsqlite3.so.0.8.6" "sqlite3BtreeCreateTable in libsqlite3.so.0.8.6" "sqlite3VdbeExec in libsqlite3.so.0.8.6"
    $LR summary "$T/sqlx.ms.log" >"$T/sum.out" 2>&1
    check "sqlite3 .exit: valgrind's leak summary: 0 definitely lost, 12,840 bytes in 3 blocks possibly, 21,664 bytes in 211 blocks still reachable" \
        $(grep -qx "definitely lost: 0 bytes in 0 blocks" "$T/sum.out" && grep -qx "possibly lost: 12840 bytes in 3 blocks" "$T/sum.out" &&
          grep -qx "still reachable: 21664 bytes in 211 blocks" "$T/sum.out" && echo 0 || echo 1) "$T/sum.out"
    [ -n "$VG" ] && $VG $VGOPT --show-leak-kinds=all --log-file="$T/sqlx.vg.log" sqlite3 :memory: <"$T/exit.sql" >/dev/null 2>&1
    as_valgrind "sqlite3 .exit: every loss record of every kind is valgrind's" "$T/sqlx.ms.log" "$T/sqlx.vg.log" definite,indirect,possible,reachable
fi

# memcached 1.6.18 (the run above, SIGTERM): a calloc(1, 40) made in main is
# never freed.  valgrind 3.19.0, 5 Dec 2026 (under `ulimit -n 1036`, so that
# memcached may set its descriptor limit under valgrind): valgrind
#   --leak-check=full memcached -l 127.0.0.1 -p PORT -U 0 -t 4 -u root, 300
#   sets, SIGTERM  ->  40 bytes in 1 blocks are definitely lost: calloc /
#   0x1349F2 / 0x10DE6C (PIE at 0x108000) / (below main); possibly lost: the 9
#   threads' DTVs, which memsleuth suppresses by default (docs: glibc's DTV)
named "memcached: main's 40-byte calloc named as valgrind does: definitely lost, 1 block, the same code addresses" \
    "$(ls "$T"/mc.*.log 2>/dev/null | head -1)" definite 40 1 calloc "??? in memcached+0x2c9f2" "??? in memcached+0x5e6c" "(below main)"

# redis-server (the run above): the eviction pool keeps 16 cached sds strings
# of 259 bytes, each pointed to past its 3-byte header only.
# valgrind 3.19.0, 5 Dec 2026: REDIS_PORT=... redis_run.sh 2000 valgrind
#   --leak-check=full --soname-synonyms=somalloc=*jemalloc*  ->  4,144 bytes
#   in 16 blocks are possibly lost: malloc / zmalloc_usable / _sdsnewlen /
#   evictionPoolAlloc / initServer / main; nothing definitely lost
named "redis-server: the eviction pool's 16 sds strings possibly lost (interior pointers), 4,144 bytes, as valgrind says" \
    "$(ls "$T"/redis.*.log 2>/dev/null | head -1)" possible 4144 16 malloc "zmalloc_usable in redis-check-rdb" \
    "_sdsnewlen in redis-check-rdb" "evictionPoolAlloc in redis-check-rdb" "initServer in redis-check-rdb" "main in redis-check-rdb"

# nginx workers leave two things at a graceful exit: the environment array of
# ngx_set_environment (8 bytes) and the connection, read-event and write-event
# arrays of the destroyed cycle (30,720 + 12,288 + 12,288 bytes; they point to
# each other, so one is definitely lost and the other two indirectly).
# valgrind 3.19.0, 5 Dec 2026: valgrind --leak-check=full nginx -c ... (2
#   workers, 30 requests, QUIT)  ->  each worker: 8 bytes in 1 blocks
#   definitely lost: malloc / ngx_alloc / ngx_set_environment / 0x1594F0 /
#   0x159B2C / ngx_spawn_process / 0x159397 / ngx_master_process_cycle / main;
#   55,296 (30,720 direct, 24,576 indirect) bytes in 1 blocks definitely lost
#   at ngx_alloc / 0x14FAF7 / 0x15961D / 0x159B2C / ngx_spawn_process / ...;
#   in all 30,728 bytes in 2 blocks definitely lost, 24,576 in 2 indirectly.
# Which block of such a cycle is "definitely" lost is, in valgrind, the one
# at the lowest address: the heaps differ, and memsleuth may name the read
# events first; the record's total, its block count and the stack of the
# worker are the same.  --malloc-fill=0: valgrind skips the never-written
# (undefined) bytes of the epoll event list, which hold a stale pointer to
# the read events; memsleuth has no definedness and without the fill calls
# the cycle reachable.
if [ -x /usr/sbin/nginx ] && command -v curl >/dev/null; then
    port=$(free_port)
    sed "s/listen 127.0.0.1:[0-9]*;/listen 127.0.0.1:$port;/; s#nginx.pid#nginx2.pid#" "$T/ngx/nginx.conf" >"$T/ngx/nginx2.conf"
    mkdir -p "$T/ngxlk" && chmod 1777 "$T/ngxlk"
    "$MS" run --malloc-fill=0 --num-callers=12 --log-file="$T/ngxlk/%p.log" --json="$T/ngxlk/%p.json" -- /usr/sbin/nginx -c "$T/ngx/nginx2.conf" -p "$T/ngx" >"$T/ngx2.out" 2>&1
    okreq=0
    if wait_port "$port" 20; then
        for _ in 1 2 3 4 5; do
            [ "$(curl -s --max-time 5 "http://127.0.0.1:$port/")" = "hello from nginx" ] && okreq=$((okreq + 1))
        done
    fi
    mpid=$(cat "$T/ngx/nginx2.pid" 2>/dev/null)
    [ -n "$mpid" ] && kill -QUIT "$mpid" 2>/dev/null && wait_gone "$mpid" 30
    nw=0 nenv=0 ncyc=0 nsum=0
    for j in $(grep -l "\"ppid\": ${mpid:-none}," "$T"/ngxlk/*.json 2>/dev/null); do   # the master's children: the workers
        f=${j%.json}.log
        nw=$((nw + 1))
        $LR has "$f" definite 8 1 malloc "ngx_alloc in nginx" "ngx_set_environment in nginx" "??? in nginx+0x514f0" "??? in nginx+0x51b2c" \
            "ngx_spawn_process in nginx" "??? in nginx+0x51397" "ngx_master_process_cycle in nginx" "main in nginx" >/dev/null && nenv=$((nenv + 1))
        $LR has "$f" definite 55296 1 malloc "ngx_alloc in nginx" "??? in nginx+0x5161d" "??? in nginx+0x51b2c" "ngx_spawn_process in nginx" \
            "??? in nginx+0x51397" "ngx_master_process_cycle in nginx" "main in nginx" >/dev/null && ncyc=$((ncyc + 1))
        $LR summary "$f" >"$T/sum.out"
        d=$(sed -n 's/^definitely lost: \([0-9]*\) bytes in \([0-9]*\) blocks/\1 \2/p' "$T/sum.out")
        i=$(sed -n 's/^indirectly lost: \([0-9]*\) bytes in \([0-9]*\) blocks/\1 \2/p' "$T/sum.out")
        [ -n "$d" ] && [ -n "$i" ] && [ "$((${d% *} + ${i% *})) $((${d#* } + ${i#* }))" = "55304 4" ] && nsum=$((nsum + 1))
    done
    echo "#   nginx: $okreq/5 requests; $nw worker reports: $nenv name ngx_set_environment, $ncyc the cycle's arrays, $nsum lose 55,304 bytes in 4 blocks"
    check "nginx workers: ngx_set_environment's 8 bytes definitely lost in each, named as valgrind does" \
        $([ $okreq -eq 5 ] && [ $nw -eq 2 ] && [ $nenv -eq 2 ] && echo 0 || echo 1) "$T/ngx2.out"
    check "nginx workers: the destroyed cycle's arrays, 55,296 bytes in 1 block definitely lost behind ngx_spawn_process, 55,304 bytes in 4 blocks lost in all, as valgrind says" \
        $([ $nw -eq 2 ] && [ $ncyc -eq 2 ] && [ $nsum -eq 2 ] && echo 0 || echo 1) "$(ls "$T"/ngxlk/*.log | tail -1)"
fi

# ---- the exit status CI sees: --error-exitcode when a leak counts as an error
# (without one: the sqlite3 script and the python3 script above run under
# --error-exitcode=42 and must keep their own status 0)
PYTHONMALLOC=malloc "$MS" run --error-exitcode=42 --errors-for-leak-kinds=definite --log-file="$T/ec.%p.log" -- $PY "$T/ctleak.py" >/dev/null 2>&1
status_is "--error-exitcode=42: python3 with its ctypes leak (definite) exits 42" 42 $?
# (git log and git diff both leave 120 bytes in 3 blocks possibly lost, as
# valgrind says too: only definite leaks count as errors here)
(cd "$T/repo" && "$MS" run --error-exitcode=42 --errors-for-leak-kinds=definite --log-file="$T/ec.%p.log" -- git diff HEAD~3 >/dev/null 2>&1)
status_is "--error-exitcode=42: git diff (loses its revision array) exits 42" 42 $?
(cd "$T/repo" && "$MS" run --error-exitcode=42 --errors-for-leak-kinds=definite --log-file="$T/ec.%p.log" -- git log --stat >/dev/null 2>&1)
status_is "--error-exitcode=42: git log (nothing definitely lost) keeps its status 0" 0 $?
if command -v sqlite3 >/dev/null; then
    "$MS" run --error-exitcode=42 --log-file="$T/ec.%p.log" -- sqlite3 :memory: <"$T/exit.sql" >/dev/null 2>&1
    status_is "--error-exitcode=42: sqlite3 .exit 3, blocks possibly lost (an error by default): 42" 42 $?
    "$MS" run --error-exitcode=42 --errors-for-leak-kinds=definite --log-file="$T/ec.%p.log" -- sqlite3 :memory: <"$T/exit.sql" >/dev/null 2>&1
    status_is "--error-exitcode=42 --errors-for-leak-kinds=definite: sqlite3 .exit 3 keeps its own status 3" 3 $?
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
