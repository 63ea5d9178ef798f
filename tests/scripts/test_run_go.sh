#!/usr/bin/env bash
# sockrpc run with a statically linked Go program (Debian's golang-go, CGO_ENABLED=0, built
# here offline from tests/scripts/run_go with the standard library only): Go's own
# resolver asks the name server of /etc/resolv.conf, which the supervisor answers from the
# daemon's resolver, and its HTTP GET connects through the daemon.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
build=$1
src=$(cd "$(dirname "$0")" && pwd)/run_go
scratch_dir
fail() {
	echo "FAIL: $*"
	echo "--- audit"; tail -n 20 "$dir/audit.log" 2>/dev/null || true
	exit 1
}
if [ "$(id -u)" != 0 ] || ! unshare -n true 2>/dev/null; then
	echo "needs root and network namespaces"
	exit 77
fi
if ! command -v go >/dev/null; then
	echo "go is missing (tools/install-deps installs golang-go)"
	exit 77
fi
ns=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf 2>/dev/null || true)
if [ -z "$ns" ]; then
	echo "no name server in /etc/resolv.conf for Go's resolver to ask"
	exit 77
fi

# Offline: no module proxy, caches in the test's directory.
cp "$src/main.go" "$dir/"
printf 'module runprobe\n\ngo 1.19\n' >"$dir/go.mod"
(cd "$dir" && CGO_ENABLED=0 GOPROXY=off GOFLAGS=-mod=mod GOCACHE="$dir/cache" \
	GOPATH="$dir/gopath" go build -o "$dir/run_go" .) || fail "go build"
file "$dir/run_go" 2>/dev/null | grep -q "statically linked" ||
	! command -v file >/dev/null || fail "not static: $(file "$dir/run_go")"

mkdir -p "$dir/www"
echo "hello, static Go" >"$dir/www/index.html"
python3 - "$dir" <<'PY' &
import http.server, os, sys, threading
d = sys.argv[1]
os.chdir(f"{d}/www")
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
open(f"{d}/port.tmp", "w").write(str(web.server_address[1]))
os.rename(f"{d}/port.tmp", f"{d}/port")
web.serve_forever()
PY
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.05; done
http=$(cat "$dir/port")
printf '127.0.0.1 web.sockrpc.test\n127.0.0.1 denied.sockrpc.test\n' >"$dir/hosts"
echo "nameserver 127.0.0.1" >"$dir/resolv.conf"
cat >"$dir/policy" <<POLICY
allow uid=0 create tcp,udp
allow uid=0 resolve web.sockrpc.test
allow uid=0 connect tcp 127.0.0.1 port $http handback
POLICY
"$build/daemon/sockrpcd" --socket "$dir/s.sock" --policy "$dir/policy" \
	--audit "$dir/audit.log" --hosts "$dir/hosts" --resolv-conf "$dir/resolv.conf" \
	2>"$dir/daemon.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done

out=$(timeout 60 "$build/client/cli/sockrpc" --socket "$dir/s.sock" run -- "$dir/run_go" \
	web.sockrpc.test "http://web.sockrpc.test:$http/" denied.sockrpc.test) ||
	fail "the Go program: $out"
grep -q "^lookup: \[127.0.0.1\]$" <<<"$out" || fail "lookup: $out"
grep -q "^get: 200 hello, static Go$" <<<"$out" || fail "get: $out"
grep -q "^denied lookup: failed$" <<<"$out" || fail "denied lookup: $out"
audit_has "$dir/audit.log" '"op":"resolve".*"name":"web.sockrpc.test".*"decision":"allow"' ||
	fail "the lookup was not audited"
audit_has "$dir/audit.log" "\"op\":\"connect\".*\"port\":$http.*\"decision\":\"allow\"" ||
	fail "the connect was not audited"
audit_has "$dir/audit.log" '"op":"resolve".*"name":"denied.sockrpc.test".*"decision":"deny"' ||
	fail "the denied lookup was not audited"
echo "run_go: ok"
