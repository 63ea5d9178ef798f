#!/usr/bin/env bash
# test_load.sh - the load suite (tests/integration/test_load.c): 500 concurrent clients
# opening, using and closing loopback TCP sockets through sockrpcd while one more
# measures get_option latency; then no fd or memory left behind.
# Usage: test_load.sh BUILD_DIR. LOAD_SECONDS sets the duration (default 10; 30 with
# SOCKRPC_FULL=1). Exits 0 on success, 1 on failure, 77 if the suites are not built.
set -Euo pipefail

build=${1:?usage: test_load.sh BUILD_DIR}
runner=$build/tests/integration_tests
if [[ ! -x $runner ]]; then
	echo "test_load: $runner not built" >&2
	exit 77
fi
if [[ -z ${LOAD_SECONDS:-} ]]; then
	if [[ ${SOCKRPC_FULL:-0} == 1 ]]; then LOAD_SECONDS=30; else LOAD_SECONDS=10; fi
fi
export LOAD_SECONDS
# 500 sessions with a socket each, and the echo server's ends, in this process and the
# daemon (which inherits the limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec timeout $((LOAD_SECONDS + 240)) "$runner" load
