#!/usr/bin/env bash
# run_verify.sh MEMSLEUTH - the agent's own unwinder against libunwind on real
# programs: with MEMSLEUTH_VERIFY_UNWIND=1 every stack is captured both ways
# (src/agent/unwind.c and unw_backtrace) and the agent prints, at exit,
#   memsleuth: unwind verification: N stacks compared with libunwind, M differ (K stack ids from the stack-id cache checked)
# (M also counts the ids from the unwinder's stack-id cache that differ from the interned ones)
# Every process must compare many stacks and find no difference: sqlite3 (a
# script), python3 (allocation heavy), a C++ program that throws through
# deep frames, the shared bench workloads (-O2 without frame pointers),
# a program that dlopens/dlcloses a library in a loop while another thread
# allocates, and a program whose allocations come from signal handlers.
# Prints "ok/not ok" lines and "N passed, M failed".
set -u
MS=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=$(cd "$HERE/../../../shared" 2>/dev/null && pwd)
T=$(mktemp -d /tmp/ms-uverify.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() {
    n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"
    [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -20
}
# verified NAME MIN ERRFILE: every verification line in ERRFILE says 0 differ,
# at least one line, and the processes compared at least MIN stacks in all
verified() {
    local lines total bad_lines
    lines=$(grep -c "unwind verification:" "$3")
    total=$(sed -n 's/.*unwind verification: \([0-9]*\) stacks.*/\1/p' "$3" | awk '{s += $1} END {print s + 0}')
    bad_lines=$(grep "unwind verification:" "$3" | grep -vc ", 0 differ")
    if [ "$lines" -ge 1 ] && [ "$total" -ge "$2" ] && [ "$bad_lines" -eq 0 ]; then
        ok "$1: $total stacks in $lines processes, all identical to libunwind's"
    else
        bad "$1: $lines reports, $total stacks (want >= $2), $bad_lines with differences" "$3"
    fi
}
export MEMSLEUTH_VERIFY_UNWIND=1

# ---- sqlite3 running a script
if command -v sqlite3 >/dev/null; then
    if [ -f "$SHARED/bench/workloads/gen_sql.sh" ]; then
        sh "$SHARED/bench/workloads/gen_sql.sh" 5000 >q.sql
    else
        for i in $(seq 1 3000); do echo "insert into t values($i, 'row $i');"; done | { echo "create table t(a, b);"; cat; echo "select count(*) from t; delete from t;"; } >q.sql
    fi
    "$MS" run --trace=no -- sqlite3 :memory: <q.sql >out 2>err
    verified "sqlite3 script" 5000 err
fi

# ---- python3, allocation heavy
cat >alloc.py <<'EOF'
import json, collections
d = collections.defaultdict(list)
for i in range(20000):
    d[i % 977].append({"k": i, "v": str(i) * 3})
print(len(json.dumps({str(k): len(v) for k, v in d.items()})))
EOF
"$MS" run --trace=no -- python3 alloc.py >out 2>err
verified "python3 script" 20000 err

# ---- C++ exceptions thrown through deep frames (-O2, no frame pointers)
cat >throw.cc <<'EOF'
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
    for (int i = 0; i < 500; i++) {
        try { depth(i % 30); } catch (const std::exception &e) { caught++; }
    }
    std::printf("caught %d\n", caught);
    return 0;
}
EOF
g++ -O2 -fomit-frame-pointer -o throw throw.cc
"$MS" run --trace=no -- ./throw >out 2>err
verified "C++ throw/catch" 1000 err

# ---- the shared bench workloads, -O2 without frame pointers
if [ -d "$SHARED/bench/workloads" ]; then
    for w in churn tree leaky_server; do
        src=$(ls "$SHARED/bench/workloads/$w".c* 2>/dev/null | head -1)
        [ -n "$src" ] || continue
        case $src in *.cc|*.cpp) cc=g++ ;; *) cc=gcc ;; esac
        $cc -O2 -fomit-frame-pointer -o "$w" "$src" -lpthread 2>/dev/null || continue
        case $w in tree) args="2 20000" ;; *) args=20000 ;; esac
        "$MS" run --trace=no -- "./$w" $args >out 2>err
        verified "bench workload $w" 1000 err
        if [ "$w" = churn ]; then
            # 256 stacks over and over: nearly every id comes from the
            # unwinder's stack-id cache, each checked against the interned one
            kept=$(sed -n 's/.*(\([0-9]*\) stack ids from the stack-id cache checked).*/\1/p' err | awk '{s += $1} END {print s + 0}')
            if [ "$kept" -ge 10000 ]; then
                ok "bench workload churn: $kept stack ids from the stack-id cache, all equal to the interned ones"
            else
                bad "bench workload churn: $kept stack ids from the stack-id cache (want >= 10000)" err
            fi
        fi
    done
fi

# ---- dlopen/dlclose in a loop while another thread allocates
cat >lib.c <<'EOF'
#include <stdlib.h>
void *lib_alloc(int n) { return malloc((size_t)n); }
EOF
cat >dl.c <<'EOF'
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static volatile int stop;
static void *worker(void *a) {
    (void)a;
    while (!stop) { void *p = malloc(24); free(p); }
    return 0;
}
int main(int argc, char **argv) {
    (void)argc;
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    for (int i = 0; i < 300; i++) {
        void *h = dlopen(argv[1], RTLD_NOW);
        if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
        void *(*f)(int) = (void *(*)(int))dlsym(h, "lib_alloc");
        free(f(16 + i % 8));
        dlclose(h);
    }
    stop = 1;
    pthread_join(t, 0);
    puts("dl done");
    return 0;
}
EOF
gcc -O2 -fomit-frame-pointer -shared -fPIC -o libdl_alloc.so lib.c && gcc -O2 -fomit-frame-pointer -o dl dl.c -ldl -lpthread
"$MS" run --trace=no -- ./dl "$T/libdl_alloc.so" >out 2>err; st=$?
if [ $st -eq 0 ] && grep -q "dl done" out; then verified "dlopen/dlclose loop with a second thread" 300 err; else bad "dlopen/dlclose loop: status $st" err; fi

# ---- allocations from a signal handler (SIGALRM every 200 us)
cat >sig.c <<'EOF'
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
static volatile int ticks;
/* glibc's malloc is not async-signal-safe: this stays legal in practice
 * because the main loop only hits its thread cache (set up before the timer
 * starts) and the handler's size is another size class */
static void on_alarm(int s) { (void)s; free(malloc(32)); ticks++; }
int main(void) {
    free(malloc(64));
    free(malloc(32));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = { { 0, 200 }, { 0, 200 } };
    setitimer(ITIMER_REAL, &it, 0);
    while (ticks < 300) { char *p = malloc(64); memset(p, 1, 64); free(p); }
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, 0);
    puts("sig done");
    return 0;
}
EOF
gcc -O2 -o sig sig.c
timeout 120 "$MS" run --trace=no -- ./sig >out 2>err; st=$?
if [ $st -eq 0 ] && grep -q "sig done" out; then verified "allocations in signal handlers" 300 err; else bad "signal handler allocations: status $st" err; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
