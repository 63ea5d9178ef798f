# Sourced by the shell tests: what they share.

# scratch_dir: sets $dir to a new directory (mode 0755: other uids reach sockets in it)
# and $pids to an empty list; at exit every process in $pids is killed and waited for,
# and $dir is removed.
scratch_dir() {
	dir=$(mktemp -d /tmp/sockrpc-test.XXXXXX)
	chmod 0755 "$dir"
	pids=()
	trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
		wait 2>/dev/null || true
		rm -rf "$dir"' EXIT
}

# audit_has FILE PATTERN [N]: true once FILE has N (default 1) lines matching the grep
# PATTERN. The daemon writes audit lines within 100 ms of its decisions (daemon/audit.c),
# so this waits up to 3 s before it says no.
audit_has() {
	for _ in $(seq 60); do
		[ "$(grep -c -e "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ] && return 0
		sleep 0.05
	done
	return 1
}

# wait_listening LOG [SOCKET]: true once the daemon's LOG says it listens (on SOCKET, when
# given); waits up to 5 s.
wait_listening() {
	for _ in $(seq 100); do
		grep -qs "listening on ${2:-}" "$1" && return 0
		sleep 0.05
	done
	return 1
}
