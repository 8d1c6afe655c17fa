#!/usr/bin/env bash
# bench/mkbigtrace.sh NEVENTS OUT [LIVE [NS]] - a synthetic trace of NEVENTS events for
# `memsleuth report` at scale (the 1e9-event check of bench/README.md): tests/analyze/mktrace.c
# built at -O2 into bench/.build/mktrace, run in its `big` mode: 100 sites, a live set of LIVE
# blocks (default 1,000,000), one event every NS ns of trace time (default 1000), zstd chunks
# every 100 ms of trace time.  It streams: its memory is that of one chunk (~4 MB RSS for
# any NEVENTS), the trace ~0.77 bytes per event.  The stacks point into bench/.build/mktrace:
# keep that file for the report to name the site (big_site, mktrace.c:LINE).
set -eu
[ $# -ge 2 ] && [ $# -le 4 ] || { echo "usage: $0 NEVENTS OUT [LIVE [NS]]" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B="$ROOT/bench/.build"
mkdir -p "$B"
if [ ! -x "$B/mktrace" ] || [ "$ROOT/tests/analyze/mktrace.c" -nt "$B/mktrace" ]; then
    gcc -std=c17 -D_GNU_SOURCE -O2 -g -o "$B/mktrace" "$ROOT/tests/analyze/mktrace.c" -lzstd
fi
exec "$B/mktrace" big "$1" "$2" "${3:-1000000}" "${4:-1000}"
