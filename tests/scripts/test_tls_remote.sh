#!/usr/bin/env bash
# test_tls_remote.sh BUILD_DIR - the remote proof: sockrpcd in one network namespace, a
# client in another, joined only by a veth pair (link-local 169.254.77.0/24 and the
# documentation prefix 2001:db8:77::/64, on the veth alone). The daemon's namespace runs
# a TCP echo server on its own 127.0.0.1, which the client's namespace cannot reach; the
# client reaches it only through the broker over mutual TLS, over IPv4 and IPv6. Without
# a certificate, with another CA's, or with an expired one it is refused in the
# handshake (and the refusal audited); a principal the policy denies gets EDENIED naming
# the rule; a daemon that goes away fails the waiting client at once. Needs root.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

build=${1:?usage: test_tls_remote.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
sockrpcd=$build/daemon/sockrpcd
cli=$build/client/cli/sockrpc

if [[ $(id -u) != 0 ]]; then
	echo "SKIP: network namespaces need root"
	exit 77
fi
for tool in ip socat openssl; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (tools/install-deps)"; exit 1; }
done
getent passwd sockrpc >/dev/null || { echo "SKIP: no sockrpc user (tools/install-deps)"; exit 77; }

tmp=$(mktemp -d /tmp/sockrpc-tls.XXXXXX)
chmod 0755 "$tmp"
ns_d=srtls-d-$$
ns_c=srtls-c-$$
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
	# Whatever still runs in the test's namespaces (the servers' forked children) ends too.
	for ns in "$ns_d" "$ns_c"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
	done
	ip netns del "$ns_d" 2>/dev/null || true
	ip netns del "$ns_c" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/daemon.log "$tmp"/out; do
		[[ -f $f ]] && { echo "--- $f"; tail -20 "$f"; }
	done
	exit 1
}
in_d() { ip netns exec "$ns_d" "$@"; }
in_c() { ip netns exec "$ns_c" "$@"; }

bash "$here/helpers/tls_certs.sh" "$tmp/certs"
certs=$tmp/certs

# Two namespaces, one veth pair between them, nothing else.
ip netns add "$ns_d"
ip netns add "$ns_c"
ip link add "srd$$" netns "$ns_d" type veth peer name "src$$" netns "$ns_c"
in_d ip link set lo up
in_c ip link set lo up
in_d ip addr add 169.254.77.1/24 dev "srd$$"
in_c ip addr add 169.254.77.2/24 dev "src$$"
in_d ip -6 addr add 2001:db8:77::1/64 dev "srd$$" nodad
in_c ip -6 addr add 2001:db8:77::2/64 dev "src$$" nodad
in_d ip link set "srd$$" up
in_c ip link set "srd$$" up 2>/dev/null || in_c ip link set "src$$" up

# The echo server, on the daemon's own loopback only.
ip netns exec "$ns_d" socat TCP-LISTEN:7007,bind=127.0.0.1,fork,reuseaddr EXEC:cat \
	>/dev/null 2>&1 &
pids+=($!)
# A server that accepts and never answers (the daemon-lost case).
ip netns exec "$ns_d" socat TCP-LISTEN:7008,bind=127.0.0.1,fork,reuseaddr SYSTEM:"sleep 60" \
	>/dev/null 2>&1 &
pids+=($!)

cat >"$tmp/p.policy" <<'POLICY'
deny principal=spiffe://example.org/untrusted/* * reason "untrusted sandboxes get nothing"
allow principal=spiffe://example.org/sandbox/* create tcp
allow principal=spiffe://example.org/sandbox/* connect tcp 127.0.0.1 port 7007,7008
allow principal=spiffe://example.org/sandbox/* bind,listen tcp 127.0.0.1 port 7100
allow principal=spiffe://example.org/sandbox/* accept tcp 127.0.0.1
allow principal=spiffe://example.org/sandbox/* option SO_REUSEADDR
POLICY
ip netns exec "$ns_d" "$sockrpcd" --socket "$tmp/s.sock" --policy "$tmp/p.policy" --audit "$tmp/audit.log" \
	--listen-tls 169.254.77.1:7443 --listen-tls '[2001:db8:77::1]:7443' \
	--tls-cert "$certs/server.pem" --tls-key "$certs/server.key" \
	--tls-client-ca "$certs/ca.pem" --max-sessions-per-uid 2 >"$tmp/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)
wait_listening "$tmp/daemon.log" "$tmp/s.sock" || fail "the daemon did not start"

export SOCKRPC_TLS_CA=$certs/ca.pem
as_sandbox() { SOCKRPC_TLS_CERT=$certs/$1.pem SOCKRPC_TLS_KEY=$certs/$1.key "${@:2}"; }

# 1. The client's namespace cannot reach the echo server itself.
for target in TCP:127.0.0.1:7007 TCP:169.254.77.1:7007; do
	if echo x | in_c timeout 3 socat -T1 - "$target" >/dev/null 2>&1; then
		fail "the client's namespace reaches $target without the broker"
	fi
done

# 2. Through the broker, over IPv4 and IPv6.
for ep in tls://169.254.77.1:7443 'tls://[2001:db8:77::1]:7443'; do
	out=$(echo "hello over $ep" | as_sandbox client in_c timeout 10 "$cli" --socket "$ep" \
		connect 127.0.0.1 7007 2>&1) || fail "brokered echo over $ep: $out"
	[[ $out == "hello over $ep" ]] || fail "echo over $ep gave '$out'"
done
echo "ok: echo through the broker over IPv4 and IPv6"
# 16 MiB both ways: records split across reads, writes that wait for room and retry.
head -c 16M /dev/urandom >"$tmp/bulk"
as_sandbox client in_c timeout 60 "$cli" --socket tls://169.254.77.1:7443 connect 127.0.0.1 \
	7007 <"$tmp/bulk" >"$tmp/bulk.back" 2>"$tmp/out" || fail "bulk echo: $(cat "$tmp/out")"
cmp -s "$tmp/bulk" "$tmp/bulk.back" ||
	fail "bulk echo: $(stat -c %s "$tmp/bulk.back") bytes came back, not the same 16 MiB"
echo "ok: 16 MiB echoed intact"

# 2b. The reverse tunnel: the remote client listens on the daemon's 127.0.0.1 through the
# broker and a program there connects to it.
as_sandbox client ip netns exec "$ns_c" timeout 20 "$cli" --socket tls://169.254.77.1:7443 \
	listen 127.0.0.1 7100 </dev/null >"$tmp/reverse" 2>&1 &
listener=$!
pids+=($listener)
for _ in $(seq 100); do
	in_d socat -u - TCP:127.0.0.1:7100 <<<"reverse tunnel" 2>/dev/null && break
	sleep 0.1
done
wait "$listener" || fail "remote listen/accept: $(cat "$tmp/reverse")"
[[ $(cat "$tmp/reverse") == "reverse tunnel" ]] || fail "remote listen/accept got '$(cat "$tmp/reverse")'"
echo "ok: remote listen/accept on the daemon's loopback"

# 3. Refused in the handshake: no certificate, another CA, expired. Never a session.
expect_refused() { # name cert-or-none pattern
	local out
	if [[ $2 == none ]]; then
		out=$(SOCKRPC_TLS_CERT=$certs/client.pem SOCKRPC_TLS_KEY=/dev/null \
			in_c timeout 10 "$cli" --socket tls://169.254.77.1:7443 status 2>&1) &&
			fail "$1: accepted"
	else
		out=$(as_sandbox "$2" in_c timeout 10 "$cli" --socket tls://169.254.77.1:7443 \
			status 2>&1) && fail "$1: accepted: $out"
	fi
	grep -Eq "$3" <<<"$out" || fail "$1: unclear error: $out"
	echo "ok: $1 refused: $out"
}
expect_refused "a key that is not the certificate's" none "SOCKRPC_TLS_KEY"
expect_refused "another CA's certificate" rogue "refused this client \(TLS\).*unknown ca"
expect_refused "an expired certificate" expired "refused this client \(TLS\).*expired"
# No certificate at all: openssl's client, which can leave it out.
echo | in_c timeout 5 openssl s_client -connect 169.254.77.1:7443 -CAfile "$certs/ca.pem" \
	-quiet >/dev/null 2>&1 || true
audit_has "$tmp/audit.log" '"event":"tls-refused".*"peer":"169.254.77.2:[0-9]*".*did not return a certificate' ||
	fail "no audit line for the client without a certificate"
audit_has "$tmp/audit.log" '"event":"tls-refused".*expired' ||
	fail "no audit line for the expired certificate"
audit_has "$tmp/audit.log" '"event":"tls-refused".*unknown ca\|"event":"tls-refused".*local issuer' ||
	fail "no audit line for the other CA's certificate"
# TLS 1.2 is refused too.
if echo | as_sandbox client in_c timeout 5 openssl s_client -connect 169.254.77.1:7443 -tls1_2 \
	-cert "$certs/client.pem" -key "$certs/client.key" -CAfile "$certs/ca.pem" \
	2>&1 | grep -q "Cipher is"; then
	fail "TLS 1.2 was accepted"
fi
echo "ok: no certificate and TLS 1.2 refused, refusals audited"

# 4. A principal the policy denies: EDENIED naming the rule.
out=$(echo x | as_sandbox denied in_c timeout 10 "$cli" --socket tls://169.254.77.1:7443 \
	connect 127.0.0.1 7007 2>&1) && fail "the denied principal connected: $out"
grep -q "denied by policy (.*p.policy:1)" <<<"$out" || fail "denial without its rule: $out"
grep -q "untrusted sandboxes get nothing" <<<"$out" || fail "denial without its reason: $out"
audit_has "$tmp/audit.log" '"transport":"tls","peer":"169.254.77.2:[0-9]*","principal":"spiffe://example.org/untrusted/7".*"decision":"deny","rule":"[^"]*p.policy:1"' ||
	fail "no audit line with transport, peer and principal for the denial"
echo "ok: denied principal: $out"

# 5. Sessions per principal (--max-sessions-per-uid counts a TLS peer by its principal).
waiting=()
for i in 1 2; do
	SOCKRPC_TLS_CERT=$certs/client.pem SOCKRPC_TLS_KEY=$certs/client.key \
		ip netns exec "$ns_c" "$cli" --socket tls://169.254.77.1:7443 connect 127.0.0.1 7008 \
		< <(exec sleep 20 2>/dev/null) >/dev/null 2>&1 &
	waiting+=($!)
	pids+=($!)
done
sleep 1
out=$(as_sandbox client in_c timeout 10 "$cli" --socket tls://169.254.77.1:7443 status 2>&1) &&
	fail "a third session of one principal was admitted"
grep -q "too many sessions for this principal" <<<"$out" || fail "unclear limit: $out"
as_sandbox denied in_c timeout 10 "$cli" --socket tls://169.254.77.1:7443 status >/dev/null 2>&1 ||
	fail "another principal was held out by the first one's limit"
kill "${waiting[@]}"
wait "${waiting[@]}" 2>/dev/null || true
echo "ok: sessions limited per principal: $out"

# 6. The daemon goes away while the client waits for a reply: it fails at once.
SOCKRPC_TLS_CERT=$certs/client.pem SOCKRPC_TLS_KEY=$certs/client.key \
	ip netns exec "$ns_c" "$cli" --socket tls://169.254.77.1:7443 connect 127.0.0.1 7008 \
	< <(exec sleep 20 2>/dev/null) >"$tmp/out" 2>&1 &
client=$!
pids+=($client)
sleep 1
kill -0 "$client" 2>/dev/null || fail "the waiting client ended early: $(cat "$tmp/out")"
kill -KILL "$daemon"
pkill -KILL -P "$daemon" 2>/dev/null || true # (its worker: the only child of that pid)
start=$SECONDS
for _ in $(seq 60); do kill -0 "$client" 2>/dev/null || break; sleep 0.05; done
kill -0 "$client" 2>/dev/null && fail "the client still waits after the daemon died"
wait "$client" && fail "the client succeeded without its daemon"
grep -qi "sockrpcd\|daemon" "$tmp/out" || fail "unclear error after the daemon died: $(cat "$tmp/out")"
echo "ok: daemon lost: $(cat "$tmp/out") (after $((SECONDS - start)) s)"
echo "PASS"
