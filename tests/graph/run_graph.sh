#!/usr/bin/env bash
# run_graph.sh MEMSLEUTH - the heap graph (GRAPH records, `memsleuth report`
# "Retained by root", "Why alive", "Roots that grew"): programs whose graph is
# known, figures checked exactly; snapshots taken repeatedly while 4 threads
# allocate and free hard.
set -u
MS=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/ms-graph.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill -9 $p 2>/dev/null; done; rm -rf "$T"' EXIT
cd "$T" || exit 1
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -30; }
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi; }
gcc -O1 -g -pthread -o graph_prog "$HERE/graph_prog.c" || exit 1

# jq-like checks on the report's JSON: py FILE 'python expression over g (heap_graph)'
py() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
g = d["processes"][0]["heap_graph"]
R = {r["name"]: r for r in g["retained_by_root"]} if g else {}
def root(kind, **kw):
    for r in g["retained_by_root"]:
        if r["kind"] == kind and all(r.get(k) == v for k, v in kw.items()):
            return r
    return None
ok = eval(sys.argv[2])
if not ok:
    print(json.dumps(g, indent=1)[:4000])
sys.exit(0 if ok else 1)
EOF
}

# ---- 1. known graph: registry, cycle on a thread's stack, shared subgraph, TLS ----
"$MS" run --trace="$T/k.trace" -- ./graph_prog known >k.out 2>k.err
check "the program under memsleuth runs (exit check with a graph)" $([ $? -eq 0 ] && grep -q "known ready" k.out && echo 0 || echo 1) k.err
"$MS" report --format=json --top=50 k.trace >k.json 2>k.rerr
check "report --format=json reads the graph" $([ $? -eq 0 ] && echo 0 || echo 1) k.rerr
py k.json 'g["graphs"] == 1 and g["incomplete_graphs"] == 0 and g["snapshot_id"] == 0' >k1.log
check "one complete graph, from the exit check" $? k1.log
py k.json 'R["g_registry"]["kind"] == "global" and R["g_registry"]["retained_bytes"] == 4012000 and R["g_registry"]["retained_blocks"] == 1000 and R["g_registry"]["section"] == ".bss" and R["g_registry"]["where"] == "graph_prog, .bss"' >k2.log
check "g_registry (graph_prog, .bss) retains its chain exactly: 4,012,000 bytes in 1,000 blocks" $? k2.log
py k.json 'root("stack", thread="holder", function="hold_cycle")["retained_bytes"] == 600 and root("stack", thread="holder", function="hold_cycle")["retained_blocks"] == 3' >k3.log
check "a cycle held only by thread 'holder''s stack: retained by that stack, in hold_cycle, 600 bytes in 3 blocks" $? k3.log
py k.json 'R["g_a"]["retained_bytes"] == 1111 and R["g_a"]["retained_blocks"] == 1 and R["g_b"]["retained_bytes"] == 2222 and R["g_b"]["retained_blocks"] == 1 and g["shared"]["bytes"] >= 7777 and g["shared"]["blocks"] >= 2' >k4.log
check "two globals sharing a subgraph: each retains only its own block, the shared 7,777 bytes belong to neither" $? k4.log
py k.json 'R["g_table"]["retained_bytes"] == 160000 + 20000 * 24 and R["g_table"]["retained_blocks"] == 20001' >k6.log
check "a block of 20,000 pointers (its edges in several records): g_table retains 640,000 bytes in 20,001 blocks" $? k6.log
py k.json 'R["tls_ptr"]["kind"] == "tls" and R["tls_ptr"]["retained_bytes"] == 5555 and R["tls_ptr"]["retained_blocks"] == 1' >k5.log
check "a block kept only by a __thread pointer: tls_ptr (tls) retains 5,555 bytes in 1 block" $? k5.log
"$MS" report k.trace >k.txt 2>&1
check "text: 'Retained by root' names the global by symbol with exact figures" $(grep -q "^    g_registry (graph_prog, .bss) retains 3.83 MiB (4012000 bytes) in 1,000 blocks (" k.txt && grep -q "^    stack of thread 'holder' (tid [0-9]*) (hold_cycle (graph_prog.c:[0-9]*)) retains 600 B" k.txt && grep -q "^    shared by several roots: " k.txt && echo 0 || echo 1) k.txt
"$MS" report --format=json --why=make_cycle k.trace >w1.json 2>&1
py w1.json '(lambda w: w["found"] and w["root"]["kind"] == "stack" and w["root"]["function"] == "hold_cycle" and w["site_blocks"] == 3 and w["site_bytes"] == 600 and len(w["chain"]) == 1 and w["chain"][0]["size"] == 100 and "make_cycle" in w["chain"][0]["site"])(g["why_alive"])' >w1.log
check "--why=make_cycle: the chain starts at holder's stack in hold_cycle, one pointer to the 100-byte block" $? w1.log
"$MS" report --format=json --why=build_shared k.trace >w2.json 2>&1
sid=$(python3 -c "import json; print(json.load(open('w2.json'))['processes'][0]['heap_graph']['why_alive']['stack_id'])" 2>/dev/null)
"$MS" report --format=json --why="$sid" k.trace >w3.json 2>&1
py w2.json '(lambda w: w["found"] and w["site_blocks"] == 4 and w["site_bytes"] == 11110 and w["root"]["name"] in ("g_a", "g_b") and len(w["chain"]) == 1)(g["why_alive"])' >w2.log
check "--why=FUNCTION: a block of build_shared's sites reached from g_a or g_b in one step" $? w2.log
py w3.json '(lambda w: w["found"] and w["query"] == "'"$sid"'" and w["stack_id"] == '"${sid:-0}"' and len(w["chain"]) >= 1)(g["why_alive"])' >w3.log
check "--why=STACK_ID picks the site by its stack id" $? w3.log
"$MS" report --why=build_registry k.trace >w4.txt 2>&1
check "text: 'Why alive' names the root by symbol and each step by site" $(grep -q "^  Why alive: build_registry (graph_prog.c:[0-9]*)" w4.txt && grep -q "^    g_registry+0 (graph_prog, .bss)" w4.txt && grep -q -- "-> 0x[0-9a-f]* (7.82 KiB) build_registry (graph_prog.c:" w4.txt && echo 0 || echo 1) w4.txt
"$MS" report --why=make_leaf k.trace >w6.txt 2>&1
check "text: each step after the first says where its pointer sits: make_leaf's block is held at build_field+0x18" $(grep -A3 "^  Why alive: make_leaf (graph_prog.c:[0-9]*)" w6.txt | grep -q "^    g_field+0 (graph_prog, .bss)" && grep -q -- "^      -> 0x[0-9a-f]* (72 B) build_field (graph_prog.c:[0-9]*)$" w6.txt && grep -q -- "^      -> 0x[0-9a-f]* (77 B) make_leaf (graph_prog.c:[0-9]*), held at build_field+0x18$" w6.txt && echo 0 || echo 1) w6.txt
"$MS" report --format=json --why=make_leaf k.trace >w6.json 2>&1
py w6.json '[(s["size"], s["holder"], s["offset"]) for s in g["why_alive"]["chain"]] == [(72, None, None), (77, "build_field", 24)]' >w6.log
check "JSON: the chain's steps carry holder and offset: (72 B, root), (77 B, build_field+24)" $? w6.log
# g_table[i] = malloc(24) for i from 19999 down to 0: the leaf that is the k-th 24-byte allocation
# of its site (the independent decoder, by time) sits in slot 19999 - k, at g_table + 8*(19999 - k)
sid=$(python3 -c "import json; d=json.load(open('k.json'))['processes'][0]['heap_graph']; print([r['stack_id'] for r in d['dominator_tree'] if r['label'].startswith('build_table') and r['size'] == 24][0])" 2>/dev/null)
"$MS" report --format=json --why="${sid:-0}" k.trace >w7.json 2>&1
leaf=$(python3 -c "import json; print(json.load(open('w7.json'))['processes'][0]['heap_graph']['why_alive']['chain'][-1]['address'])" 2>/dev/null)
idx=$(python3 "$HERE/../trace/check_trace.py" k.trace --allocs | awk -v s="${sid:-0}" '$3 == 24 && $4 == s' | awk -v a="$leaf" '$2 == a { print NR - 1 }')
py w7.json '(lambda c: len(c) == 2 and c[0]["size"] == 160000 and c[1]["size"] == 24 and c[1]["holder"] == "build_table" and c[1]["offset"] == 8 * (19999 - int("'"${idx:-x}"'")))(g["why_alive"]["chain"])' >w7.log
check "JSON: the chain through g_table's 20,000-pointer block (edges in GRAPH_EDGES records) reaches the leaf allocated ${idx:-?}th, held at offset 8 * (19999 - ${idx:-?})" $? w7.log
"$MS" report --why=no_such_function k.trace >w5.txt 2>&1
check "--why=unknown: says no block of the site is in the graph" $(grep -q "no live block of this site" w5.txt && echo 0 || echo 1) w5.txt
if [ -f "$HERE/../trace/check_trace.py" ]; then
    python3 "$HERE/../trace/check_trace.py" k.trace >c.out 2>&1
    check "an independent reader skips the GRAPH records (types 16-19) and reads the trace cleanly" $? c.out
fi
# the thread descriptor's size is measured, not assumed: the TLS groups of mod 0 span
# sizeof(struct pthread), as gdb with glibc's debug info says (2368 on Debian's 2.36-9+deb12u14)
want=$(timeout 60 gdb -batch -ex 'break main' -ex run -ex 'p sizeof(struct pthread)' --args ./graph_prog none 2>/dev/null | sed -n 's/^\$1 = \([0-9]*\)$/\1/p')
got=$(python3 "$HERE/../trace/check_trace.py" k.trace --tcb 2>&1)
if [ -n "$want" ]; then
    check "the thread-descriptor root groups span sizeof(struct pthread) = $want bytes (gdb): got '$got'" $([ "$got" = "$want" ] && echo 0 || echo 1)
else
    check "the thread-descriptor root groups have one measured size (no gdb/debug info to compare): got '$got'" $([[ "$got" =~ ^[0-9]+$ ]] && [ "$got" -ge 512 ] && echo 0 || echo 1)
fi
# the agent's own thread is no root: its stack (a mapping of the agent's; 8 MiB, mostly never
# touched, once scanned whole at every exit check) holds only stale pointers.  graph_prog
# leaves one 1 MiB below the thread's stack pointer: its block is definitely lost, and no
# root group of the exit graph holds that stack pointer (before, the block was "still
# reachable" from a MEMORY group spanning the agent's stack)
"$MS" run --trace="$T/a.trace" -- ./graph_prog agentsp >a.out 2>a.err
check "a block whose only pointer sits on the agent's thread's stack is definitely lost" $(grep -q "^sp [0-9]* 0x[0-9a-f]* 0x" a.out && grep -q "definitely lost: 4,321 bytes in 1 blocks" a.err && grep -q "still reachable: 0 bytes in 0 blocks" a.err && echo 0 || echo 1) a.err
python3 "$HERE/../trace/check_trace.py" a.trace --roots >a.roots 2>&1
python3 - a.out a.roots >a.log 2>&1 <<'EOF'
import sys
sps = [int(l.split()[2], 16) for l in open(sys.argv[1]) if l.startswith("sp ")]
groups = [tuple(int(x, 0) for x in l.split()) for l in open(sys.argv[2])]
inside = [(hex(sp), g[0], hex(g[1]), hex(g[2])) for sp in sps for g in groups if g[1] <= sp < g[2]]
print("agent sps", [hex(s) for s in sps], "root groups", len(groups), "holding one", inside)
sys.exit(0 if sps and not inside else 1)
EOF
check "no root group of the exit graph spans the agent's thread's stack pointer" $? a.log
# the exit check reads only the pages of a private anonymous mapping that were ever written
# (/proc/self/pagemap): a 1 GiB mapping with one written page costs no 262,144 page faults, and
# the pointer on that page still counts
python3 - "$MS" >sp.out 2>sp.err <<'EOF'
import os, subprocess, sys
p = subprocess.Popen([sys.argv[1], "run", "--trace=no", "--", "./graph_prog", "sparse"], stdout=subprocess.PIPE, stderr=sys.stderr)
out = p.stdout.read()
pid, status, ru = os.wait4(p.pid, 0)
print(out.decode().strip(), "status", status, "minor_faults", ru.ru_minflt)
EOF
check "a 1 GiB mapping with one written page: the program runs, under 20,000 page faults in all ($(sed -n 's/.*minor_faults //p' sp.out))" $(grep -q "sparse ready status 0 minor_faults" sp.out && [ "$(sed -n 's/.*minor_faults //p' sp.out)" -lt 20000 ] && echo 0 || echo 1) sp.out
check "the pointer on its one written page keeps its block (7,777 B) reachable; 8,888 B definitely lost" $(grep -q "definitely lost: 8,888 bytes in 1 blocks" sp.err && grep -q "still reachable: 7,777 bytes in 1 blocks" sp.err && echo 0 || echo 1) sp.err
"$MS" report --format=dump k.trace >k.dump 2>&1
check "the dump reads past the GRAPH records (types 16-19) to END, none UNKNOWN" $(grep -q "^GRAPH " k.dump && grep -q "^GRAPH_NODES " k.dump && grep -q "^GRAPH_EDGES " k.dump && grep -q "^GRAPH_ROOTS " k.dump && ! grep -Eq "^UNKNOWN type=1[6-9] " k.dump && grep -q "^END " k.dump && echo 0 || echo 1) k.dump
# the decoded GRAPH records rebuild the graph: counts as GRAPH says and as the report found,
# g_table's 160,000-byte block with its 20,000 edges (continued in GRAPH_EDGES) to 24-byte
# blocks, the cycle held by thread 'holder''s stack, the TLS block
python3 - k.dump k.json >kd.log 2>&1 <<'EOF2'
import json, re, sys
G = json.load(open(sys.argv[2]))["processes"][0]["heap_graph"]
head, nodes, roots = None, [], []
kv = lambda s: dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', s))
for line in open(sys.argv[1]):
    if line.startswith("GRAPH "):
        head = {k: int(v) for k, v in kv(line).items()}
        nodes, roots = [], []
    elif line.startswith("GRAPH_NODES "):
        f = kv(line.split(" nodes=")[0])
        assert int(f["first"]) == len(nodes), line[:200]
        for n in re.findall(r"\{([^}]*)\}", line):
            d = kv(n)
            to = [] if d["to"] == "-" else d["to"].split(",")
            assert int(d["i"]) == len(nodes) and int(d["n"]) == len(to), n
            nodes.append({"addr": int(d["addr"], 16), "size": int(d["size"]), "to": to})
    elif line.startswith("GRAPH_EDGES "):
        d = kv(line)
        assert int(d["src"]) == len(nodes) - 1, line[:200]
        to = d["to"].split(",")
        assert len(to) == int(d["n"])
        nodes[-1]["to"] += to
    elif line.startswith("GRAPH_ROOTS "):
        d = kv(line.split(" roots=")[0])
        for r in re.findall(r"\{([^}]*)\}", line):
            roots.append((d["kind"], d["thread"], kv(r)))
assert head and head["snapshot"] == 0 and head["flags"] == 0, head
assert len(nodes) == head["nblocks"] == G["blocks"], (len(nodes), head, G["blocks"])
assert sum(n["size"] for n in nodes) == G["bytes"], G["bytes"]
assert sum(len(n["to"]) for n in nodes) == head["nedges"] == G["edges"], (head, G["edges"])
assert len(roots) == head["nroots"] == G["root_edges"], (len(roots), head)
assert [n["addr"] for n in nodes] == sorted(n["addr"] for n in nodes)
big = [n for n in nodes if n["size"] == 160000]
assert len(big) == 1 and len(big[0]["to"]) == 20000, [len(b["to"]) for b in big]
assert all(nodes[int(t.rstrip("i"))]["size"] == 24 for t in big[0]["to"])
held = [nodes[int(r["node"].rstrip("i"))]["size"] for k, th, r in roots if k == "stack" and th == '"holder"']
assert held and all("pc" in r for k, th, r in roots if k == "stack"), held
assert any(k == "tls" and nodes[int(r["node"].rstrip("i"))]["size"] == 5555 for k, th, r in roots)
print("ok", len(nodes), "nodes", head["nedges"], "edges", len(roots), "roots")
EOF2
check "the dump decodes GRAPH records 16-19: nodes, edges and roots add up to GRAPH's counts and the report's graph" $? kd.log

# ---- 2. growth between snapshots ----
mkfifo g.in
"$MS" run --trace="$T/g.trace" -- ./graph_prog grow <g.in >g.out 2>g.err &
pids+=($!)
exec 3>g.in
snap_ok=0
for k in 1 2; do
    for _ in $(seq 1 200); do grep -q "snap $k" g.out 2>/dev/null && break; sleep 0.05; done
    PID=$(pgrep -P "${pids[-1]}" graph_prog | head -1)
    [ -n "$PID" ] && "$MS" snapshot "$PID" >snap$k.txt 2>&1 && snap_ok=$((snap_ok + 1))
    echo go >&3
done
exec 3>&-
wait "${pids[-1]}"
check "two snapshots of the growing program" $([ $snap_ok -eq 2 ] && grep -q "grow done" g.out && echo 0 || echo 1) g.err
"$MS" report --format=json g.trace >g.json 2>&1
py g.json 'g["graphs"] == 3 and g["root_growth"]["from_snapshot_id"] == 1 and g["root_growth"]["to_snapshot_id"] == 0 and [(r["name"], r["before_bytes"], r["before_blocks"], r["after_bytes"], r["after_blocks"], r["delta_bytes"]) for r in g["root_growth"]["roots"]][:1] == [("g_registry", 41200, 100, 1447200, 600, 1406000)]' >g1.log
check "roots that grew: g_registry 41,200 -> 1,447,200 bytes (100 -> 600 blocks) from snapshot 1 to the exit check" $? g1.log
"$MS" report g.trace >g.txt 2>&1
check "text: 'Roots that grew' section" $(grep -A1 "^  Roots that grew (snapshot 1 at" g.txt | grep -q "g_registry (graph_prog, .bss): 40.2 KiB -> 1.38 MiB (+1406000 bytes, 100 -> 600 blocks)" && echo 0 || echo 1) g.txt

# ---- 3. stress: snapshots in a loop while 4 threads allocate and free hard ----
# (each snapshot's pause is short, but on 2 cores its reply waits for the trace
# writer, which 4 hot threads starve, and its report is written while they run
# on: up to several seconds under load; the loop stops after 3 snapshots or
# 25 s and asks for at least 2, then tells the program to stop: this checks
# survival, not speed)
rm -f "$T/stress.stop"
"$MS" run --trace="$T/s.trace" -- ./graph_prog stress 60000 "$T/stress.stop" >s.out 2>s.err &
pids+=($!)
for _ in $(seq 1 100); do grep -q "stress ready" s.out 2>/dev/null && break; sleep 0.05; done
PID=$(pgrep -P "${pids[-1]}" graph_prog | head -1)
nsnap=0
start=$(date +%s)
while [ $(($(date +%s) - start)) -lt 25 ] && [ $nsnap -lt 3 ] && kill -0 "$PID" 2>/dev/null; do
    timeout 30 "$MS" snapshot "$PID" >s.snap 2>&1 && nsnap=$((nsnap + 1))
done
touch "$T/stress.stop"
timeout 60 tail --pid="$PID" -f /dev/null
wait "${pids[-1]}"; rc=$?
check "stress: $nsnap snapshots while 4 threads churn; no crash, no deadlock, the program's output right" $([ $rc -eq 0 ] && [ $nsnap -ge 2 ] && grep -q "stress done ok" s.out && echo 0 || echo 1) s.err
"$MS" report --format=json s.trace >s.json 2>s.rerr
check "stress: the report reads every graph, none incomplete" $([ $? -eq 0 ] && py s.json 'g["graphs"] >= '"$((nsnap + 1))"' and g["incomplete_graphs"] == 0' >s1.log && echo 0 || echo 1) s1.log

# ---- 4. peak snapshots (--snapshot-peak): the heap steps 10 -> 15 -> 25 -> 40 MiB -> 10 MiB ----
# pj FILE 'python expression over p (the process)'
pj() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))["processes"][0]
S = [(s["id"], s["trigger"], s["live_bytes"], s["live_blocks"]) for s in p["snapshots"]]
ok = eval(sys.argv[2])
if not ok:
    print(S, p["peak_snapshot"], p["peak_bytes"])
sys.exit(0 if ok else 1)
EOF
}
M=1048576
"$MS" run --trace="$T/p2.trace" --snapshot-peak=2 --snapshot-peak-min=8M -- ./graph_prog peak >p2.out 2>p2.err
check "peak program under --snapshot-peak=2 --snapshot-peak-min=8M: runs, nothing printed by the peak snapshots" $([ $? -eq 0 ] && grep -q "peak done" p2.out && ! grep -q SNAPSHOT p2.err && echo 0 || echo 1) p2.err
"$MS" report --format=json p2.trace >p2.json 2>&1
pj p2.json 'S == [(1, "peak", 10*'$M', 1), (2, "peak", 25*'$M', 3)] and p["peak_bytes"] == 40*'$M' and p["peak_snapshot"]["id"] == 2 and p["peak_snapshot"]["live_bytes"] == 25*'$M' and p["peak_snapshot"]["share_of_peak"] == 0.625 and p["heap_graph"]["graphs"] == 3' >p2.log
check "factor 2 from 8 MiB: peak snapshots at exactly 10 and 25 MiB (15 < 2x10, 40 < 2x25); the peak snapshot holds 62.5% >= 1/2 of the 40 MiB peak; 3 graphs" $? p2.log
"$MS" report p2.trace >p2.txt 2>&1
check "text: the peak snapshot against the exact peak, snapshots marked 'peak'" $(grep -q "^  peak snap  snapshot 2 at [0-9.]* m\?s (--snapshot-peak) holds 25.0 MiB, 62.5% of the peak heap$" p2.txt && grep -q "^  snapshots  1 at .* (peak, pause " p2.txt && grep -q "^             2 at .* (peak, pause .*reachable 25.0 MiB$" p2.txt && echo 0 || echo 1) p2.txt
"$MS" run --trace="$T/p15.trace" --snapshot-peak=1.5 --snapshot-peak-min=8M -- ./graph_prog peak >p15.out 2>p15.err
"$MS" report --format=json p15.trace >p15.json 2>&1
pj p15.json '[x[2] for x in S] == [10*'$M', 15*'$M', 25*'$M', 40*'$M'] and all(x[1] == "peak" for x in S) and p["peak_snapshot"]["id"] == 4 and p["peak_snapshot"]["share_of_peak"] == 1' >p15.log
check "factor 1.5 from 8 MiB: peak snapshots at 10, 15, 25 and 40 MiB; the last one is the true peak" $? p15.log
"$MS" run --trace="$T/pd.trace" -- ./graph_prog peak >pd.out 2>pd.err
"$MS" report --format=json pd.trace >pd.json 2>&1
pj pd.json 'S == [] and p["peak_snapshot"] is None and p["peak_bytes"] == 40*'$M' and p["heap_graph"]["graphs"] == 1' >pd.log
check "defaults (from 64 MiB): a 40 MiB program is never paused for a peak snapshot" $? pd.log
"$MS" run --trace="$T/pn.trace" --snapshot-peak=no --snapshot-peak-min=1K -- ./graph_prog peak >pn.out 2>pn.err
"$MS" report --format=json pn.trace >pn.json 2>&1
pj pn.json 'S == [] and p["peak_snapshot"] is None' >pn.log
check "--snapshot-peak=no: no peak snapshot even above the minimum" $? pn.log
"$MS" run --snapshot-peak=1 -- ./graph_prog peak >pb.out 2>pb.err
check "--snapshot-peak=1 is refused with one line" $([ $? -eq 2 ] && [ "$(wc -l <pb.err)" -eq 1 ] && grep -q "bad value '1' for option --snapshot-peak" pb.err && echo 0 || echo 1) pb.err

# ---- 5. --graph=no: verdicts only, no records 16-19, and the report says so ----
"$MS" run --graph=no --trace="$T/ng.trace" --snapshot-peak=2 --snapshot-peak-min=8M -- ./graph_prog peak >ng.out 2>ng.err
check "--graph=no: the program runs and the exit verdicts are printed" $([ $? -eq 0 ] && grep -q "peak done" ng.out && grep -q "still reachable: 10,485,760 bytes in 1 blocks" ng.err && echo 0 || echo 1) ng.err
"$MS" report --format=dump ng.trace >ng.dump 2>&1
check "--graph=no: the trace has no record of types 16-19, but its 2 peak SNAPSHOTs and its LEAK records" $(! grep -Eq "^(GRAPH|UNKNOWN type=1[6-9])" ng.dump && [ "$(grep -c "^SNAPSHOT .*trigger=peak" ng.dump)" -eq 2 ] && grep -q "^LEAK " ng.dump && grep -q "^END " ng.dump && echo 0 || echo 1) ng.dump
"$MS" report ng.trace >ng.txt 2>&1
check "--graph=no: the text report says the heap graph is absent" $(grep -q "^  Retained by root: no heap graph in this trace (--graph=no, or no reachability check ran)$" ng.txt && [ "$(grep "no heap graph in this trace" ng.txt | wc -L)" -le 100 ] && ! grep -q "retains" ng.txt && echo 0 || echo 1) ng.txt
"$MS" report --format=json ng.trace >ng.json 2>&1
py ng.json 'g is None' >ng.log
check "--graph=no: JSON heap_graph is null" $? ng.log

# ---- 6. HTML: the dominator tree as an expandable table, retained per root over the snapshots ----
"$MS" report --format=json k.trace >kt.json 2>&1
py kt.json '[(r["parent"], r["label"], r["retained_bytes"], r["retained_blocks"]) for r in g["dominator_tree"] if r["parent"] == -1][:2] == [(-1, "g_registry (graph_prog, .bss)", 4012000, 1000), (-1, "g_table (graph_prog, .bss)", 640000, 20001)] and (lambda t: t[1]["parent"] == 0 and t[1]["retained_blocks"] == 1000 and t[1]["size"] == 16 + 8 * 999 and t[2]["retained_blocks"] == 999)(g["dominator_tree"])' >kt1.log
check "JSON dominator_tree: g_registry's row, then the chain's head (8008 B) retaining 1,000 blocks, then 999" $? kt1.log
py kt.json '(lambda r: r["children"] == 20000 and r["more"]["children"] == 19992 and r["more"]["blocks"] == 19992 and r["more"]["bytes"] == 19992 * 24)([x for x in g["dominator_tree"] if x["label"].startswith("build_table") and x["size"] == 160000][0])' >kt2.log
check "JSON dominator_tree: g_table's 160,000-byte block has 20,000 children, 8 shown, 19,992 (479,808 bytes) summed" $? kt2.log
# snapshot 2 is taken while the program waits in read(), its frames over the
# dead stack where the 500 allocations ran: exact (before the unwinder's frames
# were scrubbed, a copy of the chain's head left there made it 0)
py g.json '(lambda s: [q["trigger"] for q in s["graphs"]] == ["command", "command", "exit"] and [(r["bytes"], r["blocks"]) for r in s["roots"] if r["name"] == "g_registry"] == [([41200, 1447200, 1447200], [100, 600, 600])])(g["root_series"])' >gs.log
check "JSON root_series: g_registry retains 41,200 at snapshot 1, 1,447,200 at snapshot 2 and at the exit check" $? gs.log
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROME" ]; then
    echo "ok - skip html in headless Chromium: chromium is not installed"
else
    chrome() { timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$T/chrome" "$@" 2>>"$T/chrome.log"; }
    "$MS" report --format=html -o k.html k.trace 2>&1
    chrome --window-size=1400,1000 --dump-dom "file://$T/k.html#selftest-graph" >kdom.html
    want=$(python3 -c '
import json
g = json.load(open("kt.json"))["processes"][0]["heap_graph"]; t = g["dominator_tree"]
roots = [i for i, r in enumerate(t) if r["parent"] == -1]
first = roots[0]; kids = [i for i, r in enumerate(t) if r["parent"] == first]
more = 1 if t[first]["more"]["children"] else 0
print("rows=%d shown=%d expanded=%d collapsed=%d series=%d" % (len(t), len(roots), len(roots) + len(kids) + more, len(roots), len(g["root_series"]["roots"])))')
    check "html: the page runs without a JavaScript error; the dominator tree expands and collapses by click ($want)" $(grep -q '<body data-status="ready"' kdom.html && grep -q '<div id="ms-errors"></div>' kdom.html && grep -q "data-selftest-graph=\"$want open=" kdom.html && echo 0 || echo 1) kdom.html
    check "html: the section names the roots and the graph" $(grep -qF "Retained by root: the dominator tree of the exit check" kdom.html && grep -qF "g_registry (graph_prog, .bss)" kdom.html && grep -qF "19,992 more, the smallest" kdom.html && echo 0 || echo 1)
    # why alive in the page: the top growth suspect (build_registry, held by g_registry) and
    # the sites with the most bytes in the graph, the same chains as the JSON, each step
    # named by site, globals by symbol, field offsets as in the text (build_shared+0x18)
    check "html: Why alive shows the chains of the JSON (suspect build_registry from g_registry+0; build_shared held at build_shared+0x18; at most 6)" $(python3 - kdom.html kt.json <<'EOF2' >kw.log 2>&1 && echo 0 || echo 1
import html, json, re, sys
d = open(sys.argv[1], encoding="utf-8").read()
g = json.load(open(sys.argv[2]))["processes"][0]["heap_graph"]
sec = re.search(r'<div class="whyalive" id="why-0">(.*?)</div></div>(?=<h3>Retained per root)', d, re.S)
assert sec, "no Why alive section"
assert "Why alive: the shortest chain of pointers from a root to a block of the site (the exit check)" in sec.group(1)
chains = []
for m in re.finditer(r'<div class="whychain" data-stack="(\d+)">(.*?)</ol>', sec.group(1), re.S):
    lis = [html.unescape(re.sub(r"<[^>]*>", "", x)).replace("\u00a0", " ").strip() for x in re.findall(r"<li[^>]*>(.*?)</li>", m.group(2), re.S)]
    head = html.unescape(re.sub(r"<[^>]*>", "", re.search(r'<div class="whyhead">(.*?)</div>', m.group(2), re.S).group(1)))
    chains.append((int(m.group(1)), head, lis))
want = [g["why_alive"]] + g["why_alive_sites"]
assert 2 <= len(chains) == len(want) <= 6, (len(chains), len(want))
for (sid, head, lis), w in zip(chains, want):
    assert sid == w["stack_id"] and w["site"] in head, (sid, head, w["site"])
    assert lis[0].startswith(w["root_label"]) and len(lis) == 1 + len(w["chain"]), lis
    for li, s in zip(lis[1:], w["chain"]):
        assert li.startswith("\u2192 " + s["site"] + "  " + s["address"] + " ("), (li, s)
sid, head, lis = chains[0]
assert head.startswith("top growth suspectbuild_registry (graph_prog.c:"), head
assert lis[0] == "g_registry+0 (graph_prog, .bss)  [global]" and "build_registry (graph_prog.c:" in lis[1], lis
sh = [c for c in chains if "build_shared (graph_prog.c:" in c[1]]
assert sh and any(l.endswith(", held at build_shared+0x18") for l in sh[0][2]), sh
assert all(c[1].startswith("site with the most bytes in the graph") for c in chains[1:])
print("ok", len(chains), "chains")
EOF2
) kw.log
    chrome --window-size=1400,1000 --screenshot="$T/why.png" "file://$T/k.html#why-0" >/dev/null
    check "html: a screenshot of the Why alive section (#why-0) is not blank" $(python3 - "$T/why.png" <<'EOF2' >kws.log 2>&1 && echo 0 || echo 1
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n"
w, h, depth, ctype = struct.unpack(">IIBB", b[16:26])
data, i = b"", 8
while i < len(b):
    n, = struct.unpack(">I", b[i:i + 4]); kind = b[i + 4:i + 8]
    if kind == b"IDAT": data += b[i + 8:i + 8 + n]
    i += 12 + n
raw = zlib.decompress(data)
bpp = {2: 3, 6: 4}[ctype]
# filter bytes aside, the distinct byte values of the rows say whether anything is drawn
rows = [raw[y * (w * bpp + 1) + 1:(y + 1) * (w * bpp + 1)] for y in range(h)]
busy = sum(1 for r in rows if len(set(r)) > 8)
assert (w, h) == (1400, 1000) and busy > 200, (w, h, busy)
print("rows with content", busy)
EOF2
) kws.log
    "$MS" report --format=html -o g.html g.trace 2>&1
    chrome --window-size=1400,1000 --dump-dom "file://$T/g.html" >gdom.html
    check "html: retained per root over 3 graphs, a sparkline per root" $(grep -q '<body data-status="ready"' gdom.html && grep -qF "3 graphs: snapshot 1 (command) at" gdom.html && python3 -c '
import re, sys
d = open("gdom.html").read()
rows = re.findall(r"<tr class=\"rseries\"[^>]*>(.*?)</tr>", d, re.S)
ok = rows and all("<svg" in r for r in rows) and any("g_registry (graph_prog, .bss)" in r and "+1.34 MiB" in r for r in rows)
sys.exit(0 if ok else 1)' && echo 0 || echo 1)
    "$MS" report --format=html -o ng.html ng.trace 2>&1
    chrome --window-size=1400,1000 --dump-dom "file://$T/ng.html" >ngdom.html
    check "html: a trace without a graph (--graph=no) says so" $(grep -q '<body data-status="ready"' ngdom.html && grep -qF "No heap graph in this trace (the run had --graph=no" ngdom.html && echo 0 || echo 1)
fi

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]
