#!/usr/bin/env bash
# run_fuzz.sh [SECONDS] - build tests/analyze/fuzz_trace.c (clang, libFuzzer, ASan+UBSan) and
# run it for SECONDS (default 120) on a copy of tests/analyze/corpus/ plus seeds written
# just now by mktrace (whose MODULE records name a file that exists, so the symbolizer runs
# too).  Fails on any crash, leak, timeout or out-of-memory.
set -euo pipefail
SECS=${1:-120}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T="$ROOT/tests/analyze"
B=$(mktemp -d /tmp/ms-fuzz-trace.XXXXXX)
trap 'rm -rf "$B"' EXIT
command -v clang >/dev/null || { echo "clang is needed (apt-get install clang)"; exit 1; }
FL="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE"
clang $FL -I"$ROOT/src/analyze" -I"$ROOT/src/common" -o "$B/fuzz_trace" "$T/fuzz_trace.c" \
    "$ROOT"/src/analyze/*.c "$ROOT/src/common/symbolize.c" \
    -lzstd -lz -ldw -lelf -ldl -lm
gcc -std=c17 -D_GNU_SOURCE -O0 -g -o "$B/mktrace" "$T/mktrace.c" -lzstd
mkdir -p "$B/corpus"
cp "$T"/corpus/* "$B/corpus/"
(
    cd "$B"
    MKTRACE_SEED=corpus/new_framed_normal ./mktrace normal n.trace n.exp
    MKTRACE_SEED=corpus/new_framed_child ./mktrace child c.trace c.exp
    MKTRACE_SEED=corpus/new_framed_iter ./mktrace iter 30 i.trace i.exp
    { printf '\000'; cat c.trace; } >corpus/new_raw_child
    { printf '\002'; cat i.trace; } >corpus/new_raw_iter_nocheck
)
echo "fuzz_trace: ${SECS}s, $(ls "$B/corpus" | wc -l) seeds"
# -timeout is wall time: 30 s, as a run symbolizing real modules (libdw decompressing debug
# sections) costs about 0.3 s of CPU but took 5-7 s at a load average of 14-25 on 2 cores
# (docs/ROBUSTNESS.md); a hang still fails.  Artifacts go to $B, copied below on failure.
if "$B/fuzz_trace" -max_total_time="$SECS" -timeout=30 -rss_limit_mb=2048 -max_len=32768 \
    -print_final_stats=1 -artifact_prefix="$B/" "$B/corpus" >"$B/log" 2>&1; then
    echo "ok fuzz_trace: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$B/log" | tail -1)," \
        "$(grep -o 'cov: [0-9]* ft: [0-9]*' "$B/log" | tail -1)"
else
    echo "not ok fuzz_trace"
    grep -v '^memsleuth' "$B/log" | tail -40
    mkdir -p /tmp/ms-fuzz-trace-crashes
    cp "$B"/crash-* "$B"/leak-* "$B"/timeout-* "$B"/oom-* /tmp/ms-fuzz-trace-crashes/ 2>/dev/null || true
    echo "artifacts copied to /tmp/ms-fuzz-trace-crashes/"
    exit 1
fi
