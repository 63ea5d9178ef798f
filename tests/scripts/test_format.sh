#!/usr/bin/env bash
# test_format.sh BUILD_DIR - every C file the project tracks is formatted as .clang-format
# says (clang-format --dry-run --Werror). Fix with:
#   git ls-files '*.c' '*.h' | xargs clang-format -i
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
command -v clang-format >/dev/null ||
	{ echo "FAIL: clang-format missing (tools/install-deps installs it)"; exit 1; }
cd "$src"
mapfile -t files < <(git ls-files '*.c' '*.h')
[ ${#files[@]} -gt 0 ] || { echo "FAIL: no C files found under $src"; exit 1; }
echo "$(clang-format --version): ${#files[@]} files"
clang-format --dry-run --Werror "${files[@]}"
