#!/usr/bin/env bash
# run_tests.sh BUILD_DIR [PYTHON] - the Python binding's unittest suites, run inside a
# network namespace (unshare -n: no interface, not even loopback) with only the daemon's
# socket shared, against servers (tests/servers.py) started outside it with a test CA.
set -euo pipefail
. "$(dirname "$0")/../../../tests/scripts/lib/common.sh"
build=$(cd "${1:?usage: run_tests.sh BUILD_DIR [PYTHON]}" && pwd)
python=${2:-python3}
here=$(cd "$(dirname "$0")" && pwd)
pkgdir=$build/bindings/python
[[ -f $pkgdir/sockrpc/__init__.py ]] || { echo "no sockrpc package in $pkgdir"; exit 1; }
if ! unshare -n true 2>/dev/null; then
	echo "cannot create a network namespace here"
	exit 77
fi
scratch_dir

# A test CA and a server certificate for localhost and 127.0.0.1, signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sockrpc test CA" \
	-keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
	-keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
	-CAcreateserial -days 2 -extfile "$dir/ext" -out "$dir/server.pem" 2>/dev/null

"$python" "$here/servers.py" "$dir/ports.json" "$dir" &
pids+=($!)
for _ in $(seq 200); do
	[[ -s $dir/ports.json ]] && break
	sleep 0.05
done
port() { "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
	"$dir/ports.json" "$1"; }
# Everything is allowed but the discard port and IP_TTL, whose denials the tests expect by
# rule (lines 1 and 2);
# connections to the echo and HTTPS servers are handed back (test_handback.py).
cat >"$dir/policy" <<POLICY
deny * connect tcp 127.0.0.1 port 9 reason "the discard port is off limits"
deny * option IP_TTL reason "the TTL is fixed here"
allow * connect tcp 127.0.0.1 port $(port echo),$(port https) handback
allow * *
POLICY
# Names come from the test's hosts file; any other lookup goes to 127.0.0.1, never out.
printf '127.0.0.1 localhost\n::1 localhost\n' >"$dir/hosts"
printf 'nameserver 127.0.0.1\n' >"$dir/resolv.conf"
"$build/daemon/sockrpcd" --socket "$dir/sockrpc.sock" --policy "$dir/policy" \
	--hosts "$dir/hosts" --resolv-conf "$dir/resolv.conf" 2>"$dir/daemon.log" &
pids+=($!)
for _ in $(seq 200); do
	[[ -S $dir/sockrpc.sock ]] && break
	sleep 0.05
done
[[ -S $dir/sockrpc.sock && -s $dir/ports.json ]] || {
	echo "daemon or servers did not start"
	cat "$dir/daemon.log"
	exit 1
}

# A sanitized build's extension needs its runtimes loaded first into an interpreter that
# has none; Python's own allocations at exit are not this project's leaks.
preload=()
if grep -q '^SOCKRPC_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
	preload=(LD_PRELOAD="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
		ASAN_OPTIONS=detect_leaks=0)
fi

rc=0
unshare -n -- env "${preload[@]}" SOCKRPC_SOCKET="$dir/sockrpc.sock" SOCKRPC_TEST_DIR="$dir" \
	PYTHONPATH="$pkgdir" PYTHONDONTWRITEBYTECODE=1 \
	"$python" -m unittest discover -s "$here" -p 'test_*.py' -v || rc=$?
if [[ $rc -ne 0 ]]; then
	echo "--- daemon log (tail)"
	grep -v "\"decision\":\"allow\"" "$dir/daemon.log" | tail -n 30
fi
exit $rc
