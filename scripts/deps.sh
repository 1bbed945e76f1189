#!/bin/bash
# The one list of Debian 12 packages that building and testing tokenbouncer needs,
# shared by scripts/run-demo.sh and scripts/run-tests.sh.
#
#   bash scripts/deps.sh          install whatever of the list is missing (idempotent)
#   bash scripts/deps.sh --list   print the list and exit
#
# apt is skipped entirely when everything is installed already.
#
# The JDBC driver (with a JDK to run a one-file Java client) is the "another real driver" of the
# transaction-pooling tests. node-pg was the first choice, but Debian's node-pg pulls in Debian's
# nodejs (node-acorn depends on nodejs:any), which cannot coexist with a NodeSource nodejs.
set -euo pipefail

TB_DEPS=(
	build-essential autoconf automake libtool pkg-config
	libevent-dev libssl-dev libcurl4-openssl-dev libpq-dev libinih-dev libjansson-dev libexpat1-dev
	postgresql-15 postgresql-client-15
	python3 python3-pytest python3-psycopg python3-cryptography
	openssl pgbouncer
	clang libclang-rt-14-dev
	prometheus-pgbouncer-exporter python3-prometheus-client
	default-jdk-headless libpostgresql-jdbc-java
	python3-psycopg-pool python3-asyncpg python3-sqlalchemy python3-pg8000
	libdbd-pg-perl ruby-pg
)

if [ "${1:-}" = "--list" ]; then
	printf '%s\n' "${TB_DEPS[@]}"
	exit 0
fi

missing=()
for pkg in "${TB_DEPS[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case "$status" in
	*"install ok installed"*) ;;
	*) missing+=("$pkg") ;;
	esac
done

# node-postgres and postgres.js for the driver tests, pinned by test/drivers/node/package-lock.json.
node_modules() {
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
	echo "deps: all ${#TB_DEPS[@]} packages already installed"
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
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
node_modules
echo "deps: done"
