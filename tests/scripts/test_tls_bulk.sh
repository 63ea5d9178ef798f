#!/usr/bin/env bash
# test_tls_bulk.sh BUILD_DIR - bulk bytes through the broker over TLS (the daemon as root,
# on loopback), checked byte for byte by tests/scripts/helpers/tls_bulk.c against an echo
# server of its own: chunks of odd sizes around the record, read-room and frame sizes,
# each echoed back before the next (what the daemon holds inside OpenSSL, decrypted or
# read ahead, must not wait for more bytes on the socket), then 48 MiB streamed both ways
# at once with odd send and receive sizes. Then the daemon still serves. Needs root.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

build=${1:?usage: test_tls_bulk.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
sockrpcd=$build/daemon/sockrpcd
bulk=$build/tests/scripts/tls_bulk

if [[ $(id -u) != 0 ]]; then
	echo "SKIP: the daemon runs as root"
	exit 77
fi
command -v openssl >/dev/null || { echo "FAIL: openssl missing (tools/install-deps)"; exit 1; }
getent passwd sockrpc >/dev/null || { echo "SKIP: no sockrpc user (tools/install-deps)"; exit 77; }

scratch_dir
tmp=$dir
fail() {
	echo "FAIL: $*"
	[[ -f $tmp/daemon.log ]] && { echo "--- daemon.log"; tail -20 "$tmp/daemon.log"; }
	exit 1
}
sanitizer_check() {
	if grep -qs "Sanitizer" "$tmp/daemon.log"; then
		grep -A30 "Sanitizer" "$tmp/daemon.log" | head -60
		fail "sanitizer report"
	fi
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bash "$here/helpers/tls_certs.sh" "$tmp/certs"
certs=$tmp/certs
tls_port=$(free_port)
cat >"$tmp/p.policy" <<POLICY
allow principal=spiffe://example.org/sandbox/* create tcp
allow principal=spiffe://example.org/sandbox/* connect tcp 127.0.0.1
POLICY
"$sockrpcd" --socket "$tmp/s.sock" --policy "$tmp/p.policy" --audit "$tmp/audit.log" \
	--listen-tls 127.0.0.1:"$tls_port" --tls-cert "$certs/server.pem" \
	--tls-key "$certs/server.key" --tls-client-ca "$certs/ca.pem" >"$tmp/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)
wait_listening "$tmp/daemon.log" "$tmp/s.sock" || fail "the daemon did not start"

export SOCKRPC_TLS_CERT=$certs/client.pem SOCKRPC_TLS_KEY=$certs/client.key
export SOCKRPC_TLS_CA=$certs/ca.pem
ep=tls://127.0.0.1:$tls_port

out=$("$bulk" "$ep" lockstep 2>&1) || fail "odd chunks, each echoed before the next: $out"
echo "ok: odd chunks in lock step: $out"
out=$("$bulk" "$ep" stream 48 2>&1) || fail "48 MiB streamed both ways: $out"
echo "ok: streamed both ways: $out"
out=$("$bulk" "$ep" lockstep 2>&1) || fail "after the stream: $out"
kill -0 "$daemon" || fail "the daemon died"
kill "$daemon"
wait "$daemon" 2>/dev/null || true
sanitizer_check
echo "PASS"
