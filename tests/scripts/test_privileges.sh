#!/usr/bin/env bash
# test_privileges.sh BUILD_DIR - sockrpcd started as root splits into a root parent and
# a `sockrpc` worker with no capability: /proc shows the ids and the capability sets, a
# brokered bind to a port below 1024 still works (the parent makes it), the user cannot
# read /etc/shadow, the policy reloads on SIGHUP, SIGTERM stops both, and without the
# user the daemon refuses to run as root unless --user root. Needs root (else skipped).
# The sockrpc user is expected (tools/install-deps); if missing, it is made for the test
# and removed after it, never otherwise.
set -euo pipefail

build=${1:?usage: test_privileges.sh BUILD_DIR}
build=$(cd "$build" && pwd)
sockrpcd=$build/daemon/sockrpcd
probe=$build/tests/scripts/sr_probe

if [[ $(id -u) != 0 ]]; then
	echo "SKIP: the drop from root needs root"
	exit 77
fi
for tool in setpriv useradd userdel; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (util-linux, passwd)"; exit 1; }
done
[[ -x $sockrpcd && -x $probe ]] || { echo "FAIL: build $sockrpcd and $probe first"; exit 1; }

tmp=$(mktemp -d /tmp/sockrpc-priv.XXXXXX)
created_user=0
daemon=
cleanup() {
	[[ -n $daemon ]] && kill "$daemon" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
	if ((created_user)); then
		userdel sockrpc 2>/dev/null || true
		getent group sockrpc >/dev/null && groupdel sockrpc 2>/dev/null || true
	fi
}
trap cleanup EXIT
chmod 0755 "$tmp" # the policy inside must stay readable after the drop

fail() {
	echo "FAIL: $*"
	[[ -f $tmp/daemon.log ]] && { echo "--- daemon.log"; cat "$tmp/daemon.log"; }
	exit 1
}
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

if ! getent passwd sockrpc >/dev/null; then
	useradd --system --no-create-home --shell /usr/sbin/nologin --user-group sockrpc
	created_user=1
fi
uid=$(id -u sockrpc)
gid=$(id -g sockrpc)

printf 'allow uid=0 *\n' >"$tmp/policy"
chmod 0600 "$tmp/policy" # the parent reads it, as root
"$sockrpcd" --check-policy "$tmp/policy" >/dev/null || fail "the test policy does not check"

sock=$tmp/sockrpc.sock
NOTIFY_SOCKET= "$sockrpcd" --socket "$sock" --policy "$tmp/policy" >"$tmp/daemon.log" 2>&1 &
daemon=$!
wait_for 5 grep -qs 'listening on' "$tmp/daemon.log" || fail "daemon did not start"
worker=$(cat "/proc/$daemon/task/$daemon/children" | awk '{print $1}')
[[ -n $worker ]] || fail "the daemon has no worker process"

# --- 1. Who each is now, from the kernel: a root parent, a worker with nothing.
echo "$(ps -o user=,pid=,cmd= -p "$daemon")"
echo "$(ps -o user=,pid=,cmd= -p "$worker")"
[[ $(ps -o user= -p "$daemon") == root ]] || fail "the parent is not root"
[[ $(ps -o user= -p "$worker") == sockrpc ]] || fail "the worker is not sockrpc"
field() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$2/status"; }
[[ $(field Uid "$daemon") == "0 0 0 0" ]] || fail "parent Uid: $(field Uid "$daemon")"
[[ $(field Uid "$worker") == "$uid $uid $uid $uid" ]] || fail "worker Uid: $(field Uid "$worker")"
[[ $(field Gid "$worker") == "$gid $gid $gid $gid" ]] || fail "worker Gid: $(field Gid "$worker")"
[[ -z $(field Groups "$worker" | tr -d ' \t') ]] || fail "supplementary groups kept: $(field Groups "$worker")"
for set in CapEff CapPrm CapBnd CapInh CapAmb; do
	[[ $(field $set "$worker") == 0000000000000000 ]] || fail "worker $set $(field $set "$worker")"
done
[[ $(field NoNewPrivs "$worker") == 1 ]] || fail "NoNewPrivs $(field NoNewPrivs "$worker")"
echo "ok: parent uid 0; worker uid/gid $uid/$gid, no groups, no capability in any set, no_new_privs"

# --- 2. A brokered bind below 1024 still works: the kept CAP_NET_BIND_SERVICE.
start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)
port=
for p in 80 81 591 593 666 777 888 999; do
	if out=$(timeout 10 "$probe" "$sock" bind 127.0.0.1 "$p"); then
		port=$p
		break
	fi
	[[ $out == *"in use"* ]] || fail "brokered bind to $p: $out"
done
[[ -n $port ]] || fail "no free port below 1024 to try"
((port < start)) || echo "note: ip_unprivileged_port_start=$start, so port $port proves less"
echo "ok: brokered bind to 127.0.0.1:$port (made by the root parent): $out"
# Without that capability the same user cannot: the daemon's bind is what the cap allows.
if ((port < start)) && command -v python3 >/dev/null && [[ -x /usr/bin/python3 ]]; then
	if setpriv --reuid="$uid" --regid="$gid" --clear-groups /usr/bin/python3 -c \
		'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' \
		"$port" 2>/dev/null; then
		fail "uid $uid binds port $port even without the capability"
	fi
	echo "ok: uid $uid without the capability cannot bind $port itself"
fi

# --- 3. The worker's user has no file-permission override: /etc/shadow is out of reach.
if [[ -e /etc/shadow ]]; then
	ls -l /etc/shadow
	if setpriv --reuid="$uid" --regid="$gid" --clear-groups cat /etc/shadow >/dev/null 2>&1; then
		fail "uid $uid can read /etc/shadow"
	fi
	echo "ok: uid $uid cannot read /etc/shadow"
fi

# --- 4. SIGHUP: the parent reads the policy (root's 0600 file) and both sides take it;
# one that does not parse keeps the previous.
kill -HUP "$daemon"
wait_for 5 grep -qs 'policy reloaded' "$tmp/daemon.log" || fail "no reload after SIGHUP"
printf 'allow uid=0 nonsense\n' >"$tmp/policy"
kill -HUP "$daemon"
wait_for 5 grep -qs 'keeping the previous policy' "$tmp/daemon.log" ||
	fail "a broken policy was not reported"
out=$(timeout 10 "$probe" "$sock" bind 127.0.0.1 0) || fail "no service after reloads: $out"
echo "ok: SIGHUP reloads a root-only policy; a broken one keeps the previous"

kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
daemon=
[[ $rc == 0 ]] || fail "daemon exited with status $rc"
wait_for 5 test ! -e "/proc/$worker" || fail "the worker outlived SIGTERM"
[[ ! -e $sock ]] || fail "the parent left its socket file"
echo "ok: SIGTERM stops both, status 0"

# --- 5. --user names a user that must exist.
rc=0
NOTIFY_SOCKET= timeout 5 "$sockrpcd" --socket "$tmp/other.sock" --user no-such-user-sockrpc \
	>"$tmp/nouser.log" 2>&1 || rc=$?
((rc != 0 && rc != 124)) || fail "--user no-such-user started"
grep -q 'no such user' "$tmp/nouser.log" || fail "no clear error for a missing --user"
echo "ok: --user with a missing user fails"

# --- 6. No drop user: refuse to run as root, unless --user root (one process, development).
# The user is hidden in a private mount namespace (/etc/passwd without it).
grep -v '^sockrpc:' /etc/passwd >"$tmp/passwd"
if unshare -m true 2>/dev/null; then
	rc=0
	NOTIFY_SOCKET= timeout 5 unshare -m bash -c 'mount --bind "$1" /etc/passwd && shift && exec "$@"' \
		_ "$tmp/passwd" "$sockrpcd" --socket "$tmp/nouser.sock" >"$tmp/nodrop.log" 2>&1 || rc=$?
	((rc != 0 && rc != 124)) || fail "started as root without the sockrpc user"
	grep -q "no user 'sockrpc' for the unprivileged worker: refusing to run as root" \
		"$tmp/nodrop.log" || fail "no clear error without the sockrpc user: $(cat "$tmp/nodrop.log")"
	[[ ! -e $tmp/nouser.sock ]] || fail "a socket was left by the refused start"
	NOTIFY_SOCKET= unshare -m bash -c 'mount --bind "$1" /etc/passwd && shift && exec "$@"' \
		_ "$tmp/passwd" "$sockrpcd" --socket "$tmp/root.sock" --user root >"$tmp/root.log" 2>&1 &
	daemon=$!
	wait_for 5 grep -qs 'listening on' "$tmp/root.log" || fail "--user root did not start"
	grep -q 'development only' "$tmp/root.log" || fail "no warning for --user root"
	[[ -z $(cat "/proc/$daemon/task/$daemon/children") ]] || fail "--user root split"
	kill -TERM "$daemon"
	wait "$daemon" || fail "--user root exited with status $?"
	daemon=
	echo "ok: without the sockrpc user, refused as root; --user root runs one process"
else
	echo "note: no mount namespaces here; the missing-user refusal is not tested"
fi
echo "PASS"
