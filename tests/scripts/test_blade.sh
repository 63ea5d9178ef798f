#!/usr/bin/env bash
# The Blade binding, differential: each script of tests/scripts/blade (TCP, UDP, IPv6,
# errors and bad arguments, threads) runs twice, with
# stock Blade on the host's network and with the sockrpc Blade (sockrpc_socket.so in its
# dist/) in a network namespace of its own, through the daemon; the outputs must be the
# same. Deliberate differences (docs: ../shared/api/blade-socket.md) are kept out of the
# outputs, each where the script meets it:
# - ids: a descriptor number either way, but the sockrpc Blade's daemon connection holds
#   descriptors too, so the numbers differ: no script prints one;
# - a call the daemon refuses for the socket's state (connect on a listening socket)
#   raises SocketException with the daemon's text, not the kernel's errno: errors.b
#   prints only the exception's type there;
# - a connect that times out says "Connection timed out" (stock Blade: "Operation already
#   in progress", from its retry of the same socket): unreachable.b prints the type only.
# Then: a denied connect raises SocketException with the daemon's message and the rule.
set -euo pipefail
build=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
# All of it in a network namespace of its own with loopback alone (stock Blade and the
# daemon too; the sandboxed Blade in one more, nested): unreachable.b needs a network
# where nothing routes, and no test packet can leave the machine.
if [ "${SOCKRPC_BLADE_PRIVATE_NET:-}" != 1 ] && unshare -n true 2>/dev/null; then
	exec unshare -n -- env SOCKRPC_BLADE_PRIVATE_NET=1 bash "$0" "$@"
fi
[ "${SOCKRPC_BLADE_PRIVATE_NET:-}" = 1 ] && ip link set lo up
. "$here/blade/lib.sh"

start_daemon broker
cp "$here"/blade/*.b "$tmp/"
cd "$tmp"
failed=0

# The replacement is loaded (Blade ignores a module that fails to load).
echo 'import _socket
echo _socket.SOCKRPC' >marker.b
[ "$(sandboxed "$tmp/broker.sock" marker.b)" = true ] || {
	echo "sockrpc_socket.so did not load in the sandboxed Blade"
	exit 1
}
if "$stock_blade" marker.b >/dev/null 2>&1; then
	echo "stock Blade has _socket.SOCKRPC: the two runs would not differ"
	exit 1
fi

scripts="tcp udp ipv6 errors threads"
if [ "${SOCKRPC_BLADE_PRIVATE_NET:-}" = 1 ] && ! ip route get 192.0.2.1 >/dev/null 2>&1 &&
	! ip -6 route get 2001:db8::1 >/dev/null 2>&1; then
	scripts="$scripts unreachable"
else
	echo "unreachable.b: not run, this network has routes"
	failed=1
fi
for script in $scripts; do
	timeout 60 "$stock_blade" "$script.b" >"$script.stock" 2>&1 || true
	sandboxed "$tmp/broker.sock" "$script.b" >"$script.sockrpc" 2>&1 || true
	if ! grep -q . "$script.stock"; then
		echo "$script.b: stock Blade printed nothing"
		failed=1
	elif diff -u "$script.stock" "$script.sockrpc"; then
		echo "$script.b: same output ($(wc -l <"$script.stock") lines)"
	else
		echo "$script.b: the outputs differ (above: - stock, + sockrpc)"
		failed=1
	fi
done
# The sandboxed runs went through the daemon.
audit_has broker.audit '"op":"connect".*"decision":"allow"' || {
	echo "the daemon audit_has no brokered connect"
	failed=1
}

# A denied connect: SocketException with the daemon's message, which names the rule.
cat >deny.policy <<'POLICY'
deny * connect tcp 127.0.0.1 port 9 reason "no discard service for sandboxes"
allow * *
POLICY
start_daemon strict --policy "$tmp/deny.policy"
cat >deny.b <<'BLADE'
import socket { * }
catch { Socket().connect('127.0.0.1', 9) } as e
echo '${e.type}: ${e.message}'
BLADE
got=$(sandboxed "$tmp/strict.sock" deny.b 2>&1)
want="SocketException: connect to 127.0.0.1:9 denied by policy ($tmp/deny.policy:1): no discard service for sandboxes"
if [ "$got" != "$want" ]; then
	printf 'denied connect:\n  got:  %s\n  want: %s\n' "$got" "$want"
	failed=1
else
	echo "denied connect: $got"
fi

# TLS needs the socket itself (Blade's ssl hands Socket.id to OpenSSL). Without handback
# granted (this policy has none) it fails cleanly: a SocketException that says why and
# quotes the daemon, no crash, and the daemon serves on.
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(60)' "$tmp/tls_port" &
pids+=($!)
for _ in $(seq 100); do
	[ -s "$tmp/tls_port" ] && break
	sleep 0.05
done
got=$(sandboxed "$tmp/strict.sock" "$here/blade/tls_client.b" "$(cat "$tmp/tls_port")" 2>&1)
case "$got" in
"SocketException: TLS needs the socket itself"*handback*) echo "TLS without handback: $got" ;;
*)
	echo "TLS without handback: $got"
	failed=1
	;;
esac
[ "$(sandboxed "$tmp/strict.sock" marker.b)" = true ] || {
	echo "the daemon stopped serving after the refused TLS connect"
	failed=1
}
exit $failed
