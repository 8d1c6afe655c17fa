#!/usr/bin/env bash
# build.sh [BUILD_DIR] - configure and build memsleuth (warnings are errors)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMS_WERROR=ON >/dev/null
cmake --build "$B" -j "$(nproc)" >/dev/null
