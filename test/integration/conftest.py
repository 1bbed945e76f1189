"""Shared fixtures for the tokenbouncer integration tests.

- certs:        test CA, server cert (CN=localhost), an unrelated CA (session)
- pg:           PostgreSQL 15 with ssl=on, role appuser / db app (session)
- make_pooler:  factory for tokenbouncer processes; each is stopped at test end, and the test
                fails if the process died on its own or its output holds a sanitizer report
- libpq_query:  a tiny C program linked with -lpq, compiled at test time (session)
"""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import certs as certs_mod  # noqa: E402
import pooler as pooler_mod  # noqa: E402
from pg import PgServer  # noqa: E402
from rawpg import scram_secret  # noqa: E402

APP_DB = "app"
APP_USER = "appuser"
APP_PW = "App-Pw-7d2f1b"          # upstream password of appuser (in [databases] entries)
ALICE = "alice"                    # a client of the pooler, SCRAM secret in auth_file
ALICE_PW = "Alice-Pw-3e8c42"


@pytest.fixture(scope="session")
def certs():
    d = tempfile.mkdtemp(prefix="tbcerts")
    try:
        yield certs_mod.make_certs(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _make_pg(certs):
    pg = PgServer(certs=certs).init().start()
    pg.create_role(APP_USER, APP_PW)
    pg.create_database(APP_DB, APP_USER)
    return pg


@pytest.fixture(scope="session")
def pg(certs):
    server = _make_pg(certs)
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_pg(certs):
    """A PostgreSQL of the test's own, which the test may stop and start."""
    server = _make_pg(certs)
    try:
        yield server
    finally:
        server.destroy()


def app_connstr(pg, dbname=APP_DB, user=APP_USER, password=APP_PW, **extra):
    parts = ["host=127.0.0.1", "port=%d" % pg.port, "dbname=%s" % dbname]
    if user is not None:
        parts.append("user=%s" % user)
    if password is not None:
        parts.append("password=%s" % password)
    parts += ["%s=%s" % kv for kv in extra.items()]
    return " ".join(parts)


_role_counter = [0]


@pytest.fixture
def new_role(pg):
    """new_role(prefix, password=..., md5=False) -> unique role name, created on pg, with
    CONNECT on db app. Roles give each test its own backend counts in pg_stat_activity."""
    def make(prefix="r", password=APP_PW, md5=False, target=None):
        _role_counter[0] += 1
        name = "%s_%d_%d" % (prefix, os.getpid(), _role_counter[0])
        (target or pg).create_role(name, password, md5=md5)
        (target or pg).sql('GRANT ALL ON SCHEMA public TO "%s"' % name, dbname=APP_DB)
        return name
    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach each pooler's log tail to the report and remember the failure."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        item._tb_failed = True
        for i, p in enumerate(getattr(item, "_tb_poolers", [])):
            rep.sections.append(("tokenbouncer #%d log (%s)" % (i, p.workdir), p.log_for_report()[-6000:]))


@pytest.fixture
def make_pooler(pg, request):
    """make_pooler(settings=, databases=, users=, hba=, start=True) -> started Pooler.
    Defaults: alias appdb -> db app as appuser; client alice with a SCRAM secret.
    A failed test keeps the poolers' work dirs (so does TB_KEEP=1)."""
    made = []
    request.node._tb_poolers = made

    def factory(settings=None, databases=None, users=None, hba=None, start=True, **kw):
        if databases is None:
            databases = {"appdb": app_connstr(pg)}
        if users is None:
            # PgBouncer 1.18 (the TB_FLAVOR=pgbouncer reference) wrongly passes a SCRAM client's
            # keys on to a forced upstream user, so it gets the plain password instead.
            users = {ALICE: ALICE_PW if pooler_mod.is_pgbouncer() else scram_secret(ALICE_PW)}
        p = pooler_mod.Pooler(settings=settings, databases=databases, users=users, hba=hba, **kw)
        made.append(p)
        if start:
            p.start()
        return p

    yield factory

    problems = []
    for i, p in enumerate(made):
        mine = []
        died = p.proc is not None and p.proc.poll() is not None and not p.expected_exit
        code = p.proc.returncode if p.proc is not None else None
        p.stop()
        if died:
            mine.append("tokenbouncer #%d exited during the test with code %s" % (i, code))
        found = p.sanitizer_reports()
        if found:
            mine.append("sanitizer report (%s) in tokenbouncer #%d output (%s):\n%s" %
                        (", ".join(found), i, p.workdir, p.log_for_report()[-8000:]))
        elif mine:
            mine.append("log tail (%s):\n%s" % (p.workdir, p.log_for_report()[-3000:]))
        problems += mine
        if not mine and not getattr(request.node, "_tb_failed", False) and not os.environ.get("TB_KEEP"):
            p.cleanup()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


LIBPQ_SRC = r"""
#include <stdio.h>
#include <libpq-fe.h>
/* usage: libpq_query CONNINFO SQL -> prints the first row's columns joined by '|'; exit 0 */
int main(int argc, char **argv)
{
	if (argc != 3) return 2;
	PGconn *c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) { fprintf(stderr, "connect: %s", PQerrorMessage(c)); PQfinish(c); return 1; }
	PGresult *r = PQexec(c, argv[2]);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) { fprintf(stderr, "query: %s", PQerrorMessage(c)); PQclear(r); PQfinish(c); return 1; }
	for (int i = 0; i < PQnfields(r); i++) printf("%s%s", i ? "|" : "", PQgetvalue(r, 0, i));
	printf("\n");
	PQclear(r);
	PQfinish(c);
	return 0;
}
"""


@pytest.fixture(scope="session")
def libpq_query():
    """Path of a compiled C program: libpq_query CONNINFO SQL."""
    d = tempfile.mkdtemp(prefix="tblibpq")
    src = os.path.join(d, "libpq_query.c")
    exe = os.path.join(d, "libpq_query")
    with open(src, "w") as f:
        f.write(LIBPQ_SRC)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libpq"], capture_output=True,
                           text=True, timeout=30)
    extra = flags.stdout.split() if flags.returncode == 0 else ["-I/usr/include/postgresql", "-lpq"]
    res = subprocess.run(["cc", "-std=c99", "-Wall", "-o", exe, src] + extra, capture_output=True,
                         text=True, timeout=120)
    if res.returncode != 0:
        pytest.fail("could not compile the libpq test program:\n" + res.stderr)
    yield exe
    shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- pooling core II helpers
BENCH_DB = "bench"


@pytest.fixture(scope="session")
def bench_db(pg):
    """Database "bench" owned by appuser, filled by `pgbench -i -s 1` directly on PostgreSQL."""
    from pgbench import run_pgbench
    pg.create_database(BENCH_DB, APP_USER)
    res = run_pgbench(pg.port, BENCH_DB, APP_USER, APP_PW, ["-i", "-s", "1", "-q"], timeout=120)
    if res.returncode != 0:
        pytest.fail("pgbench -i failed:\n%s\n%s" % (res.stdout, res.stderr))
    return BENCH_DB


@pytest.fixture
def bench_role(pg, bench_db, new_role):
    """bench_role(prefix) -> a new role that may run pgbench's default script on db bench
    (pgbench needs -n: only the owner may vacuum the tables)."""
    def make(prefix="bench"):
        name = new_role(prefix)
        pg.sql('GRANT ALL ON ALL TABLES IN SCHEMA public TO "%s"' % name, dbname=BENCH_DB)
        return name
    return make


LIBPQ_TX_SRC = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
/* usage: libpq_tx CONNINFO ID N
 * Table tb_libpq(id int, n int) must exist. Runs N transactions, each:
 *   BEGIN (simple query)
 *   INSERT INTO tb_libpq VALUES ($1, $2)          PQexecParams (unnamed statement)
 *   SELECT count(*) FROM tb_libpq WHERE id = $1   PQexecParams, checked against the loop count
 *   COMMIT
 * then one libpq pipeline (PQenterPipelineMode): three PQsendQueryParams and one Sync.
 * Prints "ok COUNT" and exits 0, or prints the failing step to stderr and exits 1. */
static PGconn *c;
static int fail(const char *what, PGresult *r)
{
	fprintf(stderr, "%s: %s%s\n", what, PQerrorMessage(c), r ? PQresultErrorMessage(r) : "");
	if (r) PQclear(r);
	PQfinish(c);
	return 1;
}
static int cmd(const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) { fail(sql, r); return 0; }
	PQclear(r);
	return 1;
}
int main(int argc, char **argv)
{
	if (argc != 4) return 2;
	const char *id = argv[2];
	int n = atoi(argv[3]);
	c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) return fail("connect", NULL);
	for (int i = 1; i <= n; i++) {
		char num[16];
		snprintf(num, sizeof(num), "%d", i);
		if (!cmd("BEGIN")) return 1;
		const char *ins[2] = { id, num };
		PGresult *r = PQexecParams(c, "INSERT INTO tb_libpq VALUES ($1::int, $2::int)", 2, NULL, ins, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) return fail("insert", r);
		PQclear(r);
		const char *sel[1] = { id };
		r = PQexecParams(c, "SELECT count(*) FROM tb_libpq WHERE id = $1::int", 1, NULL, sel, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail("select", r);
		if (atoi(PQgetvalue(r, 0, 0)) != i) {
			fprintf(stderr, "count %s after %d inserts\n", PQgetvalue(r, 0, 0), i);
			PQclear(r);
			PQfinish(c);
			return 1;
		}
		PQclear(r);
		if (!cmd("COMMIT")) return 1;
	}
	if (!PQenterPipelineMode(c)) return fail("enter pipeline", NULL);
	const char *p1[1] = { id };
	for (int k = 0; k < 3; k++)
		if (!PQsendQueryParams(c, "SELECT count(*) FROM tb_libpq WHERE id = $1::int", 1, NULL, p1, NULL, NULL, 0))
			return fail("send in pipeline", NULL);
	if (!PQpipelineSync(c)) return fail("pipeline sync", NULL);
	long last = -1;
	for (int k = 0; k < 3; k++) {
		PGresult *r = PQgetResult(c);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail("pipeline result", r);
		last = atol(PQgetvalue(r, 0, 0));
		PQclear(r);
		r = PQgetResult(c); /* NULL ends each query's results */
		if (r) return fail("pipeline: extra result", r);
	}
	PGresult *r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) return fail("pipeline: no sync result", r);
	PQclear(r);
	PQexitPipelineMode(c);
	printf("ok %ld\n", last);
	PQfinish(c);
	return 0;
}
"""


@pytest.fixture(scope="session")
def libpq_tx():
    """Path of a compiled C program: libpq_tx CONNINFO ID N (see LIBPQ_TX_SRC)."""
    d = tempfile.mkdtemp(prefix="tblibpqtx")
    src = os.path.join(d, "libpq_tx.c")
    exe = os.path.join(d, "libpq_tx")
    with open(src, "w") as f:
        f.write(LIBPQ_TX_SRC)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libpq"], capture_output=True,
                           text=True, timeout=30)
    extra = flags.stdout.split() if flags.returncode == 0 else ["-I/usr/include/postgresql", "-lpq"]
    res = subprocess.run(["cc", "-std=c99", "-Wall", "-Werror", "-o", exe, src] + extra,
                         capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        pytest.fail("could not compile the libpq_tx test program:\n" + res.stderr)
    yield exe
    shutil.rmtree(d, ignore_errors=True)
