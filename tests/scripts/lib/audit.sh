# Sourced by the shell tests that read a daemon's audit log.
#
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
