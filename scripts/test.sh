#!/usr/bin/env bash
# test.sh - install what is needed, build, run the whole test suite
# (unit, ASan+UBSan build of the tools, conformance with and without frame
# pointers, end to end, real programs, faults).  Not in this run: ctest -L fuzz
# (libFuzzer targets, 2 minutes each; needs clang) ctest -L soak and ctest -L bench.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/deps.sh"
"$ROOT/scripts/build.sh"
cd "$ROOT/build"
exec ctest --output-on-failure -j 2 -LE 'soak|fuzz|bench'
