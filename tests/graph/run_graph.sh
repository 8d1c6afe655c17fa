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
"$MS" report --why=no_such_function k.trace >w5.txt 2>&1
check "--why=unknown: says no block of the site is in the graph" $(grep -q "no live block of this site" w5.txt && echo 0 || echo 1) w5.txt
if [ -f "$HERE/../trace/check_trace.py" ]; then
    python3 "$HERE/../trace/check_trace.py" k.trace >c.out 2>&1
    check "an independent reader skips the GRAPH records (types 16-19) and reads the trace cleanly" $? c.out
fi
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
"$MS" run --trace="$T/s.trace" -- ./graph_prog stress 6000 >s.out 2>s.err &
pids+=($!)
for _ in $(seq 1 100); do grep -q "stress ready" s.out 2>/dev/null && break; sleep 0.05; done
PID=$(pgrep -P "${pids[-1]}" graph_prog | head -1)
nsnap=0
start=$(date +%s)
while [ $(($(date +%s) - start)) -lt 5 ] && kill -0 "$PID" 2>/dev/null; do
    timeout 30 "$MS" snapshot "$PID" >s.snap 2>&1 && nsnap=$((nsnap + 1))
done
timeout 60 tail --pid="$PID" -f /dev/null
wait "${pids[-1]}"; rc=$?
check "stress: $nsnap snapshots while 4 threads churn; no crash, no deadlock, the program's output right" $([ $rc -eq 0 ] && [ $nsnap -ge 5 ] && grep -q "stress done ok" s.out && echo 0 || echo 1) s.err
"$MS" report --format=json s.trace >s.json 2>s.rerr
check "stress: the report reads every graph, none incomplete" $([ $? -eq 0 ] && py s.json 'g["graphs"] >= '"$((nsnap + 1))"' and g["incomplete_graphs"] == 0' >s1.log && echo 0 || echo 1) s1.log

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]
