#!/usr/bin/env bash
# test_tls_abuse.sh BUILD_DIR - a hostile peer on the TLS port (run as uid 65534, against
# the root daemon, on loopback): plaintext frames; a slowloris of 80 connections from one
# address dripping a ClientHello (closed at the 5 s handshake deadline; past its share of
# handshake slots it is turned away); 500 TLS opens at once that say Hello and drop
# without close_notify; Hello and 300 calls in one TLS record, larger than the daemon's
# first read (the bytes left inside OpenSSL must not stall the session). Throughout, a
# well-behaved client is served in time; 20 KeyUpdates, each asking the daemon to update
# too (TLS 1.3's renegotiation), leave a session working; afterwards the worker's descriptors are back
# to idle. Needs root.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

build=${1:?usage: test_tls_abuse.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
sockrpcd=$build/daemon/sockrpcd
cli=$build/client/cli/sockrpc
attack=$here/helpers/tls_attack.py

if [[ $(id -u) != 0 ]]; then
	echo "SKIP: the daemon under attack runs as root"
	exit 77
fi
for tool in socat openssl python3 setpriv; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (tools/install-deps)"; exit 1; }
done
getent passwd sockrpc >/dev/null || { echo "SKIP: no sockrpc user (tools/install-deps)"; exit 77; }

tmp=$(mktemp -d /tmp/sockrpc-tlsabuse.XXXXXX)
chmod 0755 "$tmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	# A sanitizer build reports at the daemon's exit, into its log.
	if grep -qs "Sanitizer" "$tmp/daemon.log"; then
		echo "FAIL: sanitizer report"
		grep -A30 "Sanitizer" "$tmp/daemon.log" | head -60
		rm -rf "$tmp"
		exit 1
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	[[ -f $tmp/daemon.log ]] && { echo "--- daemon.log"; tail -20 "$tmp/daemon.log"; }
	exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The system python: a per-user one (pyenv) may be out of uid 65534's reach.
py=$(command -v /usr/bin/python3 || command -v python3)
as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }

bash "$here/helpers/tls_certs.sh" "$tmp/certs"
certs=$tmp/certs
chmod 0644 "$certs"/client.key # the attacker (uid 65534) holds a valid client certificate

echo_port=$(free_port)
tls_port=$(free_port)
socat TCP-LISTEN:"$echo_port",bind=127.0.0.1,fork,reuseaddr EXEC:cat >/dev/null 2>&1 &
pids+=($!)
cat >"$tmp/p.policy" <<POLICY
allow principal=spiffe://example.org/sandbox/* create tcp
allow principal=spiffe://example.org/sandbox/* connect tcp 127.0.0.1 port $echo_port
POLICY
# SOCKRPCD_WORKERS: --workers (test_tls_abuse_workers.sh runs this with 2).
"$sockrpcd" ${SOCKRPCD_WORKERS:+--workers "$SOCKRPCD_WORKERS"} --socket "$tmp/s.sock" \
	--policy "$tmp/p.policy" --audit "$tmp/audit.log" --listen-tls 127.0.0.1:"$tls_port" --tls-cert "$certs/server.pem" \
	--tls-key "$certs/server.key" --tls-client-ca "$certs/ca.pem" >"$tmp/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)
wait_listening "$tmp/daemon.log" "$tmp/s.sock" || fail "the daemon did not start"
for _ in $(seq 100); do
	workers=($(pgrep -P "$daemon" -u sockrpc)) || true
	((${#workers[@]} >= ${SOCKRPCD_WORKERS:-1})) && break
	sleep 0.05
done
((${#workers[@]} == ${SOCKRPCD_WORKERS:-1})) || fail "${#workers[@]} workers"

export SOCKRPC_TLS_CERT=$certs/client.pem SOCKRPC_TLS_KEY=$certs/client.key
export SOCKRPC_TLS_CA=$certs/ca.pem
# The well-behaved client: an echo through the broker in time (3 s; during the flood it
# queues behind up to 500 handshakes, which a sanitizer build makes slow: 30 s).
good() {
	local out
	out=$(echo "still served ($1)" | timeout "${2:-3}" "$cli" --socket tls://127.0.0.1:"$tls_port" \
		connect 127.0.0.1 "$echo_port" 2>&1) || fail "the good client was not served during $1: $out"
	[[ $out == "still served ($1)" ]] || fail "the good client got '$out' during $1"
}
fds() { for w in "${workers[@]}"; do ls "/proc/$w/fd"; done | wc -l; }

good "warm-up"
sleep 0.3
idle=$(fds)

as_nobody "$py" "$attack" plaintext 127.0.0.1 "$tls_port" || fail "plaintext"
good "plaintext"

as_nobody "$py" "$attack" slowloris 127.0.0.1 "$tls_port" 80 7 >"$tmp/slow" 2>&1 &
slow=$!
sleep 1.5
good "a slowloris"
wait "$slow" || fail "slowloris: $(cat "$tmp/slow")"
cat "$tmp/slow"
audit_has "$tmp/audit.log" '"reason":"no TLS handshake in time"' || fail "slow handshakes not audited"

as_nobody "$py" "$attack" flood 127.0.0.1 "$tls_port" 500 "$certs/client.pem" \
	"$certs/client.key" "$certs/ca.pem" >"$tmp/flood" 2>&1 &
flood=$!
sleep 0.5
good "a flood of 500 TLS opens" 30
wait "$flood" || fail "flood: $(cat "$tmp/flood")"
cat "$tmp/flood"

as_nobody "$py" "$attack" pending 127.0.0.1 "$tls_port" "$certs/client.pem" \
	"$certs/client.key" "$certs/ca.pem" || fail "bytes left inside OpenSSL stalled the session"

"$build/tests/scripts/tls_keyupdate" 127.0.0.1 "$tls_port" "$certs/client.pem" \
	"$certs/client.key" "$certs/ca.pem" 20 || fail "key updates broke the session"

kill -0 "$daemon" || fail "the daemon died"
good "the end"
for _ in $(seq 60); do
	(($(fds) <= idle)) && break
	sleep 0.1
done
(($(fds) <= idle)) || { ls -l /proc/"${workers[@]}"/fd; fail "the workers hold $(fds) fds, $idle when idle"; }
echo "ok: ${#workers[@]} worker(s) back to $idle fds"

# A library client whose daemon vanishes fails its calls; SIGPIPE never kills it.
coproc SIGPIPE_CLIENT { "$build/tests/scripts/tls_sigpipe" tls://127.0.0.1:"$tls_port" 2>&1; }
sigpipe_pid=$SIGPIPE_CLIENT_PID # bash forgets it once the coprocess ends
exec {to_client}>&"${SIGPIPE_CLIENT[1]}" {from_client}<&"${SIGPIPE_CLIENT[0]}"
read -r -t 10 line <&"$from_client" || fail "tls_sigpipe did not open"
[[ $line == open ]] || fail "tls_sigpipe: $line"
kill -KILL "$daemon"
pkill -KILL -P "$daemon" 2>/dev/null || true
wait "$daemon" 2>/dev/null || true
sleep 0.3
echo go >&"$to_client"
read -r -t 10 line <&"$from_client" || true
wait "$sigpipe_pid" && rc=0 || rc=$?
((rc == 0)) || fail "a client whose daemon vanished: exit $rc${line:+ ($line)} (141: SIGPIPE)"
echo "ok: $line"
echo "PASS"
