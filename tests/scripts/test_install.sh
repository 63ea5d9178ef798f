#!/usr/bin/env bash
# test_install.sh BUILD_DIR - `cmake --install` into a scratch DESTDIR puts every part in
# its place, and programs built against the installed libsockrpc, one through pkg-config
# (shared and static) and one through find_package(sockrpc) (both imported targets),
# link and run: sr_strerror(), sr_constants(), and a session with the installed daemon.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

build=${1:?usage: test_install.sh BUILD_DIR}
build=$(cd "$build" && pwd)
# A sanitized build installs sanitized libraries: programs using them need the same runtime.
san=""
if grep -q '^SOCKRPC_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
	san="-fsanitize=address,undefined"
fi
src=$(cd "$(dirname "$0")/../.." && pwd)

for tool in cmake pkg-config cc; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool missing"; exit 1; }
done

tmp=$(mktemp -d /tmp/sockrpc-install.XXXXXX)
daemon=
cleanup() {
	[[ -n $daemon ]] && kill "$daemon" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
chmod 0755 "$tmp"
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log; do
		[[ -f $f ]] && { echo "--- $f"; tail -n 40 "$f"; }
	done
	exit 1
}

# --- 1. Install into DESTDIR; find the prefix and library directory the build chose.
DESTDIR=$tmp/dest cmake --install "$build" >"$tmp/install.log" 2>&1 || fail "cmake --install"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
root=$tmp/dest$prefix
pc=$(find "$tmp/dest" -name sockrpc.pc -path '*/pkgconfig/*' | head -n 1)
[[ -n $pc ]] || fail "no sockrpc.pc installed"
libdir=$(dirname "$(dirname "$pc")")

expect() { # expect PATH...: each exists under the DESTDIR
	for f in "$@"; do
		[[ -e $tmp/dest$f || -e $root/$f ]] || fail "not installed: $f"
	done
}
expect sbin/sockrpcd include/sockrpc.h
for f in libsockrpc.a libsockrpc.so "libsockrpc.so.0" cmake/sockrpc/sockrpcConfig.cmake \
	cmake/sockrpc/sockrpcConfigVersion.cmake cmake/sockrpc/sockrpcTargets.cmake; do
	[[ -e $libdir/$f ]] || fail "not installed: $libdir/$f"
done
units=$(find "$tmp/dest" -name sockrpcd.service -path '*/systemd/system/*')
[[ -n $units ]] || fail "no sockrpcd.service installed"
[[ -f $(dirname "$units")/sockrpcd.socket ]] || fail "no sockrpcd.socket beside the service"
grep -q "^ExecStart=$prefix/sbin/sockrpcd " "$units" || fail "ExecStart does not name $prefix/sbin"
[[ -n $(find "$tmp/dest" -path '*/sysusers.d/sockrpcd.conf') ]] || fail "no sysusers.d snippet"
[[ -n $(find "$tmp/dest" -path '*/tmpfiles.d/sockrpcd.conf') ]] || fail "no tmpfiles.d snippet"
if [[ -f $src/docs/example.policy ]]; then
	expect share/doc/sockrpc/example.policy
fi
if [[ -x $build/client/cli/sockrpc ]]; then
	expect bin/sockrpc
fi
# The manual pages, in man1/3/5/8 under the MANDIR the build chose (GNUInstallDirs).
mandir=$(sed -n 's/^CMAKE_INSTALL_MANDIR:PATH=//p' "$build/CMakeCache.txt")
for page in man1/sockrpc.1 man3/libsockrpc.3 man5/sockrpc-policy.5 man8/sockrpcd.8; do
	expect "${mandir:-share/man}/$page"
done
# The installed static library stands alone: it carries the wire code itself.
syms=$(nm "$libdir/libsockrpc.a" 2>/dev/null) || fail "nm libsockrpc.a"
grep -q ' [TR] sockrpc__' <<<"$syms" || fail "libsockrpc.a lacks the protobuf code"
echo "ok: installed under $root (libraries in $libdir)"

# --- 2. The program: no daemon needed for the first part; a session if one is given.
cat >"$tmp/prog.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include "sockrpc.h"

int
main(int argc, char **argv)
{
	size_t n = 0;
	const sr_constant *c = sr_constants(&n);
	int found = 0;
	sr_error err;
	sr_client *cl;

	for (size_t i = 0; i < n; i++)
		if (strcmp(c[i].name, "SOCK_STREAM") == 0 && c[i].present)
			found = 1;
	if (n == 0 || !found || strlen(sr_strerror(SR_EDENIED)) == 0)
		return 1;
	printf("%zu constants; SR_EDENIED: %s\n", n, sr_strerror(SR_EDENIED));
	if (argc < 2)
		return 0;
	cl = sr_client_open(argv[1], &err);
	if (cl == NULL) {
		printf("no session: %s\n", err.message);
		return 1;
	}
	printf("session %llu\n", sr_client_session_id(cl));
	sr_client_close(cl);
	return 0;
}
EOF

# The installed daemon, for a real session (as root it may drop to sockrpc; its default
# policy still serves the uid that started it).
sock=$tmp/sockrpc.sock
NOTIFY_SOCKET= "$root/sbin/sockrpcd" --socket "$sock" >"$tmp/daemon.log" 2>&1 &
daemon=$!
wait_listening "$tmp/daemon.log" || fail "the installed daemon did not start"

# --- 3. pkg-config, shared and static.
export PKG_CONFIG_PATH=$(dirname "$pc")
pkg-config --exists sockrpc || fail "pkg-config does not find sockrpc"
[[ $(pkg-config --modversion sockrpc) == "$(sed -n 's/^#define SR_VERSION "\(.*\)"/\1/p' \
	"$root/include/sockrpc.h")" ]] || fail "pkg-config version differs from SR_VERSION"
[[ $(pkg-config --print-requires-private sockrpc) == libprotobuf-c* ]] ||
	fail "Requires.private lacks libprotobuf-c"
# shellcheck disable=SC2046
cc $san -o "$tmp/prog_pc" "$tmp/prog.c" $(pkg-config --cflags --libs sockrpc) \
	>"$tmp/cc.log" 2>&1 || fail "pkg-config shared link"
out=$(LD_LIBRARY_PATH=$libdir timeout 10 "$tmp/prog_pc" "$sock") || fail "prog_pc: $out"
deps=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/prog_pc")
grep -qF "$libdir/libsockrpc.so" <<<"$deps" || fail "prog_pc did not use the installed .so"
echo "ok: pkg-config, shared: $(echo "$out" | tr '\n' ' ')"
# shellcheck disable=SC2046
cc $san -o "$tmp/prog_pc_static" "$tmp/prog.c" $(pkg-config --cflags sockrpc) \
	"$libdir/libsockrpc.a" $(pkg-config --static --libs sockrpc | sed 's/-lsockrpc//') \
	>"$tmp/cc.log" 2>&1 || fail "pkg-config static link"
deps=$(ldd "$tmp/prog_pc_static")
! grep -q libsockrpc <<<"$deps" || fail "prog_pc_static uses the .so"
out=$(timeout 10 "$tmp/prog_pc_static" "$sock") || fail "prog_pc_static: $out"
echo "ok: pkg-config --static: $(echo "$out" | tr '\n' ' ')"

# --- 4. find_package(sockrpc): both imported targets.
mkdir -p "$tmp/consumer"
cp "$tmp/prog.c" "$tmp/consumer/"
cat >"$tmp/consumer/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(sockrpc 0.1 REQUIRED)
add_executable(prog_shared prog.c)
target_link_libraries(prog_shared PRIVATE sockrpc::sockrpc)
add_executable(prog_static prog.c)
target_link_libraries(prog_static PRIVATE sockrpc::sockrpc_static)
EOF
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$root" \
	-DCMAKE_C_FLAGS="$san" \
	>"$tmp/consumer.log" 2>&1 || fail "find_package(sockrpc) configure"
cmake --build "$tmp/consumer/build" >>"$tmp/consumer.log" 2>&1 || fail "find_package build"
out=$(timeout 10 "$tmp/consumer/build/prog_shared" "$sock") || fail "prog_shared: $out"
deps=$(ldd "$tmp/consumer/build/prog_shared")
grep -qF "$libdir/libsockrpc.so" <<<"$deps" ||
	fail "prog_shared did not use the installed .so"
echo "ok: find_package, sockrpc::sockrpc: $(echo "$out" | tr '\n' ' ')"
out=$(timeout 10 "$tmp/consumer/build/prog_static" "$sock") || fail "prog_static: $out"
deps=$(ldd "$tmp/consumer/build/prog_static")
! grep -q libsockrpc <<<"$deps" || fail "prog_static uses the .so"
echo "ok: find_package, sockrpc::sockrpc_static: $(echo "$out" | tr '\n' ' ')"

# --- 5. The Python binding (bindings/python), where it was built: the package lands in
# Python's site-packages for the prefix and the installed copy talks to the daemon.
if [[ -d $build/bindings/python/sockrpc ]]; then
	pydir=$(dirname "$(find "$tmp/dest" -path '*-packages/sockrpc/__init__.py' | head -n 1)")
	[[ $pydir != . ]] || fail "the sockrpc Python package is not installed"
	[[ $pydir == */lib/python3*/*-packages/sockrpc ]] || fail "not in site-packages: $pydir"
	pyexe=$(sed -n 's/^Python3_EXECUTABLE:[A-Z]*=//p' "$build/CMakeCache.txt")
	preload=()
	[[ -z $san ]] || preload=(LD_PRELOAD="$(cc -print-file-name=libasan.so) $(cc \
		-print-file-name=libubsan.so)" ASAN_OPTIONS=detect_leaks=0)
	out=$(cd "$tmp" && env "${preload[@]}" PYTHONPATH="$(dirname "$pydir")" SOCKRPC_SOCKET="$sock" \
		timeout 10 "${pyexe:-python3}" -c \
		'import sockrpc; print(sockrpc.__file__, sockrpc.session_id())') ||
		fail "the installed sockrpc package: $out"
	[[ $out == "$pydir/__init__.py "* ]] || fail "imported another sockrpc: $out"
	echo "ok: python: $out"
fi

kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
daemon=
[[ $rc == 0 ]] || fail "the installed daemon exited with status $rc"
echo "PASS"
