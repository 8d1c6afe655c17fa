#!/bin/sh
# Build and run the unit test of src/agent/unwind.c.
# Usage: tests/unit/build_test_unwind.sh [OUTDIR]   (default /tmp/ms-unwind-test)
#        BENCH=1 tests/unit/build_test_unwind.sh OUTDIR   also builds and runs bench/unwind_bench.c
# Builds two variants of the test: the helpers (unwind_deep.c, the frames the
# unwinder walks, and unwind_nocfi.c, the same without unwind information)
# compiled with -O2 -fomit-frame-pointer, and with -O0; the
# dlopen'd helper library (-O2 -fomit-frame-pointer) and the C++ helper
# library (g++ -O2) are shared.  Runs each; exits non-zero if a build or a
# run fails.  The last line is the total "N passed, M failed".
set -eu
OUT=${1:-/tmp/ms-unwind-test}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CFLAGS="-std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror"
CXXFLAGS="-std=c++17 -Wall -Wextra -Werror"
LIBS="-lunwind -ldl -lpthread"
mkdir -p "$OUT"
cd "$ROOT"

echo "# building src/agent/unwind.c and the shared helpers in $OUT"
gcc $CFLAGS -O2 -fPIC -c src/agent/unwind.c -o "$OUT/unwind.o"
gcc $CFLAGS -O2 -fomit-frame-pointer -fPIC -shared tests/unit/unwind_dl.c -o "$OUT/libunwind_dl.so"
g++ $CXXFLAGS -O2 -fPIC -shared tests/unit/unwind_cxx.cc -o "$OUT/libunwind_cxx.so"

status=0
passed=0
failed=0
for variant in O2-nofp O0; do
    case $variant in
        O2-nofp) HFLAGS="-O2 -fomit-frame-pointer" ;;
        O0)      HFLAGS="-O0" ;;
    esac
    D="$OUT/$variant"
    mkdir -p "$D"
    echo "# building variant $variant (helpers: $HFLAGS)"
    gcc $CFLAGS $HFLAGS -g -c tests/unit/unwind_deep.c -o "$D/unwind_deep.o"
    gcc $CFLAGS $HFLAGS -fno-asynchronous-unwind-tables -fno-unwind-tables -c tests/unit/unwind_nocfi.c \
        -o "$D/unwind_nocfi.o"
    gcc $CFLAGS -O2 -g -rdynamic -Isrc/agent tests/unit/test_unwind.c "$D/unwind_deep.o" "$D/unwind_nocfi.o" "$OUT/unwind.o" \
        -L"$OUT" -lunwind_cxx -Wl,-rpath,"$OUT" -o "$D/test_unwind" $LIBS
    echo "# running $D/test_unwind"
    if "$D/test_unwind" "$OUT" > "$D/out.txt" 2>&1; then
        rc=0
    else
        rc=$?
    fi
    cat "$D/out.txt"
    p=$(grep -c '^ok ' "$D/out.txt" || true)
    f=$(grep -c '^not ok ' "$D/out.txt" || true)
    passed=$((passed + p))
    failed=$((failed + f))
    if [ $rc -eq 0 ] && [ "$f" -eq 0 ] && [ "$p" -gt 0 ]; then
        echo "# variant $variant: PASS"
    else
        echo "# variant $variant: FAIL (exit $rc)"
        status=1
        [ "$f" -eq 0 ] && failed=$((failed + 1))
    fi
done

if [ "${BENCH:-0}" = 1 ]; then
    echo "# building bench/unwind_bench.c"
    gcc $CFLAGS -O2 -fomit-frame-pointer -DCHAIN_ONLY -c bench/unwind_bench.c -o "$OUT/bench_chain_nofp.o"
    gcc $CFLAGS -O2 -fno-omit-frame-pointer -DCHAIN_ONLY -DCHAIN_FP -c bench/unwind_bench.c -o "$OUT/bench_chain_fp.o"
    gcc $CFLAGS -O2 -Isrc/agent bench/unwind_bench.c "$OUT/bench_chain_nofp.o" "$OUT/bench_chain_fp.o" \
        "$OUT/unwind.o" -o "$OUT/unwind_bench" $LIBS
    "$OUT/unwind_bench" || status=1
fi

echo "$passed passed, $failed failed"
exit $status
