#!/bin/sh
# tools/fuzz/build.sh [OUTDIR] - builds every libFuzzer target tools/fuzz/fuzz_*.c into
# OUTDIR/fuzz_* (default OUTDIR: build-fuzz at the top of the tree) with clang and
# -fsanitize=fuzzer,address,undefined, and make_corpus. Exits 77 when clang or its fuzzer
# runtime is missing.
#
# A target says what it is built with in a comment line of its source:
#   fuzz-build: daemon [CFLAGS...]   the daemon's core sources (daemon/*.c but main.c)
#   fuzz-build: client [CFLAGS...]   the client library's sources (client/*.c)
# (default: client for fuzz_client*.c, daemon for the others), plus the wire code (proto/, the generated protobuf-c) in both cases.
# FUZZ_TARGETS="session policy" builds only those.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$src/build-fuzz}
CC=${FUZZ_CC:-clang}

if ! command -v "$CC" >/dev/null 2>&1; then
	echo "build.sh: $CC not found" >&2
	exit 77
fi
mkdir -p "$out/gen"
probe="$out/probe.c"
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }' >"$probe"
if ! "$CC" -fsanitize=fuzzer,address,undefined -o "$out/probe" "$probe" 2>/dev/null; then
	echo "build.sh: $CC has no libFuzzer runtime" >&2
	exit 77
fi
protoc-c --c_out="$out/gen" -I"$src/proto" "$src/proto/sockrpc.proto"
deps="libprotobuf-c libevent libsystemd openssl"
cflags="-g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE -DSOCKRPC_VERSION=\"fuzz\" \
	-I$out/gen -I$src/proto -I$src/include $(pkg-config --cflags $deps)"
# FUZZ_DAEMON_SRC: another copy of daemon/ (e.g. with known bugs patched, to fuzz past them).
dsrc=${FUZZ_DAEMON_SRC:-$src/daemon}
# The daemon's sources and its policy library (daemon/policy/).
daemon_core=$(ls "$dsrc"/*.c "$dsrc"/policy/*.c | grep -v '/main\.c$')
client_core=$(ls "$src"/client/*.c)
wire="$src/proto/frame.c $src/proto/enums.c $src/proto/payload.c $src/proto/decode.c
	$out/gen/sockrpc.pb-c.c"

for target in "$src"/tools/fuzz/fuzz_*.c; do
	name=$(basename "$target" .c)
	if [ -n "${FUZZ_TARGETS:-}" ]; then
		case " $FUZZ_TARGETS " in *" ${name#fuzz_} "*) ;; *) continue ;; esac
	fi
	spec=$(sed -n 's/.*fuzz-build: *//p' "$target" | head -1)
	case $name in fuzz_client*) default=client ;; *) default=daemon ;; esac
	set -- ${spec:-$default}
	kind=$1
	shift
	case $kind in
	daemon) core=$daemon_core inc="-I$dsrc -I$dsrc/policy" ;;
	client) core=$client_core inc="-I$src/client" ;;
	*) echo "build.sh: $name: unknown fuzz-build kind '$kind'" >&2; exit 1 ;;
	esac
	# shellcheck disable=SC2086
	"$CC" $cflags $inc "$@" -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o "$out/$name" "$target" $core $wire \
		$(pkg-config --libs $deps) -lpthread
	echo "$out/$name"
done
# shellcheck disable=SC2086
"$CC" $cflags -o "$out/make_corpus" "$src/tools/fuzz/make_corpus.c" "$src/proto/frame.c" \
	"$src/proto/payload.c" \
	"$out/gen/sockrpc.pb-c.c" $(pkg-config --libs libprotobuf-c)
