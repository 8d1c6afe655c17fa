#!/usr/bin/env bash
# run_sample.sh MEMSLEUTH - --sample-rate: a program whose verdicts are known
# (tests/sample/sample_prog.c: 2000 x 1000 B definitely lost, a list of
# 100000 x 48 B still reachable, churn and realloc growth freed) run
#   - with every allocation recorded (rate 0) and with rate 1: the same exact
#     verdicts (every block is then recorded: the sampler itself changes nothing);
#   - with rate 64K: the estimated totals within 40% of the truth, only the
#     1000-byte blocks called definitely lost (the list's recorded nodes are
#     reached through the unrecorded ones), the same output and status as
#     native, the same figures on a second run (the sampler's random numbers
#     are seeded per thread in order), the trace and `memsleuth report` say
#     the run was sampled;
#   - bad values refused with one line and status 2.
set -u
MS=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/ms-sample.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | tail -20; }
check() { if [ "$2" -eq 0 ]; then ok "$1"; else bad "$1" "${3:-}"; fi; }
gcc -O2 -g -o sample_prog "$HERE/sample_prog.c" || exit 1

./sample_prog >native.out; nst=$?
for r in 0 1 64K 64Ka; do
    rate=${r%a}
    "$MS" run --sample-rate="$rate" --json="j.$r.json" --trace="t.$r.trace" -- ./sample_prog >"o.$r" 2>"e.$r"
    echo $? >"st.$r"
done

# py FILE EXPR: EXPR over the agent's JSON d, s = summary, e = sampling estimates
py() {
    python3 - "$@" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]
e = d.get("sampling", {}).get("estimated", {})
sys.exit(0 if eval(sys.argv[2]) else 1)
PYEOF
}

py j.0.json 's["definitely_lost"] == {"bytes": 2000000, "blocks": 2000} and s["still_reachable"] == {"bytes": 4800000, "blocks": 100000}'
check "every allocation recorded: 2,000,000 B in 2,000 blocks lost, 4,800,000 B in 100,000 reachable" $? j.0.json
py j.1.json 's["definitely_lost"] == {"bytes": 2000000, "blocks": 2000} and s["still_reachable"] == {"bytes": 4800000, "blocks": 100000} and d["sampling"]["rate_bytes"] == 1'
check "--sample-rate=1 records every block: the same exact verdicts" $? j.1.json
py j.64K.json 'd["sampling"]["rate_bytes"] == 65536 and 1200000 <= e["definitely_lost"]["bytes"] <= 2800000'
check "--sample-rate=64K: estimated definitely lost within 40% of 2,000,000 B" $? j.64K.json
py j.64K.json '2880000 <= e["still_reachable"]["bytes"] <= 6720000'
check "--sample-rate=64K: estimated still reachable within 40% of 4,800,000 B" $? j.64K.json
py j.64K.json 's["definitely_lost"]["blocks"] > 0 and all(r["bytes"] == 1000 * r["blocks"] for r in d["records"] if r["kind"] == "definitely_lost")'
check "--sample-rate=64K: only the 1000-byte blocks are called definitely lost (list nodes reached through unrecorded ones)" $? j.64K.json
py j.64K.json 'd["summary"]["definitely_lost"]["bytes"] < 2000000 and d["heap"]["allocs"] < 3000'
check "--sample-rate=64K: only a sample was recorded" $? j.64K.json
py j.64K.json 'json.load(open("j.64Ka.json"))["summary"] == s'
check "--sample-rate=64K: a second run gives the same figures" $? j.64Ka.json
same=0
for r in 0 1 64K; do
    cmp -s native.out "o.$r" && [ "$(cat st.$r)" = "$nst" ] || same=1
done
check "output and exit status as native at every rate" $same
grep -q "Sampled run (--sample-rate=65536)" e.64K && ! grep -q "Invalid free" e.64K
check "the text report says the run was sampled; no invalid free from unrecorded blocks" $? e.64K
"$MS" report t.64K.trace >rep.txt 2>&1 && grep -q "sampled    --sample-rate=65536" rep.txt
check "memsleuth report says the trace is sampled" $? rep.txt
"$MS" report --format=json t.64K.trace >rep.json 2>rep.err &&
    python3 -c 'import json,sys; d=json.load(open("rep.json")); sys.exit(0 if "\"sample_rate_bytes\": 65536" in open("rep.json").read() else 1)'
check "report JSON has sample_rate_bytes" $? rep.json
"$MS" run --sample-rate=1K --trace=no -- ./sample_prog >/dev/null 2>e.1K
grep -q "Sampled run (--sample-rate=1024)" e.1K
check "--sample-rate=1K means 1024 bytes" $? e.1K
for v in -1 abc 12Q ""; do
    "$MS" run --sample-rate="$v" -- ./sample_prog >/dev/null 2>err.txt
    st=$?
    [ $st -eq 2 ] && [ "$(wc -l <err.txt)" -eq 1 ]
    check "--sample-rate='$v' refused with one line, status 2" $? err.txt
done

echo "# sample: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
