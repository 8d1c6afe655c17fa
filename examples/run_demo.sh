#!/usr/bin/env bash
# run_demo.sh - run the memsleuth push-server demo.
#
# usage: run_demo.sh BUILD_DIR [WRAPPER...]
#   run_demo.sh build
#   run_demo.sh build valgrind --leak-check=full --show-leak-kinds=all
#
# Starts BUILD_DIR/push_server on a free loopback port under WRAPPER (if
# any), drives it with BUILD_DIR/push_client (arguments: $DEMO_USERS users,
# default 20, and $DEMO_ROUNDS rounds, default 50) which ends with SHUTDOWN,
# and exits with the server's exit status (or 1 if the client failed and the
# server nevertheless exited 0).  The leak report, if the wrapper makes one,
# is on stderr.  Nothing waits forever: the server gets 20 s to report its
# port and 30 s in all before it is killed.
set -u

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [WRAPPER...]" >&2
    exit 2
fi
build=$1
shift
server=$build/push_server
client=$build/push_client
for f in "$server" "$client"; do
    if [ ! -x "$f" ]; then
        echo "run_demo: $f is missing or not executable" >&2
        exit 2
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/push_demo.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

out=$tmp/server.out
: >"$out"
start=$SECONDS
"$@" "$server" 0 >"$out" &
spid=$!

stop_server() {     # SIGTERM (a clean shutdown), SIGKILL 2 s later
    kill -TERM "$spid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        kill -0 "$spid" 2>/dev/null || return
        sleep 0.1
    done
    kill -KILL "$spid" 2>/dev/null
}

# The server prints "listening on PORT" once it accepts connections.
port=
while [ $((SECONDS - start)) -lt 20 ]; do
    port=$(sed -n 's/^listening on \([0-9][0-9]*\)$/\1/p' "$out")
    [ -n "$port" ] && break
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "run_demo: the server did not report its port" >&2
    stop_server
    wait "$spid"
    exit 1
fi
echo "run_demo: server (pid $spid) listening on port $port"

"$client" "$port" "${DEMO_USERS:-20}" "${DEMO_ROUNDS:-50}"
crc=$?
if [ "$crc" -ne 0 ]; then
    echo "run_demo: the client failed (status $crc), stopping the server" >&2
    stop_server
fi

# After SHUTDOWN the server frees everything and exits (under valgrind that
# includes the leak check); give it until 30 s after its start.
while kill -0 "$spid" 2>/dev/null && [ $((SECONDS - start)) -lt 30 ]; do
    sleep 0.1
done
if kill -0 "$spid" 2>/dev/null; then
    echo "run_demo: the server is still running after 30 s, killing it" >&2
    stop_server
fi
wait "$spid"
src=$?
echo "run_demo: server exited with status $src"
if [ "$crc" -ne 0 ] && [ "$src" -eq 0 ]; then
    exit 1
fi
exit "$src"
