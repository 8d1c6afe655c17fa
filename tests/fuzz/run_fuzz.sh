#!/usr/bin/env bash
# run_fuzz.sh SECONDS - build every libFuzzer target (clang, ASan+UBSan) and run
# each for SECONDS on a copy of its corpus; fails on any crash, leak or hang.
set -euo pipefail
SECS=${1:-120}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$(mktemp -d /tmp/ms-fuzz.XXXXXX)
trap 'rm -rf "$B"' EXIT
command -v clang >/dev/null || { echo "clang is needed (apt-get install clang)"; exit 1; }
FL="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE"
clang $FL -Isrc/common -o "$B/fuzz_supp" "$ROOT/tests/fuzz/fuzz_supp.c" "$ROOT/src/common/supp.c"
clang $FL -o "$B/fuzz_options" "$ROOT/tests/fuzz/fuzz_options.c" "$ROOT/src/common/options.c"
status=0
for t in supp options; do
    mkdir -p "$B/corpus_$t" && cp -r "$ROOT/tests/fuzz/corpus_$t/." "$B/corpus_$t/"
    echo "fuzz_$t: ${SECS}s"
    if "$B/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=1024 "$B/corpus_$t" >"$B/$t.log" 2>&1; then
        echo "ok fuzz_$t: $(grep -o 'Done [0-9]* runs' "$B/$t.log" | tail -1)"
    else
        echo "not ok fuzz_$t"; tail -30 "$B/$t.log"; status=1
    fi
done
exit $status
