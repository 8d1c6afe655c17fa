#!/usr/bin/env bash
# run_tests.sh BUILD_DIR [plain|asan|valgrind|all] - build libmemsleuth_pool
# (src/pool) and its unit tests (tests/pool/test_pool.c) with gcc into
# BUILD_DIR and run them.
#   plain     -O2, -Wall -Wextra -Wshadow -Werror, -fvisibility=hidden
#   asan      -O1 -fsanitize=address,undefined (any sanitizer report fails)
#   valgrind  the plain build under valgrind --leak-check=full (slow, ~1 min)
#   all       plain and asan (the default)
# Prints each variant's TAP lines, then "N passed, M failed" over all the
# variants run; exits non-zero if anything failed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=${1:?usage: run_tests.sh BUILD_DIR [plain|asan|valgrind|all]}
WHAT=${2:-all}
mkdir -p "$B"
B=$(cd "$B" && pwd)
CC=${CC:-gcc}
BASE=(-std=c17 -g -Wall -Wextra -Wshadow -Werror -I"$ROOT/include")
SRCS=("$ROOT"/src/pool/pool.c "$ROOT"/src/pool/pool_tree.c "$ROOT"/src/pool/pool_introspect.c)
SAN=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)

pass=0
fail=0

build() { # build VARIANT FLAGS... -> $B/VARIANT/test_pool
    local v=$1
    shift
    local d="$B/$v"
    mkdir -p "$d/obj"
    local objs=()
    for s in "${SRCS[@]}"; do
        local o="$d/obj/$(basename "$s" .c).o"
        "$CC" "${BASE[@]}" "$@" -fPIC -fvisibility=hidden -c "$s" -o "$o" || return 1
        objs+=("$o")
    done
    rm -f "$d/libmemsleuth_pool.a"
    ar rcs "$d/libmemsleuth_pool.a" "${objs[@]}" || return 1
    "$CC" "${BASE[@]}" "$@" "$ROOT/tests/pool/test_pool.c" "$d/libmemsleuth_pool.a" -pthread \
        -o "$d/test_pool" || return 1
}

run_variant() { # run_variant NAME COMMAND...
    local v=$1
    shift
    echo "# ---- variant: $v"
    local out="$B/$v.out" err="$B/$v.err"
    "$@" >"$out" 2>"$err"
    local rc=$?
    sed -E "s/^([0-9]+ passed, [0-9]+ failed)\$/# $v: \1/" "$out"
    local line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
    if [ -z "$line" ]; then
        echo "not ok - $v: the test binary did not finish (exit $rc)"
        tail -20 "$err" | sed 's/^/# /'
        fail=$((fail + 1))
        return
    fi
    p=${line%% passed*}
    f=${line#*, }
    f=${f%% failed*}
    pass=$((pass + p))
    fail=$((fail + f))
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Undefined)' "$err"; then
        echo "not ok - $v: sanitizer report"
        grep -E 'ERROR|runtime error|SUMMARY' "$err" | head -20 | sed 's/^/# /'
        fail=$((fail + 1))
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "not ok - $v: exit status $rc"
        tail -20 "$err" | sed 's/^/# /'
        fail=$((fail + 1))
    fi
}

do_plain() {
    if build plain -O2; then
        run_variant plain "$B/plain/test_pool"
    else
        echo "not ok - plain: build failed"
        fail=$((fail + 1))
    fi
}

do_asan() {
    if build asan -O1 "${SAN[@]}"; then
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_variant asan "$B/asan/test_pool"
    else
        echo "not ok - asan: build failed"
        fail=$((fail + 1))
    fi
}

do_valgrind() {
    if ! command -v valgrind >/dev/null; then
        echo "# valgrind not installed: skipped"
        return
    fi
    build vg -O1 || { echo "not ok - valgrind: build failed"; fail=$((fail + 1)); return; }
    # the forked children that abort on purpose keep their pools: only the
    # main process (the first pid) must be clean
    run_variant valgrind valgrind --leak-check=full --show-leak-kinds=all --error-exitcode=9 \
        --log-file="$B/vg.%p.log" "$B/vg/test_pool"
    local main
    main=$(ls -1 "$B"/vg.*.log | sort -t. -k2 -n | head -1)
    if grep -q "All heap blocks were freed -- no leaks are possible" "$main" &&
        grep -q "ERROR SUMMARY: 0 errors" "$main"; then
        echo "# valgrind: no leaks, 0 errors ($main)"
    else
        echo "not ok - valgrind: leaks or errors, see $main"
        fail=$((fail + 1))
    fi
    rm -f "$B"/vg.*.log.keep
}

case $WHAT in
plain) do_plain ;;
asan) do_asan ;;
valgrind) do_valgrind ;;
all)
    do_plain
    do_asan
    ;;
*)
    echo "unknown variant $WHAT" >&2
    exit 2
    ;;
esac
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
