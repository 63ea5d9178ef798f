#!/usr/bin/env bash
# Blade's ssl.TLSSocket through descriptor handback: OpenSSL needs the socket itself, so the
# binding asks the daemon to hand the connected socket back (the policy's `handback`) and
# puts it on the socket's id with dup2. The same TLS client script runs with stock Blade on
# the host's network and with the sockrpc Blade in a network namespace, against an openssl
# s_server on loopback (-rev: it answers each line reversed); the outputs must be the same.
# Then a TLSSocket server, whose accepted socket is handed back, reads a line from
# openssl s_client, with stock Blade and with the sockrpc Blade alike.
set -euo pipefail
build=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/blade/lib.sh"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
	-days 1 -subj /CN=localhost 2>/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl s_server -accept "127.0.0.1:$port" -cert "$tmp/cert.pem" -key "$tmp/key.pem" -rev \
	-quiet >"$tmp/s_server.log" 2>&1 &
pids+=($!)
cat >"$tmp/handback.policy" <<'POLICY'
allow * connect,accept tcp @loopback handback
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
audit_has "$tmp/broker.audit" '"event":"handback".*"decision":"allow"' || {
	echo "the daemon audit_has no handback"
	exit 1
}
echo "TLS through handback: $(cat "$tmp/sockrpc.out")"

# The server side: the TLSSocket's accept takes the accepted socket back.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
tls_server_run() { # NAME COMMAND...: one server run against s_client; its output, normalized
	local name=$1 port
	shift
	port=$(free_port)
	"$@" "$here/blade/tls_server.b" "$port" "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/$name.raw" 2>&1 &
	local server=$!
	# Listening (the daemon's socket is in this namespace too): no probe, it would be the
	# server's one accept.
	for _ in $(seq 200); do
		ss -Hltn "sport = :$port" | grep -q . && break
		sleep 0.05
	done
	(echo hello-tls; sleep 1) | timeout 10 openssl s_client -connect "127.0.0.1:$port" -quiet -no_ign_eof \
		>/dev/null 2>&1 || true
	wait "$server" 2>/dev/null || true
	# OpenSSL's error text starts with the thread's id.
	sed -n 's/^Unhandled Exception: [0-9A-F]*:/Unhandled Exception: /p; /^got /p' \
		"$tmp/$name.raw" >"$tmp/$name.out"
}
tls_server_run server.stock timeout 30 "$stock_blade"
tls_server_run server.sockrpc sandboxed "$tmp/broker.sock"
if ! grep -q '^got hello-tls' "$tmp/server.stock.out"; then
	echo "stock Blade's TLS server did not read the line here:"
	cat "$tmp/server.stock.raw"
	exit 1
fi
if ! diff -u "$tmp/server.stock.out" "$tmp/server.sockrpc.out"; then
	echo "TLS server through handback: the outputs differ (- stock, + sockrpc)"
	cat "$tmp/server.sockrpc.raw"
	exit 1
fi
audit_has "$tmp/broker.audit" '"event":"handback"' 2 || {
	echo "the daemon audit_has no handback of the accepted socket"
	exit 1
}
echo "TLS server through handback: $(head -n 1 "$tmp/server.sockrpc.out")"
