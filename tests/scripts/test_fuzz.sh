#!/usr/bin/env bash
# test_fuzz.sh - builds the libFuzzer target tools/fuzz/fuzz_session (the daemon's frame
# decoder and dispatcher under ASan/UBSan), replays every regression input in
# tools/fuzz/regressions/, then fuzzes from the generated seed corpus for FUZZ_SECONDS
# (default 60). Usage: test_fuzz.sh BUILD_DIR. Exits 0 on success, 1 on a crash (the
# input is kept in BUILD_DIR/fuzz/artifacts/), 77 if clang's fuzzer runtime is missing.
# Runs in a fresh network namespace when it can (root or user namespaces), so nothing
# the fuzzer connects to leaves the machine; its policy keeps it on the loopback anyway.
set -Euo pipefail

build=${1:?usage: test_fuzz.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$build/fuzz
seconds=${FUZZ_SECONDS:-60}

"$src/tools/fuzz/build.sh" "$out" >"$out.build.log" 2>&1
rc=$?
if [[ $rc == 77 ]]; then
	cat "$out.build.log" >&2
	exit 77
elif [[ $rc != 0 ]]; then
	cat "$out.build.log" >&2
	echo "test_fuzz: FAIL: the fuzz target does not build" >&2
	exit 1
fi

# In a network namespace with only an up loopback, if we may make one.
isolate=()
if unshare --net true 2>/dev/null; then
	isolate=(unshare --net sh -c 'ip link set lo up 2>/dev/null || true; exec "$@"' sh)
elif unshare --user --map-root-user --net true 2>/dev/null; then
	isolate=(unshare --user --map-root-user --net sh -c \
		'ip link set lo up 2>/dev/null || true; exec "$@"' sh)
fi

fail=0
for input in "$src"/tools/fuzz/regressions/*; do
	[[ -f $input ]] || continue
	if ! "${isolate[@]}" "$out/fuzz_session" -close_fd_mask=2 "$input" >"$out/replay.log" 2>&1; then
		echo "test_fuzz: FAIL: regression input $(basename "$input") crashes:" >&2
		grep -E 'ERROR|SUMMARY|^    #[0-9] ' "$out/replay.log" | head -8 >&2
		fail=1
	fi
done

rm -rf "$out/corpus" "$out/artifacts"
mkdir -p "$out/corpus" "$out/artifacts"
"$out/make_corpus" "$out/corpus"
"${isolate[@]}" "$out/fuzz_session" -max_total_time="$seconds" -close_fd_mask=2 \
	-artifact_prefix="$out/artifacts/" -print_final_stats=1 "$out/corpus" \
	>"$out/fuzz.log" 2>&1
rc=$?
grep -E '^stat::number_of_executed_units|^Done' "$out/fuzz.log" >&2 || true
if [[ $rc != 0 ]]; then
	grep -E 'ERROR|SUMMARY|^    #[0-9] |fuzz_session:' "$out/fuzz.log" | head -20 >&2
	echo "test_fuzz: FAIL: crash after fuzzing; input kept in $out/artifacts/" >&2
	fail=1
fi
exit $fail
