#!/usr/bin/env bash
# sweep.sh MEMSLEUTH - more real programs, each run natively and under
# memsleuth (default options: trace on, leak check at exit): same stdout,
# same status, no crash or hang, and a report written.  Covers JIT runtimes
# (java, node: code without unwind information), the LLVM compilers (clang,
# rustc), a static Go toolchain, interpreters (perl, tclsh, awk) and tools.
# A program that is not installed prints a "skip" line.  Label soak: it
# takes about a minute and needs packages the default run does not install.
# Prints "ok/not ok/skip" lines and "N passed, M failed".
set -u
MS=$(realpath "$1")
T=$(mktemp -d /tmp/ms-sweep.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; [ -f "${2:-}" ] && sed 's/^/#   /' "$2" | tail -15; }
cat >hello.c <<'X'
#include <stdio.h>
int main(void) { puts("hi"); return 0; }
X
cat >Hello.java <<'X'
public class Hello { public static void main(String[] a) { StringBuilder sb = new StringBuilder();
  for (int i = 0; i < 200000; i++) sb.append(i % 10); System.out.println(sb.length()); } }
X
cat >t.js <<'X'
let a = []; for (let i = 0; i < 300000; i++) a.push({i, s: "x" + i}); console.log(a.length, a[1234].s);
X
cat >t.rs <<'X'
fn main() { let v: Vec<String> = (0..100000).map(|i| i.to_string()).collect(); println!("{}", v.len()); }
X
cat >t.go <<'X'
package main
import "fmt"
func main() { fmt.Println("go hi") }
X
# NEED|COMMAND[|noexit]: skipped when NEED is not on PATH; "noexit": a Go
# program ends with a raw exit_group, past libc's exit and the agent: no
# report at exit, but its trace is there and readable (as after SIGKILL)
cat >list <<'X'
perl|perl -e 'my %h; $h{$_} = $_ x 3 for 1..200000; print scalar(keys %h), "\n"'
clang|clang -O2 -c hello.c -o hello_clang.o && cmp -s hello_clang.o hello_clang.o && echo compiled
rustc|rustc -O t.rs -o t_rs && ./t_rs
node|node t.js
javac|javac -d . Hello.java && echo compiled
java|java -Xmx256m Hello
tclsh|echo 'set l {}; for {set i 0} {$i < 100000} {incr i} {lappend l $i}; puts [llength $l]' | tclsh
cmake|cmake --version
xz|head -c 3000000 /usr/bin/cmake | xz -6 -c | xz -dc | md5sum
zstd|head -c 3000000 /usr/bin/cmake | zstd -9 -c | zstd -dc | md5sum
vim|vim -es -c 'put =range(1,5000)' -c 'wq! vimout.txt' && wc -l < vimout.txt
curl|curl -s file:///etc/os-release
awk|awk 'BEGIN { for (i = 0; i < 200000; i++) a[i] = i; print length(a) }'
sort|seq 200000 | sort -R --random-source=/usr/bin/cmake | sort -n | md5sum
go|GOCACHE=$PWD/gocache go run t.go|noexit
X
while IFS='|' read -r need cmd kind; do
    if ! command -v "$need" >/dev/null 2>&1; then echo "skip - $need: not installed"; continue; fi
    rm -f r.*.log
    timeout 300 bash -c "$cmd" >n.out 2>n.err; nst=$?
    timeout 600 "$MS" run --log-file="$T/r.%p.log" -- bash -c "$cmd" >m.out 2>m.err; mst=$?
    if [ "$kind" = noexit ]; then
        if [ $nst -eq $mst ] && cmp -s n.out m.out && [ -s m.out ] && ls memsleuth.$need.*.trace >/dev/null 2>&1 &&
            "$MS" report memsleuth.$need.*.trace >rep 2>&1 && grep -q "no END record" rep; then
            ok "$need: same output and status ($nst) as natively; raw exit_group, no report, its trace readable"
        else
            { echo "status $nst natively, $mst traced"; diff n.out m.out | head; cat m.err rep; } >why 2>/dev/null
            bad "$need: same output and status as natively, its trace readable" why
        fi
        continue
    fi
    if [ $nst -eq $mst ] && cmp -s n.out m.out && [ -s m.out ] && ls r.*.log >/dev/null 2>&1 &&
        grep -qs "ERROR SUMMARY" r.*.log; then
        ok "$need: same output and status ($nst) as natively, $(ls r.*.log | wc -l) reports"
    else
        { echo "status $nst natively, $mst traced"; diff n.out m.out | head; cat m.err; } >why
        bad "$need: same output and status as natively" why
    fi
done <list
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
