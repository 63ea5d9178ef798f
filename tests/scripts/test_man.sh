#!/usr/bin/env bash
# test_man.sh BUILD_DIR - the manual pages under docs/man/ lint clean (mandoc -T lint -W
# warning: any warning or error fails), render to text, and cannot drift from the code:
# every option (and numeric default) `sockrpcd --help` and `sockrpc --help` print appears
# in the page of that program, every command of `sockrpc` in sockrpc(1), and every function
# libsockrpc exports (client/libsockrpc.map) in libsockrpc(3).
set -euo pipefail

build=${1:?usage: test_man.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
man=$src/docs/man
fails=0
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

command -v mandoc >/dev/null || { echo "FAIL: mandoc missing (tools/install-deps installs it)"; exit 1; }
pages=(sockrpc.1 libsockrpc.3 sockrpc-policy.5 sockrpcd.8)

# --- 1. Lint and render each page; the text of each is kept for the checks below.
declare -A text
for page in "${pages[@]}"; do
	[[ -f $man/$page ]] || { fail "no page docs/man/$page"; continue; }
	out=$(mandoc -T lint -W warning "$man/$page" 2>&1) || true
	[[ -z $out ]] || fail "mandoc -T lint $page:"$'\n'"$out"
	# What `man -l` shows, as plain text: mandoc's ASCII output without overstrikes.
	text[$page]=$(mandoc -T ascii "$man/$page" | sed 's/.\x08//g') ||
		fail "mandoc -T ascii $page"
	[[ -n ${text[$page]} ]] || fail "$page renders empty"
	echo "ok: $page lints clean and renders ($(wc -l <<<"${text[$page]}") lines)"
done

# in PAGE WORD: WORD appears in the rendered page, not as part of a longer option or word.
in_page() {
	grep -qE -- "(^|[^A-Za-z0-9-])$(sed 's/[][\.*^$|+?(){}]/\\&/g' <<<"$2")([^A-Za-z0-9-]|$)" \
		<<<"${text[$1]}"
}

# --- 2. Options and defaults from each program's --help.
check_help() { # check_help PAGE PROGRAM
	local page=$1 prog=$2 help opts n=0
	[[ -x $prog ]] || { fail "$prog not built"; return; }
	help=$("$prog" --help) || { fail "$prog --help"; return; }
	opts=$(grep -oE -- '(^|[[:space:],])-{1,2}[A-Za-z0-9][A-Za-z0-9-]*' <<<"$help" |
		sed 's/^[[:space:],]*//' | sort -u)
	[[ -n $opts ]] || { fail "no options found in $prog --help"; return; }
	for o in $opts; do
		n=$((n + 1))
		in_page "$page" "$o" || fail "$page does not mention $o (printed by $(basename "$prog") --help)"
	done
	for d in $(grep -oE '\(default [0-9]+\)' <<<"$help" | grep -oE '[0-9]+' | sort -u); do
		in_page "$page" "$d" || fail "$page does not give the default $d of $(basename "$prog") --help"
	done
	echo "ok: $page names the $n options of $(basename "$prog") --help"
}
check_help sockrpcd.8 "$build/daemon/sockrpcd"
check_help sockrpc.1 "$build/client/cli/sockrpc"

# --- 3. The commands of sockrpc, from its usage lines ("sockrpc [options] udp send ...").
if [[ -x $build/client/cli/sockrpc ]]; then
	# Each command heads an item of the command list, so a line of the page starts with it.
	while read -r cmd; do
		grep -qE "^ +$cmd( |$)" <<<"${text[sockrpc.1]}" ||
			fail "sockrpc.1 does not describe the command '$cmd'"
	done < <("$build/client/cli/sockrpc" --help |
		sed -n 's/^\(usage:\)\{0,1\} *sockrpc \[options\] \([a-z]*\( send\| listen\)\{0,1\}\).*/\2/p')
fi

# --- 4. Every exported function in libsockrpc(3).
n=0
for f in $(sed -n 's/^[[:space:]]*\(sr_[a-z_]*\);/\1/p' "$src/client/libsockrpc.map"); do
	n=$((n + 1))
	in_page libsockrpc.3 "$f" || fail "libsockrpc.3 does not document $f"
done
[[ $n -gt 0 ]] || fail "no functions found in client/libsockrpc.map"
echo "ok: libsockrpc.3 names the $n exported functions"

if [[ $fails -gt 0 ]]; then
	echo "$fails failure(s)"
	exit 1
fi
echo "PASS"
