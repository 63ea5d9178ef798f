#!/bin/sh
# tools/fuzz/coverage.sh OUTDIR TARGET CORPUS_DIR... - the source coverage a corpus
# reaches: builds fuzz_TARGET with replay_main.c (no libFuzzer, no sanitizers) and clang's
# source-based coverage, runs it once on every input of the corpus directories (in a network
# namespace if it can), and prints llvm-cov's per-file report of the daemon's (or client's)
# sources; OUTDIR/TARGET.profdata and OUTDIR/cov_TARGET stay for `llvm-cov show`.
# Example: tools/fuzz/coverage.sh build-cov sessions build-fuzz/corpus-sessions
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: coverage.sh OUTDIR TARGET CORPUS_DIR...}
name=${2:?usage: coverage.sh OUTDIR TARGET CORPUS_DIR...}
shift 2
CC=${FUZZ_CC:-clang}
mkdir -p "$out/gen"
out=$(cd "$out" && pwd)
protoc-c --c_out="$out/gen" -I"$src/proto" "$src/proto/sockrpc.proto"
deps="libprotobuf-c libevent libsystemd"
target="$src/tools/fuzz/fuzz_$name.c"
spec=$(sed -n 's/.*fuzz-build: *//p' "$target" | head -1)
# shellcheck disable=SC2086
case $name in client*) default=client ;; *) default=daemon ;; esac
# shellcheck disable=SC2086
set -- "$@" -- ${spec:-$default}
# Split "$@" into corpus dirs (before --) and the spec (after).
dirs=""
while [ "$1" != "--" ]; do
	dirs="$dirs $1"
	shift
done
shift
kind=$1
shift
case $kind in
daemon) core=$(ls "$src"/daemon/*.c | grep -v '/main\.c$') inc="-I$src/daemon" ;;
client) core=$(ls "$src"/client/*.c) inc="-I$src/client" ;;
*) echo "coverage.sh: unknown fuzz-build kind $kind" >&2; exit 1 ;;
esac
# shellcheck disable=SC2086
"$CC" -g -O0 -D_GNU_SOURCE -DSOCKRPC_VERSION=\"cov\" -fprofile-instr-generate \
	-fcoverage-mapping -I"$out/gen" -I"$src/proto" -I"$src/include" $inc "$@" \
	$(pkg-config --cflags $deps) -o "$out/cov_$name" "$src/tools/fuzz/replay_main.c" \
	"$target" $core "$src/proto/frame.c" "$src/proto/enums.c" "$src/proto/payload.c" \
	"$out/gen/sockrpc.pb-c.c" $(pkg-config --libs $deps) -ldl -lpthread
rm -f "$out"/"$name"-*.profraw
run="env LLVM_PROFILE_FILE=$out/$name-%p.profraw $out/cov_$name"
if unshare --net true 2>/dev/null; then
	# shellcheck disable=SC2086
	unshare --net sh -c 'ip link set lo up; exec "$@"' sh $run $dirs >"$out/$name.log" 2>&1
else
	# shellcheck disable=SC2086
	$run $dirs >"$out/$name.log" 2>&1
fi
tail -1 "$out/$name.log"
llvm-profdata merge -sparse -o "$out/$name.profdata" "$out"/"$name"-*.profraw
# shellcheck disable=SC2086
llvm-cov report "$out/cov_$name" -instr-profile="$out/$name.profdata" $core
