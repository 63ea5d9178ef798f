#!/usr/bin/env bash
# Blade's ssl.TLSSocket through descriptor handback: OpenSSL needs the socket itself, so the
# binding asks the daemon to hand the connected socket back (the policy's `handback`) and
# puts it on the socket's id with dup2. The same TLS client script runs with stock Blade on
# the host's network and with the sockrpc Blade in a network namespace, against an openssl
# s_server on loopback (-rev: it answers each line reversed); the outputs must be the same.
set -euo pipefail
build=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/blade/lib.sh"
if ! grep -q sr_connect_fd "$here/../../include/sockrpc.h"; then
	echo "this libsockrpc has no descriptor handback (test_blade.sh checks TLS fails cleanly)"
	exit 77
fi

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
	-days 1 -subj /CN=localhost 2>/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl s_server -accept "127.0.0.1:$port" -cert "$tmp/cert.pem" -key "$tmp/key.pem" -rev \
	-quiet >"$tmp/s_server.log" 2>&1 &
pids+=($!)
cat >"$tmp/handback.policy" <<'POLICY'
allow * connect tcp @loopback handback
allow * *
POLICY
start_daemon broker --policy "$tmp/handback.policy"
for _ in $(seq 100); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" \
		2>/dev/null && break
	sleep 0.05
done

timeout 30 "$stock_blade" "$here/blade/tls_client.b" "$port" >"$tmp/stock.out" 2>&1 || true
sandboxed "$tmp/broker.sock" "$here/blade/tls_client.b" "$port" >"$tmp/sockrpc.out" 2>&1 || true
if [ "$(cat "$tmp/stock.out")" != "tls reply: gnip" ]; then
	echo "stock Blade's TLS client did not work here:"
	cat "$tmp/stock.out" "$tmp/s_server.log"
	exit 1
fi
if ! diff -u "$tmp/stock.out" "$tmp/sockrpc.out"; then
	echo "TLS through handback: the outputs differ (- stock, + sockrpc)"
	exit 1
fi
grep -q '"event":"handback".*"decision":"allow"' "$tmp/broker.audit" || {
	echo "the daemon audited no handback"
	exit 1
}
echo "TLS through handback: $(cat "$tmp/sockrpc.out")"
