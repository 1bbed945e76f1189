#!/bin/bash
# The Debian 12 packages tokenbouncer needs, in two lists: what building and running the demo
# needs (scripts/run-demo.sh), and what the tests need on top (scripts/run-tests.sh).
#
#   bash scripts/deps.sh                 install what the tests need (both lists; idempotent)
#   bash scripts/deps.sh --demo          install only what the demo needs
#   bash scripts/deps.sh --container     also what the container image test needs (podman, debootstrap)
#   bash scripts/deps.sh --list [--demo] print a list and exit
#
# apt is skipped entirely when everything is installed already. Installing leaves no service
# running or enabled: for the duration of the install a policy-rc.d refuses every service start a
# package's post-install script asks for (invoke-rc.d and deb-systemd-invoke honour it), and on a
# machine run by systemd the units the install enabled are disabled again and any it started are
# stopped. Nothing listens afterwards that did not listen before.
#
# Keep one package per line: several people add packages at the same time.
#
# The JDBC driver (with a JDK to run a one-file Java client) is the "another real driver" of the
# transaction-pooling tests. node-pg was the first choice, but Debian's node-pg pulls in Debian's
# nodejs (node-acorn depends on nodejs:any), which cannot coexist with a NodeSource nodejs.
set -euo pipefail

# Building tokenbouncer and running the demo (PostgreSQL 15, the Python stand-ins, openssl).
DEMO_DEPS=(
	build-essential
	autoconf
	automake
	libtool
	pkg-config
	libevent-dev
	libssl-dev
	libcurl4-openssl-dev
	libpq-dev
	libinih-dev
	libjansson-dev
	libexpat1-dev
	libicu-dev
	libsystemd-dev
	postgresql-15
	postgresql-client-15
	python3
	openssl
)

# The tests, on top of DEMO_DEPS.
TEST_DEPS=(
	python3-pytest
	python3-psycopg
	python3-cryptography
	pgbouncer
	clang
	libclang-rt-14-dev
	prometheus-pgbouncer-exporter
	python3-prometheus-client
	default-jdk-headless
	libpostgresql-jdbc-java
	python3-psycopg-pool
	python3-asyncpg
	python3-sqlalchemy
	python3-pg8000
	libdbd-pg-perl
	ruby-pg
	systemd
	man-db
	python3-yaml
	python3-kubernetes
	clang-format-14
	cppcheck
	universal-ctags
)

# The container image test (TB_CONTAINER_TEST=1 test/integration/test_container.py), on request:
# bash scripts/deps.sh --container.
CONTAINER_DEPS=(
	podman
	debootstrap
	uidmap
)

# kubectl validates deploy/kubernetes offline; Debian's kubernetes-client provides one unless a
# kubectl is installed already (another package's kubectl conflicts with it).
command -v kubectl >/dev/null 2>&1 || TEST_DEPS+=(kubernetes-client)

which=tests
list=0
for arg in "$@"; do
	case "$arg" in
	--demo) which=demo ;;
	--tests) which=tests ;;
	--container) which=container ;;
	--list) list=1 ;;
	*) echo "usage: deps.sh [--demo|--tests|--container] [--list]" >&2; exit 2 ;;
	esac
done
WANT=("${DEMO_DEPS[@]}")
[ "$which" = demo ] || WANT+=("${TEST_DEPS[@]}")
[ "$which" != container ] || WANT+=("${CONTAINER_DEPS[@]}")

if [ "$list" = 1 ]; then
	printf '%s\n' "${WANT[@]}"
	exit 0
fi

missing=()
for pkg in "${WANT[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing+=("$pkg") ;;
	esac
done

# node-postgres and postgres.js for the driver tests, pinned by test/drivers/node/package-lock.json.
node_modules() {
	[ "$which" = demo ] && return 0
	local dir
	dir=$(cd "$(dirname "$0")/.." && pwd)/test/drivers/node
	if [ -d "$dir/node_modules/pg" ] && [ -d "$dir/node_modules/postgres" ]; then
		return 0
	fi
	if ! command -v npm >/dev/null 2>&1; then
		echo "deps: npm not found: the node driver tests need it (nodejs with npm)" >&2
		return 1
	fi
	echo "deps: npm ci in $dir"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps: all ${#WANT[@]} packages ($which) already installed"
	node_modules
	exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "deps: missing packages and not root (no sudo): ${missing[*]}" >&2
		exit 1
	fi
fi

# --- no service starts during the install -------------------------------------------------
POLICY=/usr/sbin/policy-rc.d
POLICY_OURS=0
under_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
unit_states() { # "unit enabled|active" lines for every service, socket, timer and path unit
	command -v systemctl >/dev/null 2>&1 || return 0
	# enabling is symlinks, which a later boot would act on: look even when systemd is not running
	systemctl list-unit-files --type=service,socket,timer,path --state=enabled --no-legend 2>/dev/null |
		awk '{print $1, "enabled"}'
	under_systemd || return 0
	systemctl list-units --type=service,socket,timer,path --state=active --no-legend --plain 2>/dev/null |
		awk '{print $1, "active"}'
}
restore_policy() {
	if [ "$POLICY_OURS" = 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi
}
trap restore_policy EXIT
if [ ! -e "$POLICY" ]; then
	# exit 101: "action forbidden by policy"; the package installs, its service does not start
	printf '#!/bin/sh\n# written by tokenbouncer scripts/deps.sh for the duration of an install\nexit 101\n' |
		"${SUDO[@]}" tee "$POLICY" >/dev/null
	"${SUDO[@]}" chmod 755 "$POLICY"
	POLICY_OURS=1
fi
before=$(unit_states | sort)

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null

# --- undo what the install enabled or started anyway --------------------------------------
if command -v systemctl >/dev/null 2>&1; then
	after=$(unit_states | sort)
	while read -r unit state; do
		[ -n "$unit" ] || continue
		case "$state" in
		enabled) echo "deps: disabling $unit (enabled by the install)"; "${SUDO[@]}" systemctl disable --quiet "$unit" || true ;;
		active) echo "deps: stopping $unit (started by the install)"; "${SUDO[@]}" systemctl stop "$unit" || true ;;
		esac
	done < <(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after"))
fi
node_modules
echo "deps: done"
