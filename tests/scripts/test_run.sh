#!/usr/bin/env bash
# sockrpc run: unmodified programs under the launcher (seccomp user notification, a
# network namespace with loopback only), against servers on the host's loopback. Checks
# what each program got and what the daemon audited: brokered connects (blocking and
# not), denials as EACCES, calls refused outright, a packet the filter does not trap
# staying in the namespace, and the address-rewriting race.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
build=$1
scratch_dir
fail() {
	echo "FAIL: $*"
	echo "--- audit"; tail -n 20 "$dir/audit.log" 2>/dev/null || true
	echo "--- daemon"; tail -n 20 "$dir/daemon.log" 2>/dev/null || true
	exit 1
}
# LeakSanitizer (an ASan build) stops the world with ptrace, which the filter refuses.
probe=(env ASAN_OPTIONS=detect_leaks=0 "$build/tests/scripts/run_probe")
sockrpc=$build/client/cli/sockrpc

if [ "$(id -u)" != 0 ]; then
	echo "needs root (the daemon, and a namespace without a user namespace)"
	exit 77
fi
if ! unshare -n true 2>/dev/null; then
	echo "cannot create a network namespace here"
	exit 77
fi

# Servers on the host's loopback: echo on "good" and "bad" (each accept counted in a
# file), HTTP (http.server) on "http", a UDP listener recording what it receives.
mkdir -p "$dir/www"
echo "hello through the broker" >"$dir/www/index.html"
python3 - "$dir" <<'PY' &
import http.server, os, socket, sys, threading
d = sys.argv[1]
def tcp():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(128); return s
def echo(srv, name):
    n = 0
    while True:
        c, _ = srv.accept()
        n += 1
        open(f"{d}/{name}.count", "w").write(str(n))
        def one(c=c):
            with c:
                data = c.recv(100)
                if data: c.sendall(data)
        threading.Thread(target=one, daemon=True).start()
good, bad = tcp(), tcp()
# "slow": a listener whose queue is full (backlog 0, filled): SYNs to it go unanswered.
slow = socket.socket(); slow.bind(("127.0.0.1", 0)); slow.listen(0)
fillers = []
for _ in range(4):
    f = socket.socket(); f.setblocking(False)
    try: f.connect(slow.getsockname())
    except BlockingIOError: pass
    fillers.append(f)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("127.0.0.1", 0))
def udp_loop():
    while True:
        data, _ = udp.recvfrom(2048)
        open(f"{d}/udp.got", "ab").write(data)
os.chdir(f"{d}/www")
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
for t in (lambda: echo(good, "good"), lambda: echo(bad, "bad"), udp_loop, web.serve_forever):
    threading.Thread(target=t, daemon=True).start()
open(f"{d}/ports.tmp", "w").write(" ".join(str(x.getsockname()[1]) for x in
    (good, bad, udp, slow)) + f" {web.server_address[1]}\n")
os.rename(f"{d}/ports.tmp", f"{d}/ports")
threading.Event().wait()
PY
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/ports" ] && break; sleep 0.05; done
read -r good bad udp slow http <"$dir/ports"

# The daemon resolves from its own hosts file; its name server is one nobody serves, so
# no query leaves the machine.
printf '127.0.0.1 web.sockrpc.test\n127.0.0.1 denied.sockrpc.test\n' >"$dir/hosts"
echo "nameserver 127.0.0.1" >"$dir/resolv.conf"
cat >"$dir/policy" <<POLICY
allow uid=0 create tcp,udp
allow uid=0 connect tcp 127.0.0.1 port $good,$http,$slow handback
deny uid=0 connect tcp 127.0.0.1 port $bad reason "the test's denied port"
allow uid=0 resolve web.sockrpc.test
allow uid=65534 create tcp
allow uid=65534 connect tcp 127.0.0.1 port $good handback
POLICY
"$build/daemon/sockrpcd" --socket "$dir/s.sock" --policy "$dir/policy" \
	--audit "$dir/audit.log" --hosts "$dir/hosts" --resolv-conf "$dir/resolv.conf" \
	2>"$dir/daemon.log" &
pids+=($!)
daemon=$!
for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done
run() { timeout 60 "$sockrpc" --socket "$dir/s.sock" run "$@"; }
audited() { audit_has "$dir/audit.log" "$1" || fail "no audit line matching $1"; }

# The namespace: loopback only.
out=$(run -- "${probe[@]}" links)
[ "$out" = "link: lo" ] || fail "the program sees interfaces other than lo: $out"

# Refused outright by the filter: io_uring (as if absent), ptrace, raw inet sockets.
out=$(run -- "${probe[@]}" escapes) || fail "escapes: $out"
grep -q "io_uring_setup: ENOSYS" <<<"$out" || fail "io_uring: $out"
grep -q "ptrace: EPERM" <<<"$out" || fail "ptrace: $out"
grep -q "raw socket: EACCES" <<<"$out" || fail "raw socket: $out"
grep -q "icmp socket: EPROTONOSUPPORT" <<<"$out" || fail "icmp socket: $out"
grep -q "raw socket, high bits: EACCES" <<<"$out" || fail "raw socket, family with high bits: $out"
grep -q "pidfd_getfd: EPERM" <<<"$out" || fail "pidfd_getfd on the supervisor: $out"

# An allowed connect: the handed-back socket is real (getpeername, data both ways).
out=$(run -- "${probe[@]}" connect 127.0.0.1 "$good") || fail "allowed connect: $out"
grep -q "connected: peer 127.0.0.1 port $good" <<<"$out" || fail "peer name: $out"
grep -q "received: ping" <<<"$out" || fail "echo: $out"
audited "\"op\":\"connect\".*\"port\":$good.*\"decision\":\"allow\""
audited '"event":"handback"'

# The same non-blocking: POLLOUT, then SO_ERROR 0.
out=$(run -- "${probe[@]}" nbconnect 127.0.0.1 "$good") || fail "non-blocking connect: $out"
grep -Eq "connect: (EINPROGRESS|0)" <<<"$out" || fail "non-blocking connect: $out"
grep -q "so_error: 0" <<<"$out" || fail "SO_ERROR: $out"
grep -q "received: ping" <<<"$out" || fail "non-blocking echo: $out"

# A denied connect fails with EACCES at once, reaches no server, and is audited.
out=$(run -- "${probe[@]}" connect 127.0.0.1 "$bad") && fail "denied connect succeeded: $out"
[ "$out" = "connect: EACCES" ] || fail "denied connect: $out"
out=$(run -- "${probe[@]}" nbconnect 127.0.0.1 "$bad") && fail "denied nb connect succeeded: $out"
[ "$out" = "connect: EACCES" ] || fail "denied non-blocking connect: $out"
[ ! -e "$dir/bad.count" ] || fail "the denied server was reached"
audited "\"op\":\"connect\".*\"port\":$bad.*\"decision\":\"deny\".*the test's denied port"

# curl, HTTP to http.server; then at the denied port: an error, not a hang.
out=$(run -- curl -sS --max-time 20 "http://127.0.0.1:$http/") || fail "curl: $out"
[ "$out" = "hello through the broker" ] || fail "curl got: $out"
audited "\"op\":\"connect\".*\"port\":$http.*\"decision\":\"allow\""
set +e
err=$(run -- curl -sS --max-time 20 "http://127.0.0.1:$bad/" 2>&1)
rc=$?
set -e
[ "$rc" = 7 ] || fail "curl at the denied port: exit $rc ($err), expected 7"
[ ! -e "$dir/bad.count" ] || fail "curl reached the denied server"

# A connect that hangs (in the daemon) holds up no other thread of the program, and the
# program's exit is not held up by it either.
start=$(date +%s)
out=$(run -- "${probe[@]}" parallel 127.0.0.1 "$slow" "$good") || fail "parallel: $out"
ms=$(sed -n 's/^good: connected in \([0-9]*\) ms$/\1/p' <<<"$out")
[ -n "$ms" ] && [ "$ms" -lt 1000 ] || fail "a slow connect held up another thread's: $out"
[ $(($(date +%s) - start)) -lt 10 ] || fail "a slow connect held up the program's exit"

# A unix-domain connect is not the broker's business: it goes through.
out=$(run -- "${probe[@]}" unix "$dir/s.sock") || fail "unix connect: $out"

# A datagram no rule allows (test_run_udp.sh has the allowed ones): refused by the daemon.
out=$(run -- "${probe[@]}" udp 127.0.0.1 "$udp") && fail "udp sendto went through: $out"
[ "$out" = "sendto: EACCES" ] || fail "udp sendto: $out"
audited "\"op\":\"send\".*\"port\":$udp.*\"decision\":\"deny\""
# A listener no rule allows.
out=$(run -- "${probe[@]}" listen 0) && fail "listen went through: $out"
[ "$out" = "bind: EACCES" ] || fail "bind: $out"

# DNS: queries to the name server of /etc/resolv.conf are answered in the namespace from
# the daemon's resolver (policy-checked); a denied name does not resolve.
ns=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf 2>/dev/null || true)
if [ -n "$ns" ]; then
	out=$(run -- curl -sS --max-time 20 "http://web.sockrpc.test:$http/") ||
		fail "curl by name: $out"
	[ "$out" = "hello through the broker" ] || fail "curl by name got: $out"
	audited '"op":"resolve".*"name":"web.sockrpc.test".*"decision":"allow"'
	set +e
	out=$(run -- getent hosts denied.sockrpc.test)
	rc=$?
	set -e
	[ "$rc" = 2 ] || fail "getent of a denied name: exit $rc, $out"
	audited '"op":"resolve".*"name":"denied.sockrpc.test".*"decision":"deny"'
	# musl's way (sendto with the address) and glibc's (A and AAAA in one sendmmsg).
	out=$(run -- "${probe[@]}" dns "$ns" web.sockrpc.test) || fail "dns probe: $out"
	# web.sockrpc.test has no IPv6 address: the AAAA query gets an empty answer.
	[ "$(grep -c "rcode 0 answers 1" <<<"$out")" = 2 ] &&
		grep -q "id 3 rcode 0 answers 0" <<<"$out" &&
		grep -q "sendmmsg: sent 2, lengths ok" <<<"$out" || fail "dns probe: $out"
	out=$(run -- "${probe[@]}" dns "$ns" denied.sockrpc.test) || fail "dns probe: $out"
	[ "$(grep -c "rcode 3 answers 0" <<<"$out")" = 3 ] || fail "denied name: $out"
	# Any other address on port 53 is just a datagram elsewhere: the policy refuses it.
	out=$(run -- "${probe[@]}" dns 127.0.0.2 web.sockrpc.test) && fail "dns elsewhere: $out"
	[ "$out" = "sendto: EACCES" ] || fail "dns elsewhere: $out"
else
	echo "no name server in /etc/resolv.conf: the DNS case is skipped"
fi

# Sockets of the host's namespace the program inherits are not a way around the broker: a
# listener accepts nothing (its peers were never checked), a UDP socket sends nothing.
out=$(python3 - "$sockrpc" "$dir/s.sock" "${probe[@]}" <<'PY'
import socket, subprocess, sys
lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(1)
peer = socket.create_connection(lst.getsockname())
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# Tied to loopback: even if the supervisor let it send, nothing would leave the machine.
udp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
ns = "127.0.0.53"
for line in open("/etc/resolv.conf"):
    w = line.split()
    if len(w) >= 2 and w[0] == "nameserver":
        ns = w[1]; break
cmd = [sys.argv[1], "--socket", sys.argv[2], "run", "--"] + sys.argv[3:] + \
    ["inherited", str(lst.fileno()), str(udp.fileno()), ns]
r = subprocess.run(cmd, pass_fds=(lst.fileno(), udp.fileno()), capture_output=True,
                   text=True, timeout=60)
print(r.stdout, end="")
PY
)
[ "$out" = $'accept: EACCES\nsendto: EACCES' ] || fail "inherited sockets: $out"

# A packet socket is not trapped, but all it reaches is the namespace's own loopback.
out=$(run -- "${probe[@]}" packet "$udp") || fail "packet probe: $out"
[ "$out" = "packet: sent" ] || fail "packet probe: $out"
sleep 0.3
[ ! -e "$dir/udp.got" ] || fail "a packet from the namespace reached the host: $(cat "$dir/udp.got")"

# The race: one thread connects to the allowed port while another flips the port in the
# same sockaddr to the denied one. Without a namespace (so a connect let through would
# reach the host), the denied server must never see a connection.
out=$(run --no-netns -- "${probe[@]}" race 127.0.0.1 "$good" "$bad" 3000 2>/dev/null) ||
	fail "race: $out"
echo "$out"
[ ! -e "$dir/bad.count" ] || fail "race: the denied server saw $(cat "$dir/bad.count") connections"
read -r _ _ n_good _ n_bad _ n_denied _ n_other <<<"$out"
[ "$n_bad" = 0 ] && [ "$n_other" = 0 ] && [ $((n_good + n_denied)) = 3000 ] ||
	fail "race: $out"
[ "$n_good" -gt 0 ] && [ "$n_denied" -gt 0 ] || fail "race: one side never won: $out"

# The same race on a datagram socket's disconnect (connect with AF_UNSPEC, which needs no
# check): the family flipped to AF_INET must not connect the socket to the host's UDP
# listener, which send(2), untrapped, would then reach.
out=$(run --no-netns -- "${probe[@]}" unspecrace 127.0.0.1 "$udp" 3000 2>/dev/null) ||
	fail "unspecrace: $out"
sleep 0.3
[ ! -e "$dir/udp.got" ] || fail "unspecrace: a datagram reached the host: $(cat "$dir/udp.got")"

# A descriptor swapped (dup2) between the check of a call let continue (a connect on a unix
# socket) and its run lands a connect on a UDP socket unchecked; in the namespace that
# socket reaches only the namespace's loopback. (With --no-netns it reaches the host:
# docs/internals.md, "sockrpc run", known limits.)
run -- "${probe[@]}" fdrace 127.0.0.1 "$udp" 3000 >/dev/null 2>&1 || true
sleep 0.3
[ ! -e "$dir/udp.got" ] || fail "fdrace: a datagram reached the host: $(cat "$dir/udp.got")"

# A stream of signals at a thread in connect: once the supervisor has the call, the signal
# waits (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV), so the kernel never restarts a connect
# the daemon made: the server sees each connect once. Neither the supervisor nor the daemon
# keeps a descriptor afterwards; nor without the flag (SOCKRPC_DISABLE=wait-killable, the
# fallback for kernels before 5.19), where a restarted connect's first socket is closed.
daemon_fds() {
	local n=0 p
	for p in $daemon $(pgrep -P "$daemon"); do n=$((n + $(ls "/proc/$p/fd" | wc -l))); done
	echo "$n"
}
# The supervisor's descriptors once the probe has done N connects (and pauses).
supervisor_fds() {
	local out=$dir/sig.out spid n
	: >"$out"
	"$sockrpc" --socket "$dir/s.sock" run -- "${probe[@]}" sigconnect 127.0.0.1 "$good" "$1" \
		pause >"$out" &
	spid=$!
	for _ in $(seq 600); do grep -q '^done$' "$out" && break; sleep 0.05; done
	if ! grep -q '^done$' "$out"; then
		kill -9 "$spid"
		fail "sigconnect: not done in 30 s: $(cat "$out")" >&2
	fi
	n=$(ls "/proc/$spid/fd" | wc -l)
	wait "$spid" || fail "sigconnect: $(cat "$out")" >&2
	grep -q "sigconnect: ok $1 failed 0 signals" "$out" || fail "sigconnect: $(cat "$out")" >&2
	echo "$n"
}
fds_before=$(daemon_fds)
base=$(supervisor_fds 0)
before=$(cat "$dir/good.count")
after_n=$(supervisor_fds 300)
after=$(cat "$dir/good.count")
[ $((after - before)) = 300 ] ||
	fail "300 connects under signals reached the server $((after - before)) times"
[ "$after_n" = "$base" ] || fail "the supervisor holds $after_n descriptors, $base before"
before=$after
after_n=$(SOCKRPC_DISABLE=wait-killable PROBE_SIGNAL_US=3000 supervisor_fds 60)
echo "without wait-killable: 60 connects reached the server $(($(cat "$dir/good.count") - before)) times"
[ "$after_n" = "$base" ] || fail "fallback: the supervisor holds $after_n descriptors, $base before"
for _ in $(seq 40); do [ "$(daemon_fds)" = "$fds_before" ] && break; sleep 0.05; done
[ "$(daemon_fds)" = "$fds_before" ] || fail "the daemon holds $(daemon_fds) descriptors, $fds_before before"

# Not root: the namespace is made inside a user namespace; the daemon sees the caller.
if unshare -U true 2>/dev/null && setpriv --reuid 65534 --regid 65534 --clear-groups \
	unshare -U true 2>/dev/null; then
	chmod 755 "$dir"
	as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups -- "$@"; }
	out=$(as_nobody timeout 60 "$sockrpc" --socket "$dir/s.sock" run -- "${probe[@]}" links)
	[ "$out" = "link: lo" ] || fail "unprivileged: the program sees $out"
	out=$(as_nobody timeout 60 "$sockrpc" --socket "$dir/s.sock" run -- \
		"${probe[@]}" connect 127.0.0.1 "$good") || fail "unprivileged connect: $out"
	grep -q "received: ping" <<<"$out" || fail "unprivileged connect: $out"
	audited "\"uid\":65534.*\"op\":\"connect\".*\"port\":$good.*\"decision\":\"allow\""
	out=$(as_nobody timeout 60 "$sockrpc" --socket "$dir/s.sock" run -- \
		"${probe[@]}" escapes) || fail "unprivileged escapes: $out"
else
	echo "no unprivileged user namespaces here: the unprivileged case is skipped"
fi

# The program's exit status is ours; a program that cannot start is 127.
set +e
run -- sh -c 'exit 3'
rc=$?
run -- "$dir/no-such-program" 2>/dev/null
rc2=$?
set -e
[ "$rc" = 3 ] && [ "$rc2" = 127 ] || fail "exit status: $rc and $rc2, expected 3 and 127"
echo "run: ok"
