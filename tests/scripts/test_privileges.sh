#!/usr/bin/env bash
# test_privileges.sh BUILD_DIR - sockrpcd started as root drops to the sockrpc user
# keeping exactly CAP_NET_BIND_SERVICE and CAP_NET_RAW: /proc shows the ids and the
# capability sets, a brokered bind to a port below 1024 still works, the user cannot
# read /etc/shadow, and the policy reloads as that user. Needs root (else skipped).
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

# CAP_NET_BIND_SERVICE is bit 10, CAP_NET_RAW bit 13.
want_caps=0000000000002400
printf 'allow uid=0 *\n' >"$tmp/policy"
chmod 0644 "$tmp/policy"
"$sockrpcd" --check-policy "$tmp/policy" >/dev/null || fail "the test policy does not check"

sock=$tmp/sockrpc.sock
NOTIFY_SOCKET= "$sockrpcd" --socket "$sock" --policy "$tmp/policy" >"$tmp/daemon.log" 2>&1 &
daemon=$!
wait_for 5 grep -qs 'listening on' "$tmp/daemon.log" || fail "daemon did not start"

# --- 1. Who it is now, from the kernel.
status=/proc/$daemon/status
field() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "$status"; }
[[ $(field Uid) == "$uid $uid $uid $uid" ]] || fail "Uid: $(field Uid), want $uid everywhere"
[[ $(field Gid) == "$gid $gid $gid $gid" ]] || fail "Gid: $(field Gid), want $gid everywhere"
[[ -z $(field Groups | tr -d ' \t') ]] || fail "supplementary groups kept: $(field Groups)"
[[ $(field CapEff) == "$want_caps" ]] || fail "CapEff $(field CapEff), want $want_caps"
[[ $(field CapPrm) == "$want_caps" ]] || fail "CapPrm $(field CapPrm), want $want_caps"
[[ $(field CapBnd) == "$want_caps" ]] || fail "CapBnd $(field CapBnd), want $want_caps"
[[ $(field CapInh) == 0000000000000000 ]] || fail "CapInh $(field CapInh)"
[[ $(field CapAmb) == 0000000000000000 ]] || fail "CapAmb $(field CapAmb)"
[[ $(field NoNewPrivs) == 1 ]] || fail "NoNewPrivs $(field NoNewPrivs)"
echo "ok: uid/gid $uid/$gid, no groups, CapEff=CapPrm=CapBnd=$want_caps, no ambient, no_new_privs"

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
echo "ok: brokered bind to 127.0.0.1:$port as uid $uid: $out"
# Without that capability the same user cannot: the daemon's bind is what the cap allows.
if ((port < start)) && command -v python3 >/dev/null && [[ -x /usr/bin/python3 ]]; then
	if setpriv --reuid="$uid" --regid="$gid" --clear-groups /usr/bin/python3 -c \
		'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' \
		"$port" 2>/dev/null; then
		fail "uid $uid binds port $port even without the capability"
	fi
	echo "ok: uid $uid without the capability cannot bind $port itself"
fi

# --- 3. Nothing else: no file-permission override, so /etc/shadow is out of reach.
caps=$((16#$(field CapEff)))
((!(caps & (1 << 1)) && !(caps & (1 << 2)))) || fail "CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH kept"
if [[ -e /etc/shadow ]]; then
	ls -l /etc/shadow
	if setpriv --reuid="$uid" --regid="$gid" --clear-groups cat /etc/shadow >/dev/null 2>&1; then
		fail "uid $uid can read /etc/shadow"
	fi
	echo "ok: uid $uid cannot read /etc/shadow; the daemon holds neither DAC capability"
fi

# --- 4. SIGHUP reloads the policy as the user; an unreadable one keeps the old.
kill -HUP "$daemon"
wait_for 5 grep -qs 'policy reloaded' "$tmp/daemon.log" || fail "no reload after SIGHUP"
chmod 0600 "$tmp/policy"
kill -HUP "$daemon"
wait_for 5 grep -qs 'keeping the previous policy' "$tmp/daemon.log" ||
	fail "an unreadable policy was not reported"
out=$(timeout 10 "$probe" "$sock" bind 127.0.0.1 0) || fail "no service after reloads: $out"
echo "ok: SIGHUP reloads as uid $uid; an unreadable policy keeps the previous one"

kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
daemon=
[[ $rc == 0 ]] || fail "daemon exited with status $rc"

# --- 5. --user names a user that must exist.
rc=0
NOTIFY_SOCKET= timeout 5 "$sockrpcd" --socket "$tmp/other.sock" --user no-such-user-sockrpc \
	>"$tmp/nouser.log" 2>&1 || rc=$?
((rc != 0 && rc != 124)) || fail "--user no-such-user started"
grep -q 'no such user' "$tmp/nouser.log" || fail "no clear error for a missing --user"
echo "ok: --user with a missing user fails"
echo "PASS"
