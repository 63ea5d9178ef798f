#!/usr/bin/env bash
# test_systemd.sh BUILD_DIR - sockrpcd as a systemd service, without systemd as PID 1:
# the configured units pass `systemd-analyze verify`, the sysusers/tmpfiles snippets
# apply to a scratch root, the daemon serves a socket passed by systemd-socket-activate,
# tells a NOTIFY_SOCKET listener READY/RELOADING/STOPPING, logs with journald priority
# prefixes, and (when it makes its own socket) replaces only a stale socket file.
set -euo pipefail

build=${1:?usage: test_systemd.sh BUILD_DIR}
build=$(cd "$build" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
sockrpcd=$build/daemon/sockrpcd
probe=$build/tests/scripts/sr_probe

# Tools from Debian's systemd and python3 packages: missing is a broken set-up, not a skip.
for tool in systemd-analyze systemd-socket-activate systemd-sysusers systemd-tmpfiles python3; do
	if ! command -v "$tool" >/dev/null; then
		echo "FAIL: $tool not installed (apt-get install systemd python3)"
		exit 1
	fi
done
[[ -x $sockrpcd && -x $probe ]] || { echo "FAIL: build $sockrpcd and $probe first"; exit 1; }

tmp=$(mktemp -d /tmp/sockrpc-systemd.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
# The daemon may drop to the sockrpc user: let it reach the notify socket.
chmod 0755 "$tmp"

fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log; do
		[[ -f $f ]] && { echo "--- $f"; cat "$f"; }
	done
	exit 1
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.05 s.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

# --- 1. The units, as configured by CMake, with ExecStart pointed at the built daemon.
mkdir "$tmp/units"
cp "$build/systemd/sockrpcd.socket" "$build/systemd/sockrpcd.service" "$tmp/units/"
grep -q '^ExecStart=/.*/sockrpcd ' "$tmp/units/sockrpcd.service" ||
	fail "ExecStart of the configured service does not name sockrpcd"
sed -i "s#^ExecStart=[^ ]*#ExecStart=$sockrpcd#" "$tmp/units/sockrpcd.service"
if ! out=$(cd "$tmp/units" && systemd-analyze verify --man=no ./sockrpcd.socket \
	./sockrpcd.service 2>&1); then
	fail "systemd-analyze verify: $out"
fi
# verify only warns about unknown or malformed settings: any output is a failure.
[[ -z $out ]] || fail "systemd-analyze verify complained: $out"
echo "ok: systemd-analyze verify"
# The service starts as root and splits itself: no User=, no ambient capabilities, and a
# bounding set of exactly what the parent needs (systemd/sockrpcd.service.in says why).
unit=$tmp/units/sockrpcd.service
! grep -q '^User=' "$unit" || fail "the service sets User=: the daemon splits itself"
! grep -q '^AmbientCapabilities=' "$unit" || fail "the service grants ambient capabilities"
grep -qx 'CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_KILL CAP_NET_BIND_SERVICE CAP_NET_RAW CAP_NET_ADMIN' \
	"$unit" || fail "unexpected CapabilityBoundingSet: $(grep CapabilityBoundingSet "$unit")"
echo "ok: the service runs the root parent with a bounded capability set"

mkdir -p "$tmp/root/etc"
systemd-sysusers --root="$tmp/root" "$src/systemd/sockrpcd.sysusers" >"$tmp/sysusers.log" 2>&1 ||
	fail "systemd-sysusers"
grep -q '^sockrpc:' "$tmp/root/etc/passwd" || fail "sysusers made no sockrpc user"
grep -q '^sockrpc:' "$tmp/root/etc/group" || fail "sysusers made no sockrpc group"
systemd-tmpfiles --create --root="$tmp/root" "$src/systemd/sockrpcd.tmpfiles" \
	>"$tmp/tmpfiles.log" 2>&1 || fail "systemd-tmpfiles"
[[ $(stat -c %a "$tmp/root/run/sockrpc") == 755 ]] || fail "tmpfiles: /run/sockrpc mode"
rm -f "$tmp/sysusers.log" "$tmp/tmpfiles.log"
echo "ok: sysusers and tmpfiles snippets"

# --- 2. A NOTIFY_SOCKET listener: one line per datagram, fields joined by spaces.
cat >"$tmp/notify.py" <<'EOF'
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
with open(log, "a", buffering=1) as out:
    while True:
        msg = s.recv(4096).decode(errors="replace")
        out.write(" ".join(msg.split("\n")) + "\n")
EOF
python3 "$tmp/notify.py" "$tmp/notify.sock" "$tmp/notify.log" &
pids+=($!)
wait_for 5 test -S "$tmp/notify.sock" || fail "notify listener did not start"
: >"$tmp/notify.log"

# notified N PATTERN: at least N lines of notify.log match PATTERN.
notified() {
	(($(grep -c -E -- "$2" "$tmp/notify.log" || true) >= $1))
}

# --- 3. Socket activation. systemd-socket-activate listens, then execs the daemon on
# the first connection with LISTEN_FDS=1, passing on only the environment given with -E.
# JOURNAL_STREAM asks for priority prefixes.
act=$tmp/act.sock
systemd-socket-activate -E NOTIFY_SOCKET="$tmp/notify.sock" -E JOURNAL_STREAM=0:0 \
	-l "$act" -- "$sockrpcd" --socket "$act" >"$tmp/activated.log" 2>&1 &
daemon=$!
pids+=("$daemon")
wait_for 5 test -S "$act" || fail "systemd-socket-activate did not listen on $act"
out=$(timeout 10 "$probe" "$act" hello) || fail "no session on the activated socket: $out"
[[ $out == session\ * ]] || fail "unexpected probe output: $out"
[[ $(readlink "/proc/$daemon/exe") == "$(readlink -f "$sockrpcd")" ]] ||
	fail "the activated process is not sockrpcd"
wait_for 5 notified 1 '^READY=1' || fail "no READY=1 after start"
echo "ok: socket activation, served: $out; READY=1"
# The same split as without systemd: a root parent (the main process, which alone
# notifies) and a sockrpc worker with no capability.
if getent passwd sockrpc >/dev/null; then
	worker=$(awk '{print $1}' "/proc/$daemon/task/$daemon/children")
	[[ -n $worker && $(ps -o user= -p "$worker") == sockrpc ]] ||
		fail "no sockrpc worker under socket activation"
	grep -q '^CapEff:.0000000000000000$' "/proc/$worker/status" || fail "the worker has capabilities"
	echo "ok: socket-activated: root parent $daemon, sockrpc worker $worker with CapEff 0"
fi

kill -HUP "$daemon"
wait_for 5 notified 2 '^READY=1' || fail "no READY=1 after SIGHUP"
grep -q -E '^RELOADING=1 MONOTONIC_USEC=[0-9]+' "$tmp/notify.log" ||
	fail "no RELOADING=1 with MONOTONIC_USEC after SIGHUP"
order=$(grep -o -E '^(READY|RELOADING)' "$tmp/notify.log" | tr '\n' ' ')
[[ $order == "READY RELOADING READY " ]] || fail "notify order: $order"
out=$(timeout 10 "$probe" "$act" hello) || fail "no session after SIGHUP: $out"
echo "ok: SIGHUP -> RELOADING=1 MONOTONIC_USEC=..., READY=1; still serving"

kill -TERM "$daemon"
wait_for 5 notified 1 '^STOPPING=1' || fail "no STOPPING=1 after SIGTERM"
status=0
timeout 5 tail --pid="$daemon" -f /dev/null || fail "daemon did not exit after SIGTERM"
wait "$daemon" || status=$?
[[ $status == 0 ]] || fail "daemon exited with status $status"
[[ -S $act ]] || fail "the daemon removed the socket it did not create"
echo "ok: SIGTERM -> STOPPING=1, exit 0"

grep -q '^<6>listening on' "$tmp/activated.log" || fail "no <6> priority prefix in the log"
# The daemon's lines follow systemd-socket-activate's own "Execing ..." line.
if [[ -n $(sed '1,/^Execing /d' "$tmp/activated.log" | grep -v '^<[0-7]>' || true) ]]; then
	fail "log lines without a priority prefix under JOURNAL_STREAM"
fi
echo "ok: journald priority prefixes"

# An inherited fd that is not a listening Unix stream socket is refused.
NOTIFY_SOCKET= timeout 5 systemd-socket-activate --datagram -l "$tmp/dgram.sock" -- \
	"$sockrpcd" >"$tmp/dgram.log" 2>&1 &
dpid=$!
pids+=("$dpid")
wait_for 5 test -S "$tmp/dgram.sock" || fail "datagram activation did not start"
python3 -c 'import socket, sys
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"x", sys.argv[1])' "$tmp/dgram.sock"
status=0
wait "$dpid" || status=$?
((status != 0 && status != 124)) || fail "daemon accepted a datagram socket (status $status)"
grep -q 'not a listening Unix stream socket' "$tmp/dgram.log" || fail "no clear error"
rm -f "$tmp/dgram.log"
echo "ok: a datagram socket from systemd is refused"

# --- 4. Without systemd: the daemon creates its socket, replacing only a stale one.
own=$tmp/run/own.sock
group=$(id -gn daemon 2>/dev/null || echo root)
# start_own LOG ARGS...: the daemon on $own, under umask 077, in the background.
start_own() {
	local log=$1
	shift
	(umask 077 && NOTIFY_SOCKET= exec "$sockrpcd" --socket "$own" "$@") >"$log" 2>&1 &
	own_pid=$!
	pids+=("$own_pid")
	wait_for 5 grep -qs 'listening on' "$log" || fail "daemon did not start on $own"
}
stop_own() {
	local status=0
	kill -TERM "$own_pid"
	wait "$own_pid" || status=$?
	[[ $status == 0 ]] || fail "daemon on $own exited with status $status"
}

# The missing parent is made 0755 whatever the umask; mode and group as asked.
start_own "$tmp/own.log" --socket-mode 0640 --socket-group "$group"
[[ $(stat -c %a "$tmp/run") == 755 ]] || fail "parent made $(stat -c %a "$tmp/run"), want 755"
[[ $(stat -c '%a %G' "$own") == "640 $group" ]] ||
	fail "socket is $(stat -c '%a %G' "$own"), want 640 $group"
out=$(timeout 10 "$probe" "$own" hello) || fail "no session on the created socket: $out"
echo "ok: parent 0755 under umask 077; --socket-mode 0640 --socket-group $group: served"

# A live daemon's socket is not taken over.
status=0
NOTIFY_SOCKET= timeout 5 "$sockrpcd" --socket "$own" >"$tmp/second.log" 2>&1 || status=$?
((status != 0 && status != 124)) || fail "a second daemon started on a live socket"
grep -q 'another daemon is listening' "$tmp/second.log" || fail "no clear error for a live socket"
timeout 10 "$probe" "$own" hello >/dev/null || fail "the first daemon lost its socket"
rm -f "$tmp/second.log"
echo "ok: a live daemon's socket is left alone"
stop_own

# A stale socket (its daemon gone) is replaced. One that dropped root may have been
# unable to remove its own socket from a root-owned directory; else make one.
if [[ ! -S $own ]]; then
	python3 -c 'import socket, sys
socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$own"
fi
start_own "$tmp/own2.log"
grep -q 'removed the stale socket' "$tmp/own2.log" || fail "the stale socket was not replaced"
timeout 10 "$probe" "$own" hello >/dev/null || fail "no session after replacing a stale socket"
stop_own
rm -f "$tmp/own2.log"
echo "ok: a stale socket is replaced"

# A path that is not a socket is never removed.
rm -f "$own"
echo precious >"$own"
status=0
NOTIFY_SOCKET= timeout 5 "$sockrpcd" --socket "$own" >"$tmp/file.log" 2>&1 || status=$?
((status != 0 && status != 124)) || fail "the daemon started over a regular file"
[[ $(cat "$own") == precious ]] || fail "the daemon replaced a regular file"
grep -q 'is not a socket' "$tmp/file.log" || fail "no clear error for a regular file"
rm -f "$tmp/file.log"
echo "ok: a regular file at the socket path is left alone"

# Bad --socket-mode values are refused.
for mode in 999 0x1ff 01777 -1; do
	status=0
	"$sockrpcd" --socket "$tmp/x.sock" --socket-mode "$mode" >/dev/null 2>&1 || status=$?
	[[ $status == 2 ]] || fail "--socket-mode $mode: status $status, want 2"
done
echo "ok: bad --socket-mode values refused"
echo "PASS"
