#!/usr/bin/env bash
# run_membound.sh BUILD_DIR - the analyzer's memory follows the live blocks and the stacks,
# not the number of events: peak RSS (/usr/bin/time) and speed of `report` on generated
# traces (tests/analyze/mktrace.c `big`: 100 sites, LIVE blocks live at any time, one
# event every NS ns).  Needs BUILD_DIR/ms-analyze and BUILD_DIR/mktrace (run_tests.sh
# builds them).  Prints a table; exits 1 if RSS at 20 M events exceeds RSS at 2 M events
# by more than 10% + 2 MiB.
set -eu
B=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
D=$(mktemp -d /tmp/ms-membound.XXXXXX)
trap 'rm -rf "$D"' EXIT
measure() { # EVENTS LIVE NS
    "$B/mktrace" big "$1" "$D/t.trace" "$2" "$3" >/dev/null
    local size
    size=$(stat -c %s "$D/t.trace")
    /usr/bin/time -f "%M %e" -o "$D/time" "$B/ms-analyze" report -o /dev/null "$D/t.trace"
    read -r rss secs <"$D/time"
    local rate
    rate=$(python3 -c "print('%.1f' % ($1 / max($secs, 0.01) / 1e6))")
    printf "%10s %9s %6s %10s %10s %8s %10s\n" "$1" "$2" "$3" "$((size / 1024))" "$rss" "$secs" "$rate"
    echo "$rss" >"$D/last"
}
printf "%10s %9s %6s %10s %10s %8s %10s\n" events live ns/ev "trace KiB" "RSS KiB" seconds "M ev/s"
measure 2000000 1000 1000
r2=$(cat "$D/last")
measure 20000000 1000 1000
r20=$(cat "$D/last")
measure 20000000 1000 100
measure 4000000 10000 1000
measure 4000000 100000 1000
measure 4000000 1000000 1000
if [ "$r20" -le $((r2 * 11 / 10 + 2048)) ]; then
    echo "ok - 10x the events, same live set: peak RSS $r2 -> $r20 KiB"
else
    echo "not ok - 10x the events, same live set: peak RSS $r2 -> $r20 KiB"
    exit 1
fi
