#!/bin/bash
# Build the libFuzzer targets with clang (ASan + UBSan) against the project's
# sources and run each for a bounded time on its seed corpus.
#   bash test/fuzz/run.sh [SECONDS_PER_TARGET]     (default 20)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-20}
OUT=$ROOT/build/fuzz
mkdir -p "$OUT"
BUILD=$ROOT/build
# What libtb.a is made of, from the configured build (Makefile.am's print-fuzz-inputs): every
# module, with the libraries the binary links, so a target never misses a new source file.
inputs=$(make -s -C "$BUILD" print-fuzz-inputs)
SOURCES=$(sed -n 's/^SOURCES=//p' <<<"$inputs")
DEP_CFLAGS=$(sed -n 's/^CFLAGS=//p' <<<"$inputs")
LIBS=$(sed -n 's/^LIBS=//p' <<<"$inputs")
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -I$ROOT/include -I$BUILD $DEP_CFLAGS"
# The modules are compiled once with coverage instrumentation (fuzzer-no-link) into one archive;
# each target then pulls from it only what it uses.
OBJ=$OUT/obj
rm -rf "$OBJ" && mkdir -p "$OBJ"
# shellcheck disable=SC2086
printf '%s\n' $SOURCES | xargs -P "$(nproc)" -I{} sh -c \
	'o="$1/$(echo "$2" | tr / _).o"; clang $3 -fsanitize=fuzzer-no-link $4 -c "$5/$2" -o "$o"' \
	_ "$OBJ" {} "$CFLAGS" "$SAN" "$ROOT" || { echo "FAILED: the modules do not build for the fuzzers"; exit 1; }
rm -f "$OUT/libtb-fuzz.a"
ar rcs "$OUT/libtb-fuzz.a" "$OBJ"/*.o
TARGETS=$(cd "$ROOT/test/fuzz" && ls fuzz_*.c | sed 's/\.c$//')
status=0
for t in $TARGETS; do
	# shellcheck disable=SC2086
	if ! clang $CFLAGS -fsanitize=fuzzer $SAN -o "$OUT/$t" "$ROOT/test/fuzz/$t.c" "$OUT/libtb-fuzz.a" $LIBS; then
		echo "FAILED: $t does not build"
		status=1
		continue
	fi
	corpus="$OUT/corpus-$t"
	mkdir -p "$corpus"
	cp -n "$ROOT/test/fuzz/seeds/$t"/* "$corpus/" 2>/dev/null || true
	echo "== $t: ${SECS}s"
	# Memory is bounded on purpose: no single allocation over 64 MB, the process under 512 MB.
	# AddressSanitizer's quarantine (256 MB by default) is what made the config target peak at
	# ~740 MB; with 16 MB of it the target stays near 65 MB, so a real leak or a huge allocation
	# now fails the run instead of hiding in that slack.
	if ! (cd "$OUT" && ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16" \
		"./$t" -max_total_time="$SECS" -max_len=16384 -timeout=10 -rss_limit_mb=512 -malloc_limit_mb=64 \
		-print_final_stats=1 "$corpus" > "$OUT/$t.log" 2>&1); then
		echo "FAILED: $t (see $OUT/$t.log)"; tail -30 "$OUT/$t.log"; status=1
	else
		grep -E "stat::number_of_executed_units" "$OUT/$t.log" || true
	fi
done
exit $status
