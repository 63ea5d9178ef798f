#!/usr/bin/env bash
# sockrpc run with real programs nobody here wrote: ssh to a local sshd, redis-cli and
# redis-benchmark against a local redis-server, the iperf3 client against iperf3 -s, each
# checked for its output and for the daemon's audit lines; servers under sockrpc run
# (http.server, redis-server, iperf3 -s) reached from the host through the daemon's
# listener, a peer the accept rules deny kept out; then the same programs aimed at a port
# the policy denies, which must fail at once (no hang) and be audited.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
build=$(cd "$1" && pwd)
scratch_dir
fail() {
	echo "FAIL: $*"
	echo "--- audit"; tail -n 20 "$dir/audit.log" 2>/dev/null || true
	exit 1
}
sockrpc=$build/client/cli/sockrpc

if [ "$(id -u)" != 0 ]; then
	echo "needs root (sshd, the daemon)"
	exit 77
fi
if ! unshare -n true 2>/dev/null; then
	echo "cannot create a network namespace here"
	exit 77
fi
for p in ssh sshd ssh-keygen redis-server redis-cli redis-benchmark iperf3; do
	command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || {
		echo "$p is missing (tools/install-deps installs it)"
		exit 77
	}
done

# Free loopback ports, chosen by the kernel.
read -r ssh_port redis_port iperf_port bad_port web_in redis_in iperf_in < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(7)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')

# A listener on the denied port that counts connections (none may arrive).
python3 - "$dir/bad.count" "$bad_port" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[2]))); s.listen(16)
n = 0
while True:
    c, _ = s.accept(); n += 1; open(sys.argv[1], "w").write(str(n)); c.close()
PY
pids+=($!)

# sshd on its port, with keys made now.
ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$dir/user_key"
cp "$dir/user_key.pub" "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys"
mkdir -p /run/sshd
cat >"$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1:$ssh_port
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile none
CONF
"$(command -v sshd || echo /usr/sbin/sshd)" -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
pids+=($!)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$dir" >"$dir/redis.log" 2>&1 &
pids+=($!)
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >"$dir/iperf3.log" 2>&1 &
pids+=($!)

cat >"$dir/policy" <<POLICY
allow uid=0 create tcp,udp
allow uid=0 connect tcp 127.0.0.1 port $ssh_port,$redis_port,$iperf_port handback
deny uid=0 connect tcp 127.0.0.1 port $bad_port reason "the test's denied port"
allow uid=0 bind,listen tcp 127.0.0.1 port $web_in,$redis_in,$iperf_in
deny uid=0 accept tcp 127.0.0.2 reason "the test's denied peer"
allow uid=0 accept tcp 127.0.0.1 handback
POLICY
"$build/daemon/sockrpcd" --socket "$dir/s.sock" --policy "$dir/policy" \
	--audit "$dir/audit.log" 2>"$dir/daemon.log" &
pids+=($!)
wait_port() {
	for _ in $(seq 200); do
		python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 1)" \
			2>/dev/null && return 0
		sleep 0.05
	done
	fail "nothing listens on port $1"
}
for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done
wait_port "$ssh_port"
wait_port "$redis_port"
wait_port "$iperf_port"
run() { timeout 60 "$sockrpc" --socket "$dir/s.sock" run -- "$@"; }
audited() { audit_has "$dir/audit.log" "$1" || fail "no audit line matching $1"; }
ssh_opts=(-i "$dir/user_key" -o BatchMode=yes -o StrictHostKeyChecking=no
	-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=20)

# ssh: a command on the far side, its output back.
out=$(run ssh "${ssh_opts[@]}" -p "$ssh_port" root@127.0.0.1 echo through-ssh) ||
	fail "ssh: $out $(tail -5 "$dir/sshd.log")"
[ "$out" = "through-ssh" ] || fail "ssh printed: $out"
audited "\"op\":\"connect\".*\"port\":$ssh_port.*\"decision\":\"allow\""

# redis-cli: a write and a read back; redis-benchmark: its event loop's non-blocking
# connects, several clients at once.
out=$(run redis-cli -h 127.0.0.1 -p "$redis_port" set sockrpc-run yes) || fail "redis set: $out"
[ "$out" = "OK" ] || fail "redis-cli set printed: $out"
out=$(run redis-cli -h 127.0.0.1 -p "$redis_port" get sockrpc-run) || fail "redis get: $out"
[ "$out" = "yes" ] || fail "redis-cli get printed: $out"
out=$(run redis-benchmark -h 127.0.0.1 -p "$redis_port" -c 4 -n 2000 -t set,get -q 2>&1 | tr "\r" "\n") ||
	fail "redis-benchmark: $out"
grep -q "^SET: .* requests per second" <<<"$out" && grep -q "^GET: " <<<"$out" ||
	fail "redis-benchmark printed: $out"
audited "\"op\":\"connect\".*\"port\":$redis_port.*\"decision\":\"allow\""

# iperf3: control and data connections, a one-second test with its JSON report.
out=$(run iperf3 -c 127.0.0.1 -p "$iperf_port" -t 1 -J) || fail "iperf3: $out"
bps=$(python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]))' <<<"$out") ||
	fail "iperf3's report: $out"
[ "$bps" -gt 0 ] || fail "iperf3 moved nothing"
echo "iperf3 through sockrpc run: $((bps / 1000000)) Mbit/s"

# Servers under sockrpc run: the daemon keeps the listener and hands back each connection
# its accept rules allow; clients on the host reach them on the daemon's port.
mkdir -p "$dir/www"
echo "served from the namespace" >"$dir/www/index.html"
(cd "$dir/www" && exec "$sockrpc" --socket "$dir/s.sock" run -- \
	python3 -m http.server "$web_in" --bind 127.0.0.1) >"$dir/web_in.log" 2>&1 &
pids+=($!)
"$sockrpc" --socket "$dir/s.sock" run -- redis-server --port "$redis_in" --bind 127.0.0.1 \
	--save '' --appendonly no --dir "$dir" >"$dir/redis_in.log" 2>&1 &
pids+=($!)
"$sockrpc" --socket "$dir/s.sock" run -- iperf3 -s -B 127.0.0.1 -p "$iperf_in" \
	>"$dir/iperf_in.log" 2>&1 &
pids+=($!)
# Without connecting: a probe connection would be iperf3's next client.
wait_listen() {
	for _ in $(seq 200); do
		[ -n "$(ss -Hltn "sport = :$1")" ] && return 0
		sleep 0.05
	done
	fail "nothing listens on port $1"
}
wait_listen "$web_in"
wait_listen "$redis_in"
wait_listen "$iperf_in"
out=$(curl -sS --max-time 20 "http://127.0.0.1:$web_in/") || fail "curl to http.server: $out"
[ "$out" = "served from the namespace" ] || fail "http.server under run served: $out"
out=$(redis-cli -h 127.0.0.1 -p "$redis_in" ping) || fail "redis-server under run: $out"
[ "$out" = "PONG" ] || fail "redis-server under run answered: $out"
out=$(redis-benchmark -h 127.0.0.1 -p "$redis_in" -c 8 -n 2000 -t get -q 2>&1 | tr "\r" "\n") ||
	fail "redis-benchmark to redis-server under run: $out"
grep -q "^GET: " <<<"$out" || fail "redis-benchmark to redis-server under run: $out"
out=$(timeout 60 iperf3 -c 127.0.0.1 -p "$iperf_in" -t 1) || fail "iperf3 -s under run: $out"
audited "\"op\":\"listen\".*\"port\":$redis_in.*\"decision\":\"allow\""
audited "\"op\":\"accept\".*\"decision\":\"allow\""
# A peer the accept rules deny never reaches the program; one that is allowed still does.
set +e
curl -sS --max-time 10 --interface 127.0.0.2 "http://127.0.0.1:$web_in/denied-peer" \
	>"$dir/denied_peer.out" 2>&1
set -e
grep -q "denied-peer" "$dir/web_in.log" && fail "a denied peer reached the program"
audited "\"op\":\"accept\".*127.0.0.2.*\"decision\":\"deny\""
out=$(curl -sS --max-time 20 "http://127.0.0.1:$web_in/") || fail "curl after a denied peer: $out"
# Listening where the policy does not allow: the program's bind fails.
set +e
timeout 30 "$sockrpc" --socket "$dir/s.sock" run -- python3 -m http.server "$bad_port" \
	--bind 127.0.0.1 >"$dir/web_bad.log" 2>&1
rc=$?
set -e
[ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q "Permission denied" "$dir/web_bad.log" ||
	fail "http.server on a port no rule allows: exit $rc, $(tail -2 "$dir/web_bad.log")"
audited "\"op\":\"bind\".*\"port\":$bad_port.*\"decision\":\"deny\""

# Denied: each fails with an error, soon, and reaches nothing.
denied() {
	local what=$1 start rc
	shift
	start=$(date +%s)
	set +e
	run "$@" >"$dir/denied.out" 2>&1
	rc=$?
	set -e
	[ "$rc" != 0 ] || fail "$what at the denied port succeeded: $(cat "$dir/denied.out")"
	[ "$rc" != 124 ] && [ $(($(date +%s) - start)) -lt 15 ] ||
		fail "$what at the denied port hung"
	grep -qi "permission denied" "$dir/denied.out" ||
		fail "$what at the denied port: $(cat "$dir/denied.out")"
}
denied ssh ssh "${ssh_opts[@]}" -p "$bad_port" root@127.0.0.1 true
denied redis-cli redis-cli -h 127.0.0.1 -p "$bad_port" ping
denied iperf3 iperf3 -c 127.0.0.1 -p "$bad_port" -t 1
[ ! -e "$dir/bad.count" ] || fail "the denied port saw $(cat "$dir/bad.count") connections"
audit_has "$dir/audit.log" "\"port\":$bad_port.*\"decision\":\"deny\"" 3 ||
	fail "the denials were not all audited"
echo "run_programs: ok"
