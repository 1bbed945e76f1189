#!/bin/bash
# Apply the pinned .clang-format to the C sources, or report which files drift from it.
#
#   bash scripts/format-tree.sh            rewrite the files in place (run once by hand, then commit)
#                                          and turn check-tree.sh's drift check on (FORMAT_DEFAULT)
#   bash scripts/format-tree.sh --check    change nothing; list the files clang-format would change
#                                          and exit 1 if there is any (scripts/check-tree.sh uses it)
#   bash scripts/format-tree.sh --count    change nothing; print how many lines it would change
#
# The formatter is pinned to clang-format 14 (Debian 12): another major version lays some
# constructs out differently, which would show as drift on every machine that has it.
set -euo pipefail
ROOT=${FORMAT_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT"
CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
PINNED_MAJOR=14

mode=apply
case "${1:-}" in
"") ;;
--check) mode=check ;;
--count) mode=count ;;
*) echo "usage: format-tree.sh [--check|--count]" >&2; exit 2 ;;
esac

if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
	echo "format-tree: $CLANG_FORMAT not found (bash scripts/deps.sh installs it)" >&2
	exit 2
fi
major=$("$CLANG_FORMAT" --version | sed -n 's/.*clang-format version \([0-9]*\).*/\1/p')
if [ "$major" != "$PINNED_MAJOR" ]; then
	echo "format-tree: $CLANG_FORMAT is version $major; .clang-format is pinned to $PINNED_MAJOR" >&2
	exit 2
fi

# The tracked C sources the format covers (untracked scratch files are not ours to rewrite);
# outside a git checkout, every one below ROOT.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t files < <(git ls-files -- 'src/*.c' 'src/*.h' 'include/*.h' 'test/unit/*.c' \
		'test/unit/*.h' 'test/fuzz/*.c' 'bench/*.c')
else
	mapfile -t files < <(find src include test/unit test/fuzz -name '*.[ch]' 2>/dev/null
		find bench -maxdepth 1 -name '*.c' 2>/dev/null)
fi
[ "${#files[@]}" -gt 0 ] || { echo "format-tree: no sources found" >&2; exit 2; }

case "$mode" in
apply)
	"$CLANG_FORMAT" --style=file -i "${files[@]}"
	echo "format-tree: formatted ${#files[@]} files"
	# From now on every change keeps the format: check-tree.sh checks drift by default.
	if [ -f scripts/check-tree.sh ] && grep -q '^FORMAT_DEFAULT=off$' scripts/check-tree.sh; then
		sed -i 's/^FORMAT_DEFAULT=off$/FORMAT_DEFAULT=on/' scripts/check-tree.sh
		echo "format-tree: scripts/check-tree.sh now checks clang-format drift by default"
	fi
	;;
check)
	# One process for all files; each drifting file is named in its warnings.
	out=$("$CLANG_FORMAT" --style=file --dry-run -Werror "${files[@]}" 2>&1) && exit 0
	printf '%s\n' "$out" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' |
		sort -u | sed 's/$/: differs from .clang-format (bash scripts\/format-tree.sh rewrites it)/'
	exit 1
	;;
count)
	total=0
	for f in "${files[@]}"; do
		n=$("$CLANG_FORMAT" --style=file "$f" | diff -U0 "$f" - | grep -c '^-[^-]' || true)
		total=$((total + n))
	done
	echo "$total lines of ${#files[@]} files would change"
	;;
esac
