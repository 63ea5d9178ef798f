#!/usr/bin/env bash
# test_cli.sh - the `sockrpc` command against a real sockrpcd on a temporary socket:
# TCP relays both ways over 127.0.0.1 and ::1 (10 MB of random bytes, sha256-checked),
# UDP datagrams, resolve, and the documented exit codes with their messages.
# Usage: test_cli.sh BUILD_DIR. Exits 0 on success, 1 on failure, 77 if not built.
# Loopback only; every command is bounded by `timeout`, the whole run takes seconds.
set -Eeuo pipefail

build=${1:?usage: test_cli.sh BUILD_DIR}
daemon=$build/daemon/sockrpcd
cli=$build/client/cli/sockrpc
if [[ ! -x $daemon || ! -x $cli ]]; then
	echo "test_cli: $daemon or $cli not built" >&2
	exit 77
fi

tmp=$(mktemp -d /tmp/sockrpc-cli.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "test_cli: FAIL at line $LINENO" >&2; exit 1' ERR
trap 'exit 1' INT TERM

fail() {
	echo "test_cli: FAIL: $*" >&2
	exit 1
}

# Bounds every command: a hang is a failure (timeout exits 124), never a stuck run.
T="timeout 20"

# As root the daemon drops to user 'sockrpc' if it exists; keep our own uid so that
# the embedded default policy (the daemon's uid may do everything) lets us in.
user_opt=()
if [[ $(id -u) -eq 0 ]]; then
	user_opt=(--user "$(id -un)")
fi

# start_daemon SOCKET [daemon options...]: runs it in the background until it answers.
start_daemon() {
	local sock=$1
	shift
	"$daemon" --socket "$sock" "${user_opt[@]}" "$@" >>"$tmp/daemon.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		if [[ -S $sock ]] && $T "$cli" --socket "$sock" status >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	cat "$tmp/daemon.log" >&2
	fail "sockrpcd did not start on $sock"
}

# wait_port ERRFILE: the port of the first stderr line "listening on HOST:PORT".
wait_port() {
	local line
	for _ in $(seq 100); do
		line=$(head -n 1 "$1" 2>/dev/null || true)
		if [[ $line == "listening on "* ]]; then
			echo "${line##*:}"
			return 0
		fi
		sleep 0.05
	done
	cat "$1" >&2
	fail "no 'listening on' line in $1"
}

# expect_exit WANT MESSAGE_PATTERN COMMAND...: runs it (stderr to $tmp/err), checks
# the exit code and that stderr matches the extended regex.
expect_exit() {
	local want=$1 pattern=$2 rc=0
	shift 2
	"$@" 2>"$tmp/err" || rc=$?
	if [[ $rc -ne $want ]]; then
		cat "$tmp/err" >&2
		fail "'$*' exited $rc, expected $want"
	fi
	if ! grep -Eq -- "$pattern" "$tmp/err"; then
		cat "$tmp/err" >&2
		fail "'$*': stderr does not match '$pattern'"
	fi
}

same() {
	[[ $(sha256sum <"$1") == $(sha256sum <"$2") ]] || fail "$3: $1 and $2 differ"
}

sock=$tmp/s.sock
export SOCKRPC_SOCKET=$sock
start_daemon "$sock"

# --- status, help, version, usage -------------------------------------------------
$T "$cli" status >"$tmp/status"
grep -Eq '^session: [0-9]+$' "$tmp/status" || fail "status: $(cat "$tmp/status")"
grep -Eq '^daemon: sockrpcd [0-9]+\.[0-9]+\.[0-9]+$' "$tmp/status" || fail "status: $(cat "$tmp/status")"
$T "$cli" --help | grep -q '3  denied by' || fail "--help does not list the exit codes"
[[ $($T "$cli" --version) == "sockrpc "* ]] || fail "--version"
expect_exit 1 'unknown command' $T "$cli" frobnicate
expect_exit 1 'bad port' $T "$cli" connect 127.0.0.1 70000
expect_exit 1 'only for listen' $T "$cli" --keep connect 127.0.0.1 1

# --- TCP: both directions at once, 10 MB one way, 3 MB plus odd bytes the other -----
head -c 10000000 /dev/urandom >"$tmp/big"
{ head -c 3000000 /dev/urandom; printf '\0\r\n\377no newline at the end'; } >"$tmp/small"

# tcp_round HOST: listen on HOST port 0, connect to it, check both files arrived.
tcp_round() {
	local host=$1 port lpid rc=0
	rm -f "$tmp/l.err" "$tmp/l.out" "$tmp/c.out"
	$T "$cli" listen "$host" 0 -v <"$tmp/small" >"$tmp/l.out" 2>"$tmp/l.err" &
	lpid=$!
	pids+=($lpid)
	port=$(wait_port "$tmp/l.err")
	$T "$cli" connect "$host" "$port" <"$tmp/big" >"$tmp/c.out" ||
		fail "connect $host $port exited $?"
	wait "$lpid" || rc=$?
	[[ $rc -eq 0 ]] || { cat "$tmp/l.err" >&2; fail "listen $host exited $rc"; }
	grep -q '^connection from ' "$tmp/l.err" || fail "listen -v: no 'connection from'"
	same "$tmp/big" "$tmp/l.out" "connect -> listen over $host"
	same "$tmp/small" "$tmp/c.out" "listen -> connect over $host"
}
tcp_round 127.0.0.1
tcp_round ::1
grep -q '^listening on \[::1\]:' "$tmp/l.err" || fail "listen -v on ::1: $(head -n 1 "$tmp/l.err")"

# --- UDP: one binary datagram, then one per line ------------------------------------
rm -f "$tmp/u.err"
$T "$cli" udp listen 127.0.0.1 0 -v --count 3 >"$tmp/u.out" 2>"$tmp/u.err" &
upid=$!
pids+=($upid)
port=$(wait_port "$tmp/u.err")
printf 'dgram\0with a NUL' | $T "$cli" udp send 127.0.0.1 "$port"
printf 'line one\nline two\n' | $T "$cli" udp send --lines 127.0.0.1 "$port"
wait "$upid" || fail "udp listen exited $?"
printf 'dgram\0with a NULline one\nline two\n' >"$tmp/u.want"
same "$tmp/u.want" "$tmp/u.out" "udp payloads"
[[ $(grep -c '^datagram from 127\.0\.0\.1:[0-9]*, ' "$tmp/u.err") -eq 3 ]] ||
	fail "udp listen -v: $(cat "$tmp/u.err")"

# --- resolve ------------------------------------------------------------------------
$T "$cli" resolve localhost >"$tmp/r.out"
grep -qx '127.0.0.1' "$tmp/r.out" || fail "resolve localhost: $(cat "$tmp/r.out")"
$T "$cli" -4 resolve localhost | grep -qx '127.0.0.1' || fail "resolve -4 localhost"

# --- exit codes ---------------------------------------------------------------------
# 4: refused by the OS, with the library's message.
expect_exit 4 '^sockrpc: connect to 127\.0\.0\.1:1 failed: Connection refused$' \
	$T "$cli" connect 127.0.0.1 1 </dev/null

# 2: no daemon at the socket.
expect_exit 2 '^sockrpc: cannot reach sockrpcd at .*/missing\.sock' \
	$T "$cli" --socket "$tmp/missing.sock" connect 127.0.0.1 1 </dev/null

# 5: a peer that never sends while stdin stays open (a FIFO we hold open and never
# write), with --timeout as the receive timeout. The silent peer is a sockrpc listen
# whose stdin is the same FIFO.
mkfifo "$tmp/fifo"
exec 7<>"$tmp/fifo"
rm -f "$tmp/l.err"
$T "$cli" listen 127.0.0.1 0 -v <&7 >/dev/null 2>"$tmp/l.err" &
pids+=($!)
port=$(wait_port "$tmp/l.err")
start=$(date +%s%N)
expect_exit 5 'timed out' $T "$cli" --timeout 300 connect 127.0.0.1 "$port" <&7
elapsed=$((($(date +%s%N) - start) / 1000000))
((elapsed >= 250 && elapsed < 5000)) || fail "receive timeout of 300 ms took $elapsed ms"

# 5: an accept that waits longer than --timeout.
expect_exit 5 'accept timed out' $T "$cli" --timeout 300 listen 127.0.0.1 0 </dev/null
exec 7>&-

# 3: denied by policy, from a second daemon whose policy forbids one port.
printf 'deny * connect tcp 127.0.0.1 port 9 reason "closed for the test"\nallow uid=%s *\n' \
	"$(id -u)" >"$tmp/deny.policy"
start_daemon "$tmp/deny.sock" --policy "$tmp/deny.policy"
expect_exit 3 'denied by policy.*closed for the test' \
	$T "$cli" --socket "$tmp/deny.sock" connect 127.0.0.1 9 </dev/null

echo "test_cli: ok"
