#!/bin/sh
# tools/fuzz/build.sh [OUTDIR] - builds the libFuzzer target fuzz_session (the daemon's
# sources with -fsanitize=fuzzer,address,undefined) and make_corpus into OUTDIR
# (default: build-fuzz at the top of the tree), with clang. Exits 77 when clang or its
# fuzzer runtime is missing.
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
deps="libprotobuf-c libevent libsystemd"
# READ_CHUNK: a session's reads get 4 KiB of room rather than 65 KiB-1 MiB. A fresh
# large buffer per input (an mmap and its page faults under ASan; measured at 256 KiB)
# took over half of the run time; smaller reads also split frames across reads more often.
cflags="-g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE -DSOCKRPC_VERSION=\"fuzz\" -DREAD_CHUNK=4096 \
	-I$out/gen -I$src/proto -I${FUZZ_DAEMON_SRC:-$src/daemon} -I${FUZZ_DAEMON_SRC:-$src/daemon}/policy \
	$(pkg-config --cflags $deps)"
# FUZZ_DAEMON_SRC: another copy of daemon/ (e.g. with known bugs patched, to fuzz past them).
dsrc=${FUZZ_DAEMON_SRC:-$src/daemon}
# The daemon's sources and its policy library (daemon/policy/).
core=$(ls "$dsrc"/*.c "$dsrc"/policy/*.c | grep -v '/main\.c$')
# shellcheck disable=SC2086
"$CC" $cflags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-o "$out/fuzz_session" "$src/tools/fuzz/fuzz_session.c" $core \
	"$src/proto/frame.c" "$src/proto/enums.c" "$src/proto/payload.c" "$src/proto/decode.c" \
	"$out/gen/sockrpc.pb-c.c" \
	$(pkg-config --libs $deps)
# shellcheck disable=SC2086
"$CC" $cflags -o "$out/make_corpus" "$src/tools/fuzz/make_corpus.c" "$src/proto/frame.c" \
	"$src/proto/payload.c" \
	"$out/gen/sockrpc.pb-c.c" $(pkg-config --libs libprotobuf-c)
# fuzz_client_reply: the client library's reply path (see fuzz_client_reply.c).
# shellcheck disable=SC2086
"$CC" $cflags -I"$src/include" -I"$src/client" -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -o "$out/fuzz_client_reply" \
	"$src/tools/fuzz/fuzz_client_reply.c" $(ls "$src"/client/*.c) "$src/proto/frame.c" \
	"$src/proto/enums.c" "$src/proto/payload.c" "$out/gen/sockrpc.pb-c.c" \
	$(pkg-config --libs libprotobuf-c) -lpthread
echo "$out/fuzz_session"
