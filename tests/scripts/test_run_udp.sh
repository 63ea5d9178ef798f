#!/usr/bin/env bash
# sockrpc run: UDP of an unmodified program (python3's socket module). Unconnected
# sendto/sendmsg go through the daemon (policy, audit) and the replies reach the
# program's socket with the real sender (recvfrom); a denied destination gets EACCES
# and nothing arrives there; connected UDP is handed back where a rule names udp.
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
sockrpc=$build/client/cli/sockrpc
if [ "$(id -u)" != 0 ]; then
	echo "needs root (the daemon, and a namespace without a user namespace)"
	exit 77
fi
if ! unshare -n true 2>/dev/null; then
	echo "cannot create a network namespace here"
	exit 77
fi

# UDP echo servers on the host's loopback (IPv4 and IPv6; each answers "echo:" + data,
# and records it) and a "denied" one that records what reaches it.
python3 - "$dir" <<'PY' &
import os, socket, sys, threading
d = sys.argv[1]
def udp(fam, host):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((host, 0)); return s
def echo(s, name):
    while True:
        data, peer = s.recvfrom(65535)
        open(f"{d}/{name}.got", "ab").write(data + b"\n")
        s.sendto(b"echo:" + data, peer)
e4, e6, bad = udp(socket.AF_INET, "127.0.0.1"), udp(socket.AF_INET6, "::1"), \
    udp(socket.AF_INET, "127.0.0.1")
for s, n in ((e4, "echo4"), (e6, "echo6"), (bad, "bad")):
    threading.Thread(target=echo, args=(s, n), daemon=True).start()
open(f"{d}/ports.tmp", "w").write(" ".join(str(s.getsockname()[1]) for s in (e4, e6, bad)) + "\n")
os.rename(f"{d}/ports.tmp", f"{d}/ports")
threading.Event().wait()
PY
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/ports" ] && break; sleep 0.05; done
read -r echo4 echo6 bad <"$dir/ports"

cat >"$dir/policy" <<POLICY
allow uid=0 create udp
allow uid=0 connect,send udp 127.0.0.1 port $echo4 handback
allow uid=0 connect,send udp [::1] port $echo6
deny uid=0 connect,send udp 127.0.0.1 port $bad reason "the test's denied port"
allow uid=65534 create udp
allow uid=65534 send udp 127.0.0.1 port $echo4
POLICY
"$build/daemon/sockrpcd" --socket "$dir/s.sock" --policy "$dir/policy" \
	--audit "$dir/audit.log" 2>"$dir/daemon.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done
run() { timeout 60 "$sockrpc" --socket "$dir/s.sock" run "$@"; }
audited() { audit_has "$dir/audit.log" "$1" || fail "no audit line matching $1"; }

# The program: unconnected sendto and sendmsg, replies by recvfrom naming the real
# sender; a denied destination; connected UDP (handed back); a bound socket.
cat >"$dir/prog.py" <<'PY'
import errno, socket, sys
echo4, echo6, bad = (int(x) for x in sys.argv[1:4])
def show(what, f):
    try:
        print(what, f())
    except OSError as e:
        print(what, errno.errorcode.get(e.errno, type(e).__name__))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
show("sendto", lambda: s.sendto(b"one", ("127.0.0.1", echo4)))
show("recvfrom", lambda: s.recvfrom(100))
show("sendmsg", lambda: s.sendmsg([b"tw", b"o"], [], 0, ("127.0.0.1", echo4)))
show("recvfrom", lambda: s.recvfrom(100))
show("getsockname port set", lambda: s.getsockname()[1] != 0)
show("denied sendto", lambda: s.sendto(b"bad", ("127.0.0.1", bad)))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s6.settimeout(5)
show("sendto6", lambda: s6.sendto(b"six", ("::1", echo6)))
show("recvfrom6", lambda: s6.recvfrom(100)[:2])
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b.settimeout(5)
show("bind", lambda: b.bind(("0.0.0.0", 0)))
port = b.getsockname()[1]
show("sendto bound", lambda: b.sendto(b"bound", ("127.0.0.1", echo4)))
show("recvfrom bound", lambda: (b.recvfrom(100), b.getsockname()[1] == port))
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(5)
show("connect", lambda: c.connect(("127.0.0.1", echo4)))
show("send", lambda: c.send(b"conn"))
show("recv", lambda: c.recv(100))
show("getpeername", lambda: c.getpeername())
show("connected sendto elsewhere", lambda: c.sendto(b"bad", ("127.0.0.1", bad)))
c6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
show("connect6 (no handback rule)", lambda: c6.connect(("::1", echo6)))
PY
out=$(run -- python3 "$dir/prog.py" "$echo4" "$echo6" "$bad") || fail "program: $out"
echo "$out"
expect() { grep -qxF -- "$1" <<<"$out" || fail "expected '$1' in: $out"; }
expect "sendto 3"
expect "recvfrom (b'echo:one', ('127.0.0.1', $echo4))"
expect "sendmsg 3"
expect "recvfrom (b'echo:two', ('127.0.0.1', $echo4))"
expect "getsockname port set True"
expect "denied sendto EACCES"
expect "sendto6 3"
expect "recvfrom6 (b'echo:six', ('::1', $echo6, 0, 0))"
expect "bind None"
expect "sendto bound 5"
expect "recvfrom bound ((b'echo:bound', ('127.0.0.1', $echo4)), True)"
expect "connect None"
expect "send 4"
expect "recv b'echo:conn'"
expect "getpeername ('127.0.0.1', $echo4)"
expect "connected sendto elsewhere EACCES"
expect "connect6 (no handback rule) EACCES"
[ ! -e "$dir/bad.got" ] || fail "the denied server got: $(cat "$dir/bad.got")"
audited "\"op\":\"send\".*\"port\":$echo4.*\"decision\":\"allow\""
audited "\"op\":\"send\".*\"port\":$echo6.*\"decision\":\"allow\""
audited "\"op\":\"send\".*\"port\":$bad.*\"decision\":\"deny\".*the test's denied port"
audited "\"op\":\"connect\".*\"port\":$echo4.*\"decision\":\"allow\""
audited '"event":"handback"'

# Not root: the namespace (and its raw socket) is made inside a user namespace.
if unshare -U true 2>/dev/null && setpriv --reuid 65534 --regid 65534 --clear-groups \
	unshare -U true 2>/dev/null; then
	chmod 755 "$dir"
	out=$(setpriv --reuid 65534 --regid 65534 --clear-groups -- timeout 60 "$sockrpc" \
		--socket "$dir/s.sock" run -- python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(b"nobody", ("127.0.0.1", int(sys.argv[1]))); print(s.recvfrom(100))' "$echo4") ||
		fail "unprivileged: $out"
	[ "$out" = "(b'echo:nobody', ('127.0.0.1', $echo4))" ] || fail "unprivileged: $out"
	audited "\"uid\":65534.*\"op\":\"send\".*\"port\":$echo4.*\"decision\":\"allow\""
else
	echo "no unprivileged user namespaces here: the unprivileged case is skipped"
fi
echo "run_udp: ok"
