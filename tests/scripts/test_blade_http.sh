#!/usr/bin/env bash
# Blade's own libs/http, unmodified, between two sockrpc Blade processes, each in a network
# namespace of its own (no network at all): http.server in one, http.get in the other,
# every socket brokered by the daemon in the host's namespace.
set -euo pipefail
build=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
. "$here/blade/lib.sh"

start_daemon broker
# A port free on the host's loopback, where the daemon binds for the server.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sandboxed "$tmp/broker.sock" "$here/blade/http_server.b" "$port" >"$tmp/server.out" 2>&1 &
server=$!
pids+=($server)

# The server is up once the daemon has let it listen.
for _ in $(seq 100); do
	grep -q '"op":"listen".*"decision":"allow"' "$tmp/broker.audit" && break
	sleep 0.05
done
got=$(sandboxed "$tmp/broker.sock" "$here/blade/http_client.b" "$port" '/hello?name=blade' 2>&1)
want="status=200 body=hello blade, sockrpc=true sockrpc=true"
if [ "$got" != "$want" ]; then
	printf 'GET /hello:\n  got:  %s\n  want: %s\nserver:\n' "$got" "$want"
	cat "$tmp/server.out"
	exit 1
fi
echo "GET /hello: $got"
got=$(sandboxed "$tmp/broker.sock" "$here/blade/http_client.b" "$port" /stop 2>&1)
[ "$got" = "status=200 body=bye sockrpc=true" ] || {
	echo "GET /stop: $got"
	exit 1
}
wait "$server" || {
	echo "the server did not end cleanly:"
	cat "$tmp/server.out"
	exit 1
}
# Both sides went through the daemon: the server's accept and the client's connects.
for op in bind listen accept connect; do
	audit_has "$tmp/broker.audit" "\"op\":\"$op\".*\"decision\":\"allow\"" || {
		echo "the daemon audit_has no $op"
		exit 1
	}
done
echo "http through the broker: ok"
