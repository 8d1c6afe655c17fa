#!/usr/bin/env bash
# run_pools.sh MEMSLEUTH POOLLIB - libmemsleuth_pool's allocators in the trace:
# progs/poolprog.c (a tree whose figures are known exactly) runs without
# memsleuth, then under `memsleuth run` with the trace on; `memsleuth report`
# (text, JSON, dump) must show the tree at the end and at the peak, the
# per-allocator bytes, the leaked allocator once at its file:line with its
# subtree's totals, the sites, and the growing allocator's curve rising.
# POOLLIB is libmemsleuth_pool.so (the program links it).
set -u
MS=$(realpath "$1")
POOLLIB=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/ms-pools.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -30; }
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi; }

SRC="$HERE/progs/poolprog.c"
cp "$SRC" poolprog.c
gcc -O1 -g -I"$HERE/../../include" -o poolprog poolprog.c "$POOLLIB" -Wl,-rpath,"$(dirname "$POOLLIB")" || { echo "not ok 1 - build poolprog"; exit 1; }
line() { grep -n "/\* $1 \*/" poolprog.c | head -1 | cut -d: -f1; }

# ---- without memsleuth: the library as it is
./poolprog >plain.out 2>plain.err; rc=$?
check "without the agent the program runs (exit 0, its checksum)" $([ $rc -eq 0 ] && grep -qx "sum 2041" plain.out && [ ! -s plain.err ] && echo 0 || echo 1) plain.err
MEMSLEUTH_POOL_DEBUG=1 ./poolprog >dbg.out 2>&1; rc=$?
check "without the agent, in the library's debug mode, too" $([ $rc -eq 0 ] && grep -qx "sum 2041" dbg.out && echo 0 || echo 1) dbg.out

# ---- under memsleuth, trace on
"$MS" run --trace="$T/p.trace" -- ./poolprog >run.out 2>run.err; rc=$?
check "under memsleuth run: same output, exit 0" $([ $rc -eq 0 ] && grep -qx "sum 2041" run.out && echo 0 || echo 1) run.err
"$MS" report --format=json "$T/p.trace" >r.json 2>r.err; rj=$?
"$MS" report "$T/p.trace" >r.txt 2>rt.err; rt=$?
"$MS" report --format=dump "$T/p.trace" >r.dump 2>rd.err; rd=$?
check "memsleuth report reads the trace (text, json, dump)" $([ $rj -eq 0 ] && [ $rt -eq 0 ] && [ $rd -eq 0 ] && echo 0 || echo 1) r.err

cat >check.py <<'EOF'
import json, sys
L = dict(a.split("=") for a in sys.argv[2:])
L = {k: int(v) for k, v in L.items()}
d = json.load(open(sys.argv[1]))
p = d["processes"][0]
pl = p["pools"]
fails = []
def eq(name, got, want):
    if got != want:
        fails.append("%s: got %r, want %r" % (name, got, want))
    else:
        print("ok:", name, "=", want)
# pool records go to the pools section, not to the model's unknown records (other
# record types the model does not know yet may be there)
eq("pool records are not unknown records", p["read"]["unknown_records"] < pl["records"], True)
for k, v in [("allocators_created", 8), ("allocators_destroyed", 5), ("allocators_live", 3),
             ("allocators_unknown_origin", 0), ("allocations", 86), ("allocated_bytes", 10806),
             ("reallocs", 1), ("frees", 1), ("blocks_moved", 1), ("unmatched_records", 0),
             ("peak_bytes", 7306), ("peak_blocks", 70), ("end_bytes", 7106), ("end_blocks", 66),
             ("end_state", "never freed"), ("incomplete", False)]:
    eq(k, pl[k], v)
# the tree at the end: session with cache and buffers
t = pl["tree_at_end"]
shape = [(n["name"], n["depth"], n["line"], n["bytes"], n["blocks"], n["subtree_bytes"], n["subtree_blocks"],
          n["subtree_allocators"], n["children"]) for n in t]
eq("tree at the end", shape, [("session", 0, L["L_SESS"], 10, 1, 7106, 66, 3, 2),
                              ("cache", 1, L["L_CACHE"], 4096, 64, 4096, 64, 1, 0),
                              ("buffers", 1, L["L_BUFS"], 3000, 1, 3000, 1, 1, 0)])
eq("parents at the end", [n["parent"] for n in t], [None, t[0]["id"], t[0]["id"]])
eq("file of the allocators", set(n["file"] for n in t), {"poolprog.c"})
# the tree at the peak: app/config still there, the config block not yet freed
tp = pl["tree_at_peak"]
eq("tree at the peak", [(n["name"], n["depth"], n["subtree_bytes"], n["subtree_blocks"]) for n in tp],
   [("session", 0, 7106, 66), ("cache", 1, 4096, 64), ("buffers", 1, 3000, 1),
    ("app", 0, 200, 4), ("config", 1, 200, 4)])
# leaks: the session, once, at its creation site, with its whole subtree
eq("leaks", [(l["name"], l["file"], l["line"], l["allocators"], l["bytes"], l["blocks"], l["subtree_allocators"],
              l["state"]) for l in pl["leaks"]],
   [("session", "poolprog.c", L["L_SESS"], 1, 7106, 66, 3, "never freed")])
# sites, most allocations first
s = {x["line"]: x for x in pl["sites"]}
eq("first site", pl["sites"][0]["line"], L["L_CACHE_ALLOC"])
eq("cache site", (s[L["L_CACHE_ALLOC"]]["allocations"], s[L["L_CACHE_ALLOC"]]["allocated_bytes"],
                  s[L["L_CACHE_ALLOC"]]["live_bytes"], s[L["L_CACHE_ALLOC"]]["live_blocks"]), (64, 4096, 4096, 64))
eq("request site", (s[L["L_REQ_ALLOC"]]["allocations"], s[L["L_REQ_ALLOC"]]["allocated_bytes"],
                    s[L["L_REQ_ALLOC"]]["frees"], s[L["L_REQ_ALLOC"]]["live_bytes"]), (15, 1500, 15, 0))
eq("config site", (s[L["L_CFG_ALLOC"]]["allocations"], s[L["L_CFG_ALLOC"]]["frees"],
                   s[L["L_CFG_ALLOC"]]["live_bytes"]), (4, 4, 0))
eq("realloc site", (s[L["L_BUF_REALLOC"]]["allocations"], s[L["L_BUF_REALLOC"]]["reallocs"],
                    s[L["L_BUF_REALLOC"]]["live_bytes"]), (1, 1, 3000))
eq("requests created at their site", s[L["L_REQ"]]["allocators_created"], 3)
# memory over time: the cache rises
c = t[1]["samples"]
inc = sum(1 for i in range(63) if c[i + 1] > c[i])
dec = sum(1 for i in range(63) if c[i + 1] < c[i])
eq("cache curve: 64 samples ending at 4096", (len(c), c[-1]), (64, 4096))
eq("cache curve never falls", dec, 0)
if inc < 8:
    fails.append("cache curve rises in only %d steps: %r" % (inc, c))
else:
    print("ok: cache curve rises in", inc, "steps")
m = pl["memory_over_time"]
eq("total curve: 64 samples, times rising", (len(m["bytes"]), len(m["time_ns"]), m["time_ns"] == sorted(m["time_ns"])), (64, 64, True))
eq("total curve ends at the end bytes", m["bytes"][-1], 7106)
if max(m["bytes"]) > 7306:
    fails.append("total curve above the peak")
for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
EOF
python3 check.py r.json L_SESS=$(line L_SESS) L_CACHE=$(line L_CACHE) L_BUFS=$(line L_BUFS) \
    L_CACHE_ALLOC=$(line L_CACHE_ALLOC) L_REQ_ALLOC=$(line L_REQ_ALLOC) L_CFG_ALLOC=$(line L_CFG_ALLOC) \
    L_BUF_REALLOC=$(line L_BUF_REALLOC) L_REQ=$(line L_REQ) >check.out 2>&1
check "JSON: tree at the end and at the peak, bytes per allocator, one leak with its subtree, sites, rising curve" $? check.out

# text
ls_=$(line L_SESS)
check "text: the leak once, at the session's file:line, with the subtree's totals" \
    $([ "$(grep -c "created at .*poolprog.c:[0-9]*: " r.txt)" = 1 ] && grep -q "session created at poolprog.c:$ls_: 6.94 KiB in 66 blocks, 3 allocators" r.txt && echo 0 || echo 1) r.txt
check "text: the tree at the end, one line per allocator with its subtree and curve" \
    $(grep -A4 "Pool tree at the end" r.txt | grep -q "#6 session poolprog.c:$ls_ .*6.94 KiB/66 .*10 B/1 .*|" &&
      grep -A4 "Pool tree at the end" r.txt | grep -q "  #7 cache poolprog.c:$(line L_CACHE) .*4.00 KiB/64" && echo 0 || echo 1) r.txt
check "text: the tree at the peak and the sites" \
    $(grep -A7 "Pool tree at the peak" r.txt | grep -q "#1 app poolprog.c:$(line L_APP) .*200 B/4" &&
      grep -A2 "Pool allocation sites" r.txt | grep -q "64 .*4.00 KiB .*4.00 KiB .*poolprog.c:$(line L_CACHE_ALLOC)" && echo 0 || echo 1) r.txt
check "dump: one POOL_SITE per file:line, the pool records by name" \
    $([ "$(grep -c '^POOL_SITE ' r.dump)" = "$(grep '^POOL_SITE ' r.dump | sed 's/.*line=\([0-9]*\).*/\1/' | sort -u | wc -l)" ] &&
      grep -q '^POOL_NAME .*name="session"' r.dump && grep -q "^POOL_MOVE .*what=block" r.dump &&
      [ "$(grep -c '^POOL_DESTROY ' r.dump)" = 5 ] && ! grep -qE '^UNKNOWN type=2[0-7] ' r.dump && echo 0 || echo 1) r.dump
python3 "$HERE/../trace/check_trace.py" "$T/p.trace" --expect-end >ct.out 2>&1
check "the trace still reads cleanly with the independent decoder" $? ct.out

# ---- 4 threads with their own trees at once, then a fork (progs/poolthreads.c)
gcc -O1 -g -pthread -I"$HERE/../../include" -o poolthreads "$HERE/progs/poolthreads.c" "$POOLLIB" -Wl,-rpath,"$(dirname "$POOLLIB")" || { echo "not ok - build poolthreads"; exit 1; }
mkdir th
"$MS" run --trace="$T/th/t.%p.trace" -- ./poolthreads >th.out 2>th.err; rc=$?
check "threads: the program runs under memsleuth, its forked child too" $([ $rc -eq 0 ] && grep -qx "done 0" th.out && [ "$(ls th/*.trace | wc -l)" = 2 ] && echo 0 || echo 1) th.err
cat >th.py <<'EOF2'
import json, sys
ps = json.load(open(sys.argv[1]))["processes"]
fails = []
def eq(name, got, want):
    print(("ok: " if got == want else "FAIL: ") + "%s: got %r, want %r" % (name, got, want))
    if got != want:
        fails.append(name)
eq("processes (parent, forked child)", len(ps), 2)
par, kid = ps[0]["pools"], ps[1]["pools"]
for k, v in [("allocators_created", 8004), ("allocators_destroyed", 8003), ("allocators_live", 1),
             ("allocators_unknown_origin", 0), ("allocations", 48000), ("allocated_bytes", 1408000),
             ("end_bytes", 32000), ("end_blocks", 2000), ("unmatched_records", 0)]:
    eq("parent " + k, par[k], v)
eq("parent lost events", ps[0]["lost_events"], 0)
eq("parent leaks", [(l["name"], l["bytes"], l["blocks"], l["allocators"]) for l in par["leaks"]], [("worker", 32000, 2000, 1)])
eq("job site: 8000 x 5 blocks of 32 bytes, all freed", [(x["allocations"], x["allocated_bytes"], x["live_bytes"], x["frees"])
    for x in par["sites"] if x["allocations"] == 40000], [(40000, 1280000, 0, 40000)])
for k, v in [("allocators_unknown_origin", 0), ("allocators_inherited", 1), ("allocators_created", 0),
             ("allocations", 1), ("end_bytes", 100), ("unmatched_records", 0)]:
    eq("child " + k, kid[k], v)
eq("child leak: the inherited pool, named, at its creation site",
   [(l["name"], l["file"].split("/")[-1], l["line"], l["inherited"], l["unknown_origin"], l["bytes"]) for l in kid["leaks"]],
   [("worker", "poolthreads.c", int(sys.argv[2]), True, False, 100)])
sys.exit(1 if fails else 0)
EOF2
"$MS" report --format=json th/*.trace >th.json 2>th.rerr
python3 th.py th.json "$(grep -n 'ms_pool_set_name(root, "worker")' "$HERE/progs/poolthreads.c" | cut -d: -f1 | awk '{print $1-1}')" >th.check 2>&1
check "threads: exact totals from 4 threads, the leaked root once; the child sees its inherited pool" $? th.check

# ---- the agent's exit report in pool terms, and a forked child's inherited
# pools named in its trace (progs/poolleak.c: its comment has the figures)
cp "$HERE/progs/poolleak.c" poolleak.c
gcc -O1 -g -I"$HERE/../../include" -o poolleak poolleak.c "$POOLLIB" -Wl,-rpath,"$(dirname "$POOLLIB")" || { echo "not ok - build poolleak"; exit 1; }
pline() { grep -n "/\* $1 \*/" poolleak.c | head -1 | cut -d: -f1; }
mkdir pk
"$MS" run --trace="$T/pk/t.%p.trace" --json="$T/pk/r.%p.json" -- ./poolleak >pk.out 2>pk.err; rc=$?
check "poolleak: runs under memsleuth, its forked child too" $([ $rc -eq 0 ] && grep -qx "child 0 r 1" pk.out && [ "$(ls pk/*.trace | wc -l)" = 2 ] && echo 0 || echo 1) pk.err
kid=$(grep -o '^==[0-9]*== ERROR SUMMARY' pk.err | head -1 | tr -dc 0-9)
par=$(grep -o '^==[0-9]*== ERROR SUMMARY' pk.err | tail -1 | tr -dc 0-9)
grep "^==$par==" pk.err >par.txt
grep "^==$kid==" pk.err >kid.txt
S=$(pline L_SRV) C=$(pline L_CACHE)
# the parent: two trees, largest first, each once at its root's creation site; the
# library's chunks nowhere in the loss records; the plain malloc leak as before
cat >par.want <<EOF2
5,240 bytes in 33 blocks are in pool tree "server" (3 allocators), never destroyed, pool record 1 of 2
   created at poolleak.c:$S
80 bytes in 5 blocks are in pool tree (unnamed) (1 allocator), never destroyed, pool record 2 of 2
   created at poolleak.c:$C
EOF2
grep -A1 "are in pool tree" par.txt | grep -v '^--$' | sed "s/^==$par== //" >par.got
check "exit report: each tree never destroyed once, at its creation site, with its subtree (exact)" \
    $(cmp -s par.want par.got && echo 0 || echo 1) par.got
check "exit report: the plain malloc leak unchanged (123 B definitely lost at poolleak.c:$(pline L_MALLOC)), no other loss record" \
    $(grep -q "123 bytes in 1 blocks are definitely lost in loss record 1 of 1" par.txt &&
      grep -q "main (poolleak.c:$(pline L_MALLOC))" par.txt && [ "$(grep -c 'in loss record' par.txt)" = 1 ] &&
      grep -q "definitely lost: 123 bytes in 1 blocks" par.txt && grep -q "still reachable: 0 bytes in 0 blocks" par.txt &&
      echo 0 || echo 1) par.txt
check "exit report: summary of the pool trees, the library's own heap blocks left out of the kinds" \
    $(grep -q "in pool trees never destroyed: 5,320 bytes in 38 blocks, 2 trees (4 allocators)" par.txt &&
      grep -qE "the pool library's own [0-9,]+ bytes in [0-9]+ heap blocks are not in the kinds above" par.txt &&
      [ "$(grep -c 'poolleak.c:' par.txt)" = 3 ] && echo 0 || echo 1) par.txt
check "exit report of the forked child: the inherited tree with the child's block (5,304 B in 34 blocks)" \
    $(grep -q "5,304 bytes in 34 blocks are in pool tree \"server\" (3 allocators), never destroyed, pool record 1 of 2" kid.txt &&
      grep -q "in pool trees never destroyed: 5,384 bytes in 39 blocks, 2 trees (4 allocators)" kid.txt && echo 0 || echo 1) kid.txt
cat >pk.py <<'EOF2'
import json, sys
j = json.load(open(sys.argv[1]))
got = [(t["name"], t["file"].split("/")[-1], t["line"], t["bytes"], t["blocks"], t["allocators"], t["own_bytes"],
        t["own_blocks"]) for t in j["pool_trees"]]
want = [("server", "poolleak.c", int(sys.argv[2]), 5240, 33, 3, 1000, 10),
        (None, "poolleak.c", int(sys.argv[3]), 80, 5, 1, 80, 5)]
print("pool_trees", got)
ok = got == want and j["summary"]["definitely_lost"] == {"bytes": 123, "blocks": 1} and \
     j["summary"]["still_reachable"] == {"bytes": 0, "blocks": 0} and j["pool_library_heap"]["blocks"] > 0 and \
     j["heap"]["in_use_bytes"] == 123 + j["pool_library_heap"]["bytes"]
sys.exit(0 if ok else 1)
EOF2
python3 pk.py "pk/r.$par.json" "$S" "$C" >pk.check 2>&1
check "JSON report: pool_trees with exact figures; the heap in use = the malloc leak + the library's own blocks" $? pk.check
"$MS" report --format=json "pk/t.$kid.trace" >pkk.json 2>pkk.err
"$MS" report "pk/t.$kid.trace" >pkk.txt 2>>pkk.err
"$MS" report --format=dump "pk/t.$kid.trace" >pkk.dump 2>>pkk.err
cat >pkk.py <<'EOF2'
import json, sys
pl = json.load(open(sys.argv[1]))["processes"][0]["pools"]
L = [int(x) for x in sys.argv[2:]]
t = pl["tree_at_end"]
got = ([(n["name"], n["file"], n["line"], n["depth"], n["inherited"], n["unknown_origin"], n["subtree_bytes"]) for n in t],
       pl["allocators_inherited"], pl["allocators_unknown_origin"], pl["allocators_created"], pl["unmatched_records"])
want = ([("server", "poolleak.c", L[0], 0, True, False, 64), ("conn", "poolleak.c", L[1], 1, True, False, 64),
         (None, "poolleak.c", L[2], 2, True, False, 64), (None, "poolleak.c", L[3], 0, True, False, 0)], 4, 0, 0, 0)
print(got)
sys.exit(0 if got == want else 1)
EOF2
python3 pkk.py pkk.json "$S" "$(pline L_CONN)" "$(pline L_REQ)" "$C" >pkk.check 2>&1
check "child's trace: its 4 inherited pools named, with their creation sites and tree (JSON)" $? pkk.check
check "child's trace: text and dump name them (inherited)" \
    $(grep -q "server created at poolleak.c:$S (inherited at fork): 64 B in 1 block, 3 allocators" pkk.txt &&
      grep -q "#2 conn poolleak.c:$(pline L_CONN) (inherited)" pkk.txt &&
      [ "$(grep -c '^POOL_NEW .*inherited=1' pkk.dump)" = 4 ] && grep -q '^POOL_NAME t=0 .*name="conn"' pkk.dump &&
      echo 0 || echo 1) pkk.txt
python3 "$HERE/../trace/check_trace.py" "pk/t.$kid.trace" --expect-end >ctk.out 2>&1
check "the child's trace reads cleanly with the independent decoder" $? ctk.out

# ---- under memsleuth without a trace: no pool hooks, same program
mkdir nt && cd nt && "$MS" run --trace=no -- ../poolprog >nt.out 2>nt.err; rc=$?
check "memsleuth run --trace=no: same output, no trace file" $([ $rc -eq 0 ] && grep -qx "sum 2041" nt.out && [ -z "$(ls ./*.trace 2>/dev/null)" ] && echo 0 || echo 1) nt.err
cd "$T" || exit 1

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
