#!/usr/bin/env bash
# run_real.sh MEMSLEUTH - real Debian programs under memsleuth, each bounded in
# time and requests, servers on loopback ports started and stopped here.
# Each must behave exactly as without memsleuth (same output, same status),
# and its report must be sane: no definitely lost block where the program
# frees everything at a clean shutdown.  Prints "ok/not ok" lines and
# "N passed, M failed".
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # wait_port PORT SECONDS
    for _ in $(seq 1 $(($2 * 10))); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),timeout=0.2)" 2>/dev/null && return 0
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
    "$MS" run --log-file="$T/sqlite.%p.log" -- sqlite3 :memory: <"$T/q.sql" >"$T/traced" 2>&1; s2=$?
    check "sqlite3 script: same output and status, nothing lost" \
        $([ $s1 -eq $s2 ] && cmp -s "$T/native" "$T/traced" && [ "$(lost_sum "$T"/sqlite.*.log)" -eq 0 ] && [ "$(reports "$T"/sqlite.*.log)" -ge 1 ] && echo 0 || echo 1) "$T/traced"
fi

# ---- python3, allocation heavy
PY=/usr/bin/python3
cat >"$T/alloc.py" <<'EOF'
import json, collections
d = collections.defaultdict(list)
for i in range(60000):
    d[i % 977].append({"k": i, "v": str(i) * 3})
s = json.dumps({str(k): len(v) for k, v in d.items()})
print(len(s), sum(len(v) for v in d.values()))
EOF
$PY "$T/alloc.py" >"$T/native" 2>&1; s1=$?
"$MS" run --log-file="$T/py.%p.log" -- $PY "$T/alloc.py" >"$T/traced" 2>&1; s2=$?
check "python3 allocation-heavy script: same output and status, nothing definitely lost" \
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
        res=$(timeout 60 python3 - "$port" <<'EOF'
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

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
