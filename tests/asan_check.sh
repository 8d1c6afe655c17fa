#!/usr/bin/env bash
# asan_check.sh SRC_DIR BUILD_DIR - build the command and the unit tests with
# ASan+UBSan (the agent is never built so: it is the allocator's interposer)
# and run them: the unit tests, and memsleuth's own paths (usage errors, a
# traced run).  Any sanitizer report fails the test.
set -euo pipefail
SRC=$1
B=$2
cmake -S "$SRC" -B "$B" -DMS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$B" -j 2 --target memsleuth test_options memsleuth_agent >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fail=0
"$B/tests/test_options" >/dev/null || { echo "test_options failed under ASan+UBSan"; fail=1; }
for args in "run --bogus -- true" "run" "run --leak-check=x -- true" "run -- /nonexistent" "frob" "run --help" "help"; do
    # shellcheck disable=SC2086
    "$B/memsleuth" $args >/dev/null 2>"$B/asan.err" || true
    if grep -q "Sanitizer" "$B/asan.err"; then echo "sanitizer report for: memsleuth $args"; cat "$B/asan.err"; fail=1; fi
done
"$B/memsleuth" run --log-file=/dev/null -- /bin/true 2>"$B/asan.err" || { echo "traced run failed"; cat "$B/asan.err"; fail=1; }
if grep -q "Sanitizer" "$B/asan.err"; then cat "$B/asan.err"; fail=1; fi
[ $fail -eq 0 ] && echo "asan: memsleuth and unit tests clean under ASan+UBSan"
exit $fail
