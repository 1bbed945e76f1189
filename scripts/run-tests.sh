#!/bin/bash
# shellcheck disable=SC2317  # summary() runs from the EXIT trap
# README command 2: install dependencies, build with warnings-as-errors, assertions and
# ASan+UBSan into ./build, run the C unit tests (make check) and the integration tests
# (pytest, Debian's python3), and the cloud stand-ins' own tests (test/standins), after the tree's
# habits check (scripts/check-tree.sh). Exits non-zero
# if anything fails; prints a summary at the end.
#
#   bash scripts/run-tests.sh                # everything
#   PYTEST_ARGS="-k tls" bash scripts/run-tests.sh   # a subset of the integration tests
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
LOGDIR="$ROOT/build/test-logs"
PY=/usr/bin/python3       # Debian's python3 with python3-pytest/python3-psycopg, not pyenv's
start=$(date +%s)
status_deps=skipped status_tree=skipped status_build=skipped status_unit=skipped status_integ=skipped status_standins=skipped status_fuzz=skipped
unit_passed=0 unit_failed=0
integ_passed=0 integ_failed=0 integ_skipped=0 integ_errors=0
standins_passed=0 standins_failed=0 standins_skipped=0 standins_errors=0
fuzz_passed=0 fuzz_failed=0
rc=0

summary() {
	local end elapsed
	end=$(date +%s)
	elapsed=$((end - start))
	echo
	echo "================ run-tests summary (${elapsed}s) ================"
	echo "deps:         $status_deps"
	echo "tree checks:  $status_tree"
	echo "build:        $status_build"
	echo "unit tests:   $status_unit ($unit_passed passed, $unit_failed failed)"
	echo "integration:  $status_integ ($integ_passed passed, $integ_failed failed, $integ_skipped skipped, $integ_errors errors)"
	echo "stand-ins:    $status_standins ($standins_passed passed, $standins_failed failed, $standins_skipped skipped, $standins_errors errors)"
	echo "fuzz targets: $status_fuzz ($fuzz_passed passed, $fuzz_failed failed)"
	echo "total: $((unit_passed + fuzz_passed + integ_passed + standins_passed)) passed," \
		"$((unit_failed + fuzz_failed + integ_failed + integ_errors + standins_failed + standins_errors)) failed," \
		"$((integ_skipped + standins_skipped)) skipped"
}
trap summary EXIT

step() { echo; echo "=== $* ==="; }

# junit_counts FILE -> "passed failed skipped errors" of a pytest --junitxml report
junit_counts() {
	"$PY" - "$1" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else list(r)
t = f = s = e = 0
for su in suites:
    t += int(su.get("tests", 0)); f += int(su.get("failures", 0))
    s += int(su.get("skipped", 0)); e += int(su.get("errors", 0))
print(t - f - s - e, f, s, e)
PYEOF
}

# pytest_status RC -> the summary word for a pytest exit code
pytest_status() {
	case "$1" in
	0) echo ok ;;
	5) echo "FAILED (no tests collected)" ;;
	*) echo FAILED ;;
	esac
}

step "dependencies"
if bash scripts/deps.sh; then status_deps=ok; else status_deps=FAILED; exit 1; fi

step "tree checks (scripts/check-tree.sh: banned functions, lengths, format, cppcheck)"
if bash scripts/check-tree.sh; then status_tree=ok; else status_tree=FAILED; rc=1; fi

step "build (./build: --enable-werror --enable-asserts --enable-sanitizers)"
# build/ is the test build and only ever has these flags. automake rebuilds nothing when only the
# flags change, so a build/ configured otherwise (by hand) starts over instead of being
# reconfigured; the demo builds in build-demo/. test/integration/test_build.py checks the result.
TEST_FLAGS="--enable-werror --enable-asserts --enable-sanitizers"
if [ -x build/config.status ] &&
	[ "$(build/config.status --config | tr -d "'")" != "$TEST_FLAGS" ]; then
	echo "build/ was configured with other flags ($(build/config.status --config)): starting it over"
	rm -rf build
fi
# shellcheck disable=SC2086
if ./autogen.sh && mkdir -p build && cd build &&
	../configure $TEST_FLAGS &&
	make -j2; then
	status_build=ok
else
	status_build=FAILED
	exit 1
fi
cd "$ROOT" || exit 1
# build-plain/: the same sources with no sanitizer and no flags, for the tests that measure what
# the process hands back to the system (AddressSanitizer keeps freed memory in its quarantine).
if mkdir -p build-plain && cd build-plain &&
	{ [ -f Makefile ] || ../configure > configure.log 2>&1; } &&
	make -j2 tokenbouncer > make.log 2>&1; then
	export TB_PLAIN_BIN="$ROOT/build-plain/tokenbouncer"
else
	status_build="FAILED (build-plain: see build-plain/*.log)"
	exit 1
fi
cd "$ROOT/build" || exit 1
mkdir -p "$LOGDIR"

step "C unit tests (make check)"
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
if make -j2 check; then status_unit=ok; else status_unit=FAILED; rc=1; fi
# each unit test prints "NAME: N passed, N failed" into its automake .log
while IFS= read -r f; do
	line=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$f" | tail -1)
	[ -n "$line" ] || continue
	unit_passed=$((unit_passed + $(echo "$line" | awk '{print $1}')))
	unit_failed=$((unit_failed + $(echo "$line" | awk '{print $3}')))
done < <(find test/unit -name '*.log' 2>/dev/null)
if [ "$status_unit" = FAILED ] && [ -f test-suite.log ]; then cat test-suite.log; fi
cd "$ROOT" || exit 1

step "fuzz targets (libFuzzer, ${FUZZ_SECONDS:-15}s each)"
if bash test/fuzz/run.sh "${FUZZ_SECONDS:-15}" > "$LOGDIR/fuzz.log" 2>&1; then
	status_fuzz=ok
else
	status_fuzz=FAILED
	rc=1
fi
cat "$LOGDIR/fuzz.log"
fuzz_passed=$(grep -c "^stat::number_of_executed_units" "$LOGDIR/fuzz.log" || true)
fuzz_failed=$(grep -c "^FAILED: " "$LOGDIR/fuzz.log" || true)

step "integration tests (pytest)"
junit="$LOGDIR/integration.xml"
# shellcheck disable=SC2086
"$PY" -m pytest -v -p no:cacheprovider --junitxml="$junit" ${PYTEST_ARGS:-} test/integration
prc=$?
if [ -f "$junit" ]; then
	read -r integ_passed integ_failed integ_skipped integ_errors < <(junit_counts "$junit")
fi
status_integ=$(pytest_status "$prc")
[ "$prc" -eq 0 ] || rc=1

step "stand-in tests (pytest test/standins)"
junit="$LOGDIR/standins.xml"
"$PY" -m pytest -q -p no:cacheprovider --junitxml="$junit" test/standins
prc=$?
if [ -f "$junit" ]; then
	read -r standins_passed standins_failed standins_skipped standins_errors < <(junit_counts "$junit")
fi
status_standins=$(pytest_status "$prc")
[ "$prc" -eq 0 ] || rc=1
exit $rc
