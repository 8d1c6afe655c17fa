#!/bin/sh
# Build and run the unit test of src/common/supp.c twice: plain -O2 and with
# -fsanitize=address,undefined.  Usage: build_test_supp.sh [OUTDIR]
# (default /tmp/ms-supp-test).  CC selects the compiler (default gcc).
# Exit status: 0 if both runs pass.
set -eu

OUT=${1:-/tmp/ms-supp-test}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CC=${CC:-gcc}
SRC="$ROOT/src/common/supp.c"
TEST="$ROOT/tests/unit/test_supp.c"
WARN="-std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror"

mkdir -p "$OUT"

# The module must compile cleanly with the project's flags.
$CC $WARN -fPIC -O2 -c "$SRC" -o "$OUT/supp.o"

# Allocation failures are injected by wrapping malloc/calloc/realloc.
WRAP="-DMS_TEST_WRAP_MALLOC -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc"
$CC $WARN -O2 -g $WRAP -I"$ROOT/src/common" "$TEST" "$OUT/supp.o" \
    -o "$OUT/test_supp"
$CC $WARN -O1 -g -fno-omit-frame-pointer \
    -fsanitize=address,undefined -fno-sanitize-recover=all \
    $WRAP -I"$ROOT/src/common" "$TEST" "$SRC" -o "$OUT/test_supp_asan"

status=0
echo "== $OUT/test_supp"
"$OUT/test_supp" "$OUT/scratch" > "$OUT/test_supp.log" 2>&1 || status=1
grep -v '^ok ' "$OUT/test_supp.log" || true

echo "== $OUT/test_supp_asan (address,undefined)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$OUT/test_supp_asan" "$OUT/scratch-asan" > "$OUT/test_supp_asan.log" 2>&1 \
    || status=1
grep -v '^ok ' "$OUT/test_supp_asan.log" || true

rmdir "$OUT/scratch" "$OUT/scratch-asan" 2>/dev/null || true
if [ "$status" -ne 0 ]; then
    echo "FAIL (full logs: $OUT/test_supp.log, $OUT/test_supp_asan.log)"
fi
exit "$status"
