#!/bin/bash
# shellcheck disable=SC2317  # cleanup() runs from the EXIT trap
# README command 1: try tokenbouncer in front of a throwaway PostgreSQL 15.
#
#   sudo bash scripts/run-demo.sh
#
# Installs what is missing (Debian 12), builds into ./build-demo, starts PostgreSQL 15 in a temporary
# directory (as the `postgres` system user when run as root; scram-sha-256; 127.0.0.1 on a free
# port), creates role and database `demo`, writes a tokenbouncer config and userlist (SCRAM
# secret), prints the psql command to connect through the pooler, and runs tokenbouncer in the
# foreground. Ctrl-C (or any exit) stops everything it started and removes the temporary files.
#
# It also shows Microsoft Entra ID token login, offline: the Entra token endpoint stand-in
# (test/standins/entra.py) and PgFront (test/standins/pgfront.py, an "Azure Database for
# PostgreSQL" login front: TLS, checks the Entra token, then relays to the demo PostgreSQL) run on
# loopback; alias `orders` logs in to PgFront with auth=entra and a client-secret credential.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_BIN=/usr/lib/postgresql/15/bin
PY=/usr/bin/python3
STANDINS="$ROOT/test/standins"
WORK=""
PG_PID=""
TB_PID=""
ENTRA_PID=""
FRONT_PID=""
CSQL_PID=""

log() { echo "[demo] $*" >&2; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [ -n "$TB_PID" ] && kill -0 "$TB_PID" 2>/dev/null; then
		log "stopping tokenbouncer (pid $TB_PID)"
		kill -QUIT "$TB_PID" 2>/dev/null || true     # immediate (SIGTERM waits for clients)
		for _ in $(seq 1 50); do kill -0 "$TB_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$TB_PID" 2>/dev/null || true
	fi
	for pid in $CSQL_PID $FRONT_PID $ENTRA_PID; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
		log "stopping PostgreSQL (pid $PG_PID)"
		kill -INT "$PG_PID" 2>/dev/null || true          # fast shutdown
		for _ in $(seq 1 300); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$PG_PID" 2>/dev/null || true
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		log "removing $WORK"
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------- dependencies and build
# The demo builds a plain (optimised, unsanitized) binary in its own directory, build-demo/;
# the tests build theirs in build/. A directory is never reconfigured with other flags, so no
# object compiled one way is ever linked into the other binary.
bash "$ROOT/scripts/deps.sh" --demo
cd "$ROOT"
if [ ! -f build-demo/config.status ]; then
	./autogen.sh
	mkdir -p build-demo
	(cd build-demo && ../configure)
fi
make -C build-demo -j2 tokenbouncer
TB="$ROOT/build-demo/tokenbouncer"

# ---------------------------------------------------------------- helpers
free_port() {
	# a loopback port outside the ephemeral range (32768-60999) that nothing listens on
	"$PY" - <<'PYEOF'
import random, socket
for _ in range(500):
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    raise SystemExit("no free port")
PYEOF
}

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
	else
		"$@"
	fi
}

wait_port() { # port seconds
	local _
	for _ in $(seq 1 $(($2 * 10))); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}

# A stand-in prints one JSON line ({"port": N, ...}) once it listens: wait for it, print N.
standin_port() { # file pid seconds
	local _ line
	for _ in $(seq 1 $(($3 * 10))); do
		line=$(head -n1 "$1" 2>/dev/null || true)
		if [ -n "$line" ]; then
			"$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["port"])' "$line"
			return 0
		fi
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- PostgreSQL
WORK=$(mktemp -d /tmp/tokenbouncer-demo.XXXXXX)
chmod 755 "$WORK"
PGDATA="$WORK/pgdata"
SUPERPW=$(openssl rand -hex 16)
DEMO_PW=$(openssl rand -hex 12)
PG_PORT=$(free_port)
TB_PORT=$(free_port)
while [ "$TB_PORT" = "$PG_PORT" ]; do TB_PORT=$(free_port); done

mkdir -m 700 "$PGDATA"
printf '%s\n' "$SUPERPW" > "$WORK/pwfile"
chmod 600 "$WORK/pwfile"
if [ "$(id -u)" -eq 0 ]; then
	if ! id postgres >/dev/null 2>&1; then
		log "the postgres system user is missing (is postgresql-15 installed?)"
		exit 1
	fi
	chown postgres:postgres "$PGDATA" "$WORK/pwfile"
fi
log "initdb in $PGDATA"
as_pg "$PG_BIN/initdb" -D "$PGDATA" --auth=scram-sha-256 --username=postgres \
	--pwfile="$WORK/pwfile" -E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; exit 1; }
rm -f "$WORK/pwfile"
cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PGDATA'
password_encryption = 'scram-sha-256'
fsync = off
EOF
# exec all the way down, so $! is the postmaster itself; setsid: Ctrl-C in the terminal
# reaches tokenbouncer, not PostgreSQL (cleanup stops it).
if [ "$(id -u)" -eq 0 ]; then
	(exec setpriv --reuid=postgres --regid=postgres --init-groups -- \
		setsid "$PG_BIN/postgres" -D "$PGDATA" >"$WORK/postgres.log" 2>&1 </dev/null) &
else
	(exec setsid "$PG_BIN/postgres" -D "$PGDATA" >"$WORK/postgres.log" 2>&1 </dev/null) &
fi
PG_PID=$!
log "PostgreSQL starting on 127.0.0.1:$PG_PORT (pid $PG_PID)"
if ! wait_port "$PG_PORT" 30; then
	log "PostgreSQL did not start:"; cat "$WORK/postgres.log" >&2; exit 1
fi
# the real postmaster PID, in case setsid had to fork
if [ -r "$PGDATA/postmaster.pid" ]; then
	PG_PID=$(head -n1 "$PGDATA/postmaster.pid")
fi
for _ in $(seq 1 100); do
	"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
	sleep 0.1
done

psql_super() {
	PGPASSWORD="$SUPERPW" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
		-U postgres "$@"
}
psql_super -d postgres -c "CREATE ROLE demo LOGIN PASSWORD '$DEMO_PW'" \
	-c "CREATE DATABASE demo OWNER demo"
# PostgreSQL computed the SCRAM secret of demo's password: the pooler's userlist uses the same
SECRET=$(psql_super -d postgres -At -c "select rolpassword from pg_authid where rolname = 'demo'")
case "$SECRET" in SCRAM-SHA-256\$*) ;; *) log "unexpected secret format"; exit 1 ;; esac

# ---------------------------------------------------------------- Entra stand-ins
# The stand-in's default tenant and application id; a fresh client secret.
read -r ENTRA_TENANT ENTRA_CLIENT < <("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import entra
print(entra.DEFAULT_TENANT, entra.DEFAULT_CLIENT_ID)' "$STANDINS")
ENTRA_SECRET="demo~$(openssl rand -hex 16)"
printf '%s\n' "$ENTRA_SECRET" > "$WORK/entra-client-secret"
chmod 600 "$WORK/entra-client-secret"
(exec setsid "$PY" "$STANDINS/entra.py" --port "$(free_port)" --tenant "$ENTRA_TENANT" --client-id "$ENTRA_CLIENT" \
	--client-secret "$ENTRA_SECRET" >"$WORK/entra.out" 2>"$WORK/entra.log" </dev/null) &
ENTRA_PID=$!
ENTRA_PORT=$(standin_port "$WORK/entra.out" "$ENTRA_PID" 20) ||
	{ log "the Entra stand-in did not start:"; cat "$WORK/entra.log" >&2; exit 1; }
log "Entra token endpoint stand-in on http://127.0.0.1:$ENTRA_PORT (pid $ENTRA_PID)"

# PgFront needs a TLS certificate that tokenbouncer verifies (verify-full): a throwaway CA and a
# certificate for localhost / 127.0.0.1.
(
	cd "$WORK"
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout front-ca.key \
		-out front-ca.crt -days 2 -subj "/CN=tokenbouncer demo CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout front.key \
		-out front.csr -subj "/CN=localhost"
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n%s\n' \
		extendedKeyUsage=serverAuth subjectAltName=DNS:localhost,IP:127.0.0.1 > front.ext
	openssl x509 -req -in front.csr -CA front-ca.crt -CAkey front-ca.key -CAcreateserial -out front.crt \
		-days 2 -sha256 -extfile front.ext
	chmod 600 front.key front-ca.key
) >"$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log" >&2; exit 1; }
# Tokens for the application are accepted as the role orders-app; PgFront then logs in to the
# demo PostgreSQL as demo.
(exec setsid "$PY" "$STANDINS/pgfront.py" --port "$(free_port)" --control-port -1 --mode azure \
	--cert "$WORK/front.crt" --key "$WORK/front.key" --upstream-port "$PG_PORT" \
	--upstream-user demo --upstream-password "$DEMO_PW" --upstream-database demo \
	--role-map "$ENTRA_CLIENT=orders-app" >"$WORK/pgfront.out" 2>"$WORK/pgfront.log" </dev/null) &
FRONT_PID=$!
FRONT_PORT=$(standin_port "$WORK/pgfront.out" "$FRONT_PID" 20) ||
	{ log "PgFront did not start:"; cat "$WORK/pgfront.log" >&2; exit 1; }
log "PgFront (Azure-style token login, TLS) on 127.0.0.1:$FRONT_PORT (pid $FRONT_PID)"

# Cloud SQL connector mode, offline: the Google token endpoint, the Cloud SQL Admin API and the
# instance's server-side proxy (TLS 1.3, ephemeral client certificates, automatic IAM login),
# relaying to the demo PostgreSQL as demo. tokenbouncer's credential is a service-account key.
(exec setsid "$PY" "$STANDINS/cloudsql.py" --proxy-port "$(free_port)" --key-file "$WORK/gcp-sa-key.json" \
	--upstream-port "$PG_PORT" --upstream-user demo --upstream-password "$DEMO_PW" --upstream-database demo \
	>"$WORK/cloudsql.out" 2>"$WORK/cloudsql.log" </dev/null) &
CSQL_PID=$!
CSQL_PORT=$(standin_port "$WORK/cloudsql.out" "$CSQL_PID" 30) ||
	{ log "the Cloud SQL stand-ins did not start:"; cat "$WORK/cloudsql.log" >&2; exit 1; }
read -r CSQL_ADMIN CSQL_INSTANCE < <("$PY" -c 'import json, sys; d = json.loads(open(sys.argv[1]).readline())
print(d["sqladmin"], d["instance"])' "$WORK/cloudsql.out")
log "Cloud SQL Admin API stand-in on $CSQL_ADMIN, instance $CSQL_INSTANCE's proxy on 127.0.0.1:$CSQL_PORT (pid $CSQL_PID)"

# ---------------------------------------------------------------- tokenbouncer
printf '"demo" "%s"\n' "$SECRET" > "$WORK/userlist.txt"
chmod 600 "$WORK/userlist.txt"
cat >"$WORK/tokenbouncer.ini" <<EOF
[tokenbouncer]
listen_addr = 127.0.0.1
listen_port = $TB_PORT
auth_type = scram-sha-256
auth_file = $WORK/userlist.txt
pool_mode = session
default_pool_size = 5
pidfile = $WORK/tokenbouncer.pid
server_tls_ca_file = $WORK/front-ca.crt

[credential.app]
type = azure-client-secret
tenant_id = $ENTRA_TENANT
client_id = $ENTRA_CLIENT
client_secret_file = $WORK/entra-client-secret
authority_host = http://127.0.0.1:$ENTRA_PORT

[credential.gcp]
type = gcp-service-account
key_file = $WORK/gcp-sa-key.json

[databases]
demo = host=127.0.0.1 port=$PG_PORT dbname=demo user=demo password=$DEMO_PW
orders = host=127.0.0.1 port=$FRONT_PORT dbname=demo user=orders-app auth=entra credential=app sslmode=verify-full
billing = instance=$CSQL_INSTANCE port=$CSQL_PORT sqladmin_api_endpoint=$CSQL_ADMIN dbname=demo auth=cloudsql enable_iam_auth=1 credential=gcp
EOF
chmod 600 "$WORK/tokenbouncer.ini"
"$TB" --check "$WORK/tokenbouncer.ini"

"$TB" "$WORK/tokenbouncer.ini" </dev/null &
TB_PID=$!
if ! wait_port "$TB_PORT" 20; then
	log "tokenbouncer did not start listening on $TB_PORT"
	exit 1
fi

# One query through the Entra alias: tokenbouncer fetches a token from the stand-in and logs in
# to PgFront with it.
ORDERS_URL="postgresql://demo:$DEMO_PW@127.0.0.1:$TB_PORT/orders"
if ! ENTRA_CHECK=$(PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 "$ORDERS_URL" \
	-c "select 'connected to database ' || current_database() || ' through PgFront, logged in with an Entra token'" 2>&1); then
	log "the query through the Entra alias failed: $ENTRA_CHECK"
	exit 1
fi
log "$ENTRA_CHECK"
BILLING_URL="postgresql://demo:$DEMO_PW@127.0.0.1:$TB_PORT/billing"
if ! CSQL_CHECK=$(PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 "$BILLING_URL" \
	-c "select 'connected to database ' || current_database() || ' through the Cloud SQL proxy, with an ephemeral certificate and automatic IAM login'" 2>&1); then
	log "the query through the Cloud SQL connector alias failed: $CSQL_CHECK"
	exit 1
fi
log "$CSQL_CHECK"

cat >&2 <<EOF

==========================================================================
 tokenbouncer is listening on 127.0.0.1:$TB_PORT, in front of PostgreSQL 15
 on 127.0.0.1:$PG_PORT. Connect through the pooler with:

   $PG_BIN/psql "postgresql://demo:$DEMO_PW@127.0.0.1:$TB_PORT/demo"

 and through alias orders, which logs in with a Microsoft Entra ID token
 (Entra stand-in on 127.0.0.1:$ENTRA_PORT, PgFront on 127.0.0.1:$FRONT_PORT):

   $PG_BIN/psql "$ORDERS_URL"

 and through alias billing, a Cloud SQL connector alias (Admin API stand-in
 $CSQL_ADMIN, instance proxy on 127.0.0.1:$CSQL_PORT):

   $PG_BIN/psql "$BILLING_URL"

 Config: $WORK/tokenbouncer.ini
 Press Ctrl-C to stop tokenbouncer, the stand-ins and PostgreSQL and remove $WORK.
==========================================================================

EOF
set +e
wait "$TB_PID"
rc=$?
TB_PID=""
log "tokenbouncer exited with status $rc"
exit "$rc"
