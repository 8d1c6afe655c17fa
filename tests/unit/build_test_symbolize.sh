#!/bin/sh
# Build and run the unit test of src/common/symbolize.c.
# Usage: tests/unit/build_test_symbolize.sh [OUTDIR]   (default /tmp/ms-sym-test)
# Builds three variants of the test (PIE, non-PIE ET_EXEC, DWARF 4) and runs
# each; exits non-zero if a build or a run fails.
set -eu
OUT=${1:-/tmp/ms-sym-test}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CFLAGS="-std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror"
CXXFLAGS="-std=c++17 -Wall -Wextra -Werror"
LIBS="-ldw -lelf -ldl"
mkdir -p "$OUT"
cd "$ROOT"

status=0
for variant in pie nopie dwarf4 asan; do
    D="$OUT/$variant"
    mkdir -p "$D"
    case $variant in
        pie)    G="-g";         LINK="" ;;
        nopie)  G="-g";         LINK="-no-pie" ;;
        dwarf4) G="-gdwarf-4";  LINK="" ;;
        asan)   G="-g";         LINK="" ;;
    esac
    echo "# building variant $variant in $D"
    SAN=""
    [ "$variant" = asan ] && SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    gcc $CFLAGS $SAN -fPIC -O2 -c src/common/symbolize.c -o "$D/symbolize.o"
    gcc $CFLAGS -O2 $G -c tests/unit/symbolize_inline.c -o "$D/symbolize_inline.o"
    g++ $CXXFLAGS -shared -fPIC -O0 $G tests/unit/symbolize_cxx.cc -o "$D/libsymcxx.so"
    strip --strip-all -o "$D/libsymcxx_stripped.so" "$D/libsymcxx.so"
    # Separate debug file found through .gnu_debuglink in .debug/
    mkdir -p "$D/.debug"
    objcopy --only-keep-debug "$D/libsymcxx.so" "$D/.debug/libsymcxx_dl.so.debug"
    objcopy --strip-debug --add-gnu-debuglink="$D/.debug/libsymcxx_dl.so.debug" \
        "$D/libsymcxx.so" "$D/libsymcxx_dl.so"
    # Same, but the debug file behind the link belongs to another build
    objcopy --only-keep-debug "$D/libsymcxx.so" "$D/.debug/libsymcxx_bad.so.debug"
    objcopy --strip-debug --add-gnu-debuglink="$D/.debug/libsymcxx_bad.so.debug" \
        "$D/libsymcxx.so" "$D/libsymcxx_bad.so"
    objcopy --only-keep-debug "$D/symbolize.o" "$D/.debug/libsymcxx_bad.so.debug"
    gcc $CFLAGS $SAN -O0 $G $LINK -Isrc/common tests/unit/test_symbolize.c \
        "$D/symbolize_inline.o" "$D/symbolize.o" -o "$D/test_symbolize" $LIBS
    echo "# running $D/test_symbolize"
    if "$D/test_symbolize" "$D"; then
        echo "# variant $variant: PASS"
    else
        echo "# variant $variant: FAIL"
        status=1
    fi
done
exit $status
