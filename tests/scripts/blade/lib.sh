# Shared by the Blade binding's tests (test_blade*.sh): finds the Blade the module was
# built against, assembles a second installation of it whose dist/ holds
# sockrpc_socket.so (the stock one stays untouched, for the differential runs), and
# starts a daemon. Sourced with $build set; sets $tmp, $stock_blade, $sr_blade, $sock.

. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

blade_module=$build/bindings/blade/sockrpc_socket.so
if [ ! -e "$blade_module" ] || [ ! -e "$build/bindings/blade/blade_dir" ]; then
	if [ -e "$build/bindings/blade/skip-reason" ]; then
		cat "$build/bindings/blade/skip-reason"
		exit 77
	fi
	echo "the Blade binding is not built: configure with -DSOCKRPC_BLADE_DIR (tools/build-blade)"
	# CI builds it (tools/run-tests): a missing module there is a failure, not a skip.
	[ "${CI:-}" = true ] && exit 1
	exit 77
fi
if ! unshare -n true 2>/dev/null; then
	echo "cannot create a network namespace here"
	[ "${CI:-}" = true ] && exit 1
	exit 77
fi
blade_home=$(cat "$build/bindings/blade/blade_dir")/blade
stock_blade=$blade_home/blade

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# The sandboxed programs' Blade: its own executable (Blade loads <its directory>/dist),
# the same libblade.so, libs/ and packages, and the module in dist/.
mkdir -p "$tmp/blade/dist"
cp "$stock_blade" "$tmp/blade/blade"
ln -s "$blade_home/libblade.so" "$blade_home/libs" "$tmp/blade/"
for so in "$blade_home"/dist/*.so; do ln -s "$so" "$tmp/blade/dist/"; done
cp "$blade_module" "$tmp/blade/dist/"
sr_blade=$tmp/blade/blade

# start_daemon NAME [sockrpcd options...]: a daemon on $tmp/NAME.sock, audit in $tmp/NAME.audit.
start_daemon() {
	local name=$1
	shift
	"$build/daemon/sockrpcd" --socket "$tmp/$name.sock" --audit "$tmp/$name.audit" "$@" \
		2>"$tmp/$name.log" &
	pids+=($!)
	for _ in $(seq 100); do
		[ -S "$tmp/$name.sock" ] && return 0
		sleep 0.05
	done
	echo "the daemon did not start:"
	cat "$tmp/$name.log"
	exit 1
}

# sandboxed SOCKET PROGRAM ARGS...: the sockrpc Blade with no network of its own.
sandboxed() {
	local sock=$1
	shift
	SOCKRPC_SOCKET=$sock timeout 30 unshare -n -- "$sr_blade" "$@"
}
