#!/usr/bin/env bash
# test_tls_reload.sh BUILD_DIR - SIGHUP re-reads the TLS certificate, key and client CA
# with the policy and swaps them together: new handshakes get the new certificate while a
# session opened before keeps working; a bad set (a key that is not the certificate's,
# with a policy change beside it) is refused as a whole, says why, and the previous
# certificate and policy stay in force; a new CA bundle applies to the next handshake
# (and to the privileged parent's own check). Needs root.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

build=${1:?usage: test_tls_reload.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
sockrpcd=$build/daemon/sockrpcd
cli=$build/client/cli/sockrpc

if [[ $(id -u) != 0 ]]; then
	echo "SKIP: the daemon runs as root here"
	exit 77
fi
getent passwd sockrpc >/dev/null || { echo "SKIP: no sockrpc user (tools/install-deps)"; exit 77; }

tmp=$(mktemp -d /tmp/sockrpc-tlsreload.XXXXXX)
chmod 0755 "$tmp"
pids=()
cleanup() {
	exec 3>&- 2>/dev/null || true
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

bash "$here/helpers/tls_certs.sh" "$tmp/certs"
certs=$tmp/certs
cp "$certs/server.pem" "$tmp/cert.pem"
cp "$certs/server.key" "$tmp/key.pem"
cp "$certs/ca.pem" "$tmp/ca.pem"
echo_port=$(free_port)
tls_port=$(free_port)
socat TCP-LISTEN:"$echo_port",bind=127.0.0.1,fork,reuseaddr EXEC:cat >/dev/null 2>&1 &
pids+=($!)
allow="allow principal=spiffe://example.org/sandbox/* create tcp
allow principal=spiffe://example.org/sandbox/* connect tcp 127.0.0.1 port $echo_port"
echo "$allow" >"$tmp/p.policy"
# SOCKRPCD_WORKERS: --workers (test_tls_workers.sh runs this with 2).
"$sockrpcd" ${SOCKRPCD_WORKERS:+--workers "$SOCKRPCD_WORKERS"} --socket "$tmp/s.sock" \
	--policy "$tmp/p.policy" --listen-tls 127.0.0.1:"$tls_port" \
	--tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --tls-client-ca "$tmp/ca.pem" >"$tmp/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)
wait_listening "$tmp/daemon.log" "$tmp/s.sock" || fail "the daemon did not start"

export SOCKRPC_TLS_CERT=$certs/client.pem SOCKRPC_TLS_KEY=$certs/client.key
export SOCKRPC_TLS_CA=$certs/ca.pem
served_cert() { # the fingerprint of the certificate the daemon presents now
	echo | timeout 5 openssl s_client -connect 127.0.0.1:"$tls_port" -cert "$certs/client.pem" \
		-key "$certs/client.key" 2>/dev/null | openssl x509 -noout -fingerprint -sha256
}
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
echo_once() {
	echo "$1" | timeout 5 "$cli" --socket tls://127.0.0.1:"$tls_port" connect 127.0.0.1 \
		"$echo_port" 2>&1
}
reload() { # reload N: SIGHUP, then wait for the Nth reload line (accepted or refused)
	kill -HUP "$daemon"
	for _ in $(seq 100); do
		(($(grep -c "policy reloaded from\|keeping the previous policy" "$tmp/daemon.log") >= $1)) &&
			return 0
		sleep 0.05
	done
	fail "no answer to SIGHUP $1"
}

[[ $(served_cert) == $(fingerprint "$certs/server.pem") ]] || fail "not the first certificate"
# A session opened before the reload, waiting on its stdin.
mkfifo "$tmp/in"
"$cli" --socket tls://127.0.0.1:"$tls_port" connect 127.0.0.1 "$echo_port" <"$tmp/in" \
	>"$tmp/old" 2>&1 &
old=$!
pids+=($old)
exec 3>"$tmp/in"
echo "before" >&3
for _ in $(seq 100); do [[ -s $tmp/old ]] && break; sleep 0.05; done
[[ $(cat "$tmp/old") == before ]] || fail "the first session: '$(cat "$tmp/old")'"

# 0. The worker never holds the private key (the parent signs for it): neither the
# key's scalar nor its PEM text is anywhere in the worker's memory, while the parent,
# and a one-process daemon (the control: the search finds what is there), hold it.
scalar=$(openssl pkey -in "$certs/server.key" -text -noout 2>/dev/null |
	sed -n '/^priv:/,/^pub:/p' | grep -v 'priv:\|pub:' | tr -d ' :\n')
pem=$(sed -n 2p "$certs/server.key" | head -c 48 | od -An -tx1 | tr -d ' \n')
[[ ${#scalar} == 64 ]] || fail "cannot read the key's scalar"
# OpenSSL's BIGNUMs keep it in little-endian words: the bytes reversed, on this machine.
reversed=$(sed 's/../& /g' <<<"$scalar" | tr ' ' '\n' | tac | tr -d '\n')
workers=$(pgrep -P "$daemon" -u sockrpc) || fail "no worker"
rc=0
for worker in $workers; do
	python3 "$here/helpers/mem_search.py" "$worker" "$scalar" "$reversed" "$pem" || rc=$?
	((rc == 0)) || break
done
if ((rc == 3)); then
	echo "skip: the worker's memory cannot be searched (a sanitizer's address space)"
else
	((rc == 0)) || fail "the worker holds the TLS private key"
	python3 "$here/helpers/mem_search.py" "$daemon" "$scalar" "$reversed" >/dev/null &&
		fail "the search did not find the key in the parent (the search is broken)"
	echo "ok: the private key is in the parent, not in the worker"
fi

# 1. A good new set: the new certificate for new handshakes; the old session goes on.
cp "$certs/server2.pem" "$tmp/cert.pem"
cp "$certs/server2.key" "$tmp/key.pem"
reload 1
grep -q "policy reloaded from .*with the TLS credentials" "$tmp/daemon.log" ||
	fail "the reload did not take the credentials"
[[ $(served_cert) == $(fingerprint "$certs/server2.pem") ]] || fail "the old certificate after reload"
[[ $(echo_once new) == new ]] || fail "no new session after the reload"
echo "after" >&3
sleep 0.5
[[ $(cat "$tmp/old") == $'before\nafter' ]] || fail "the session from before: '$(cat "$tmp/old")'"
echo "ok: new certificate served, the session from before kept"

# 2. A bad set: the key no longer matches, and the policy would deny everything.
cp "$certs/client.key" "$tmp/key.pem"
echo 'deny * * reason "would deny"' >"$tmp/p.policy"
reload 2
grep -q "TLS credentials rejected" "$tmp/daemon.log" || fail "no reason given for the bad set"
grep -q "keeping the previous policy and TLS credentials" "$tmp/daemon.log" ||
	fail "the bad set was not refused as a whole"
[[ $(served_cert) == $(fingerprint "$certs/server2.pem") ]] || fail "a bad set changed the certificate"
[[ $(echo_once kept) == kept ]] || fail "a bad set changed the policy (or broke the daemon)"
echo "ok: bad set refused as a whole"

# 3. A new CA bundle: certificates of the old CA are refused at the next handshake.
cp "$certs/server2.key" "$tmp/key.pem"
echo "$allow" >"$tmp/p.policy"
cp "$certs/rogue-ca.pem" "$tmp/ca.pem"
reload 3
out=$(echo_once refused) && fail "the old CA's client accepted after the CA changed: $out"
grep -q "unknown ca" <<<"$out" || fail "unclear refusal after the CA changed: $out"
out=$(echo rogue | SOCKRPC_TLS_CERT=$certs/rogue.pem SOCKRPC_TLS_KEY=$certs/rogue.key timeout 5 \
	"$cli" --socket tls://127.0.0.1:"$tls_port" connect 127.0.0.1 "$echo_port" 2>&1) ||
	fail "the new CA's client refused: $out"
[[ $out == rogue ]] || fail "the new CA's client got '$out'"
echo "ok: the new CA applies to the next handshake, in the worker and the parent"
exec 3>&-
echo "PASS"
