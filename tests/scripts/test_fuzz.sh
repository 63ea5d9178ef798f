#!/usr/bin/env bash
# test_fuzz.sh - builds every libFuzzer target tools/fuzz/fuzz_*.c (tools/fuzz/build.sh:
# the daemon's or the client's sources under ASan/UBSan), replays every input of
# tools/fuzz/corpus and tools/fuzz/regressions through each, then fuzzes each target from
# its seed corpus (make_corpus, plus tools/fuzz/corpus/TARGET) for FUZZ_SECONDS (default
# 60) shared among the targets. Usage: test_fuzz.sh BUILD_DIR. Exits 0 on success, 1 on a
# finding (the input is kept in BUILD_DIR/fuzz/artifacts/), 77 if clang's fuzzer runtime
# is missing. Runs in a fresh network namespace when it can (root or user namespaces), so
# nothing a target connects to leaves the machine (the targets keep to the loopback anyway).
set -Euo pipefail

build=${1:?usage: test_fuzz.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$build/fuzz
seconds=${FUZZ_SECONDS:-60}

mkdir -p "$out"
"$src/tools/fuzz/build.sh" "$out" >"$out.build.log" 2>&1
rc=$?
if [[ $rc == 77 ]]; then
	cat "$out.build.log" >&2
	exit 77
elif [[ $rc != 0 ]]; then
	cat "$out.build.log" >&2
	echo "test_fuzz: FAIL: the fuzz targets do not build" >&2
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

targets=()
for t in "$out"/fuzz_*; do
	[[ -x $t && $t != *.log ]] && targets+=("$(basename "$t")")
done
fail=0

# The replay: every input through every target, once (files as arguments: libFuzzer
# runs each and writes nothing).
mapfile -t inputs < <(find "$src/tools/fuzz/corpus" "$src/tools/fuzz/regressions" -type f | sort)
for t in "${targets[@]}"; do
	if ! "${isolate[@]}" "$out/$t" "${inputs[@]}" >"$out/replay-$t.log" 2>&1; then
		echo "test_fuzz: FAIL: $t: a corpus or regression input is a finding:" >&2
		grep -a '^Running:' "$out/replay-$t.log" | tail -1 >&2
		grep -aE 'FINDING|ERROR:|SUMMARY|^    #[0-9] ' "$out/replay-$t.log" | head -10 >&2
		fail=1
	fi
done

rm -rf "$out/seeds" "$out/artifacts"
mkdir -p "$out/seeds" "$out/artifacts"
"$out/make_corpus" "$out/seeds"
per=$((seconds / ${#targets[@]}))
((per > 0)) || per=1
for t in "${targets[@]}"; do
	name=${t#fuzz_}
	mkdir -p "$out/corpus-$name" "$out/seeds/$name"
	seeds=("$out/seeds/$name")
	[[ -d $src/tools/fuzz/corpus/$name ]] && seeds+=("$src/tools/fuzz/corpus/$name")
	"${isolate[@]}" "$out/$t" -max_total_time="$per" -max_len=8192 -close_fd_mask=2 \
		-artifact_prefix="$out/artifacts/$name-" -print_final_stats=1 \
		"$out/corpus-$name" "${seeds[@]}" >"$out/fuzz-$name.log" 2>&1
	rc=$?
	echo "test_fuzz: $t: $(grep -E '^stat::number_of_executed_units' "$out/fuzz-$name.log" |
		awk '{print $2}') executions" >&2
	if [[ $rc != 0 ]]; then
		grep -E 'ERROR|SUMMARY|^    #[0-9] ' "$out/fuzz-$name.log" | head -12 >&2
		# -close_fd_mask hid the target's own message: replay the input to show it.
		for a in "$out"/artifacts/"$name"-*; do
			[[ -f $a ]] && "${isolate[@]}" "$out/$t" "$a" 2>&1 | grep -E 'FINDING' >&2
		done
		echo "test_fuzz: FAIL: $t: finding after fuzzing; input kept in $out/artifacts/" >&2
		fail=1
	fi
done
exit $fail
