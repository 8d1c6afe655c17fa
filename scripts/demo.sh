#!/usr/bin/env bash
# demo.sh - install what is needed, build, and run the bundled push server
# demo under memsleuth: its report shows the two planted leaks.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/deps.sh"
"$ROOT/scripts/build.sh"
echo "== memsleuth run --show-leak-kinds=all -- push_server 0   (driven by push_client over loopback)"
exec bash "$ROOT/examples/run_demo.sh" "$ROOT/build/examples" \
    "$ROOT/build/memsleuth" run --show-leak-kinds=all --
