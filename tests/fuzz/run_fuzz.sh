#!/usr/bin/env bash
# run_fuzz.sh SECONDS [TARGET...] - build the libFuzzer targets (clang, ASan+UBSan) of the
# suppression parser (fuzz_supp), the `run` option parser (fuzz_options) and the command
# line of `report`/`diff` (fuzz_cli), and run each for SECONDS on a copy of its corpus
# (tests/fuzz/corpus_*); fails on any crash, leak, timeout or out-of-memory.  TARGET: supp,
# options, cli (default all).  Artifacts of a failure are copied to /tmp/ms-fuzz-crashes/.
set -euo pipefail
SECS=${1:-120}
shift || true
TARGETS=${*:-supp options cli}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$(mktemp -d /tmp/ms-fuzz.XXXXXX)
trap 'rm -rf "$B"' EXIT
command -v clang >/dev/null || { echo "clang is needed (apt-get install clang)"; exit 1; }
FL="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE"
clang $FL -I"$ROOT/src/common" -o "$B/fuzz_supp" "$ROOT/tests/fuzz/fuzz_supp.c" "$ROOT/src/common/supp.c"
clang $FL -o "$B/fuzz_options" "$ROOT/tests/fuzz/fuzz_options.c" "$ROOT/src/common/options.c"
clang $FL -I"$ROOT/src/analyze" -I"$ROOT/src/common" -o "$B/fuzz_cli" "$ROOT/tests/fuzz/fuzz_cli.c" \
    "$ROOT"/src/analyze/*.c "$ROOT/src/common/symbolize.c" -lzstd -lz -ldw -lelf -ldl -lm
status=0
for t in $TARGETS; do
    mkdir -p "$B/corpus_$t" "$B/art_$t" && cp -r "$ROOT/tests/fuzz/corpus_$t/." "$B/corpus_$t/"
    echo "fuzz_$t: ${SECS}s, $(ls "$B/corpus_$t" | wc -l) seeds"
    if "$B/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
        -artifact_prefix="$B/art_$t/" "$B/corpus_$t" >"$B/$t.log" 2>&1; then
        echo "ok fuzz_$t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$B/$t.log" | tail -1)," \
            "$(grep -o 'cov: [0-9]* ft: [0-9]*' "$B/$t.log" | tail -1)"
    else
        echo "not ok fuzz_$t"; tail -30 "$B/$t.log"; status=1
        mkdir -p /tmp/ms-fuzz-crashes && cp "$B/art_$t"/* /tmp/ms-fuzz-crashes/ 2>/dev/null || true
        echo "artifacts copied to /tmp/ms-fuzz-crashes/"
    fi
done
exit $status
