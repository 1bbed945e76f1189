#!/bin/bash
# Build the libFuzzer targets with clang (ASan + UBSan) against the project's
# sources and run each for a bounded time on its seed corpus.
#   bash test/fuzz/run.sh [SECONDS_PER_TARGET]     (default 20)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-20}
OUT=$ROOT/build/fuzz
mkdir -p "$OUT"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -I$ROOT/include -I$ROOT/build -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
LIBS="$(pkg-config --libs libevent openssl libcurl inih jansson expat) -lm"
CORE="$ROOT/src/core/util.c $ROOT/src/core/log.c"
declare -A SRCS=(
	[fuzz_wire]="$ROOT/src/pg/proto.c $ROOT/src/pool/varcache.c"
	[fuzz_config]="$ROOT/src/core/params.c $ROOT/src/core/config.c $ROOT/src/core/connstr.c $ROOT/src/core/cfgsrc.c $ROOT/src/core/strmap.c $ROOT/src/core/credential_doc.c $ROOT/src/core/hostlist.c"
	[fuzz_auth]="$ROOT/src/pg/userlist.c $ROOT/src/pg/hba.c $ROOT/src/pg/scram.c $ROOT/src/pg/md5auth.c"
	[fuzz_tokens]="$ROOT/src/token/aws_parse.c $ROOT/src/token/azure_parse.c $ROOT/src/token/azure_jwt.c $ROOT/src/token/jwt.c $ROOT/src/token/gcp_parse.c $ROOT/src/token/cloudsql_parse.c $ROOT/src/token/alloydb_parse.c $ROOT/src/token/http.c $ROOT/src/token/curl_api.c"
	[fuzz_flow]="$ROOT/src/pg/flow.c"
	[fuzz_respq]="$ROOT/src/pool/respq.c"
)
status=0
for t in fuzz_wire fuzz_config fuzz_auth fuzz_tokens fuzz_flow fuzz_respq; do
	# shellcheck disable=SC2086
	if ! clang $CFLAGS -o "$OUT/$t" "$ROOT/test/fuzz/$t.c" ${SRCS[$t]} $CORE $LIBS; then
		echo "FAILED: $t does not build (a source file missing from SRCS above?)"
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
