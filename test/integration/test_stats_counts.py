"""Exact SHOW STATS counters (issue 12): each transaction and each query counted once, as
PgBouncer counts them (a query is a simple Query or a Sync, i.e. one ReadyForQuery; a
transaction ends at a ReadyForQuery with status idle), for pipelines, protocol-level prepared
statements and multi-statement simple queries, in session and transaction mode."""
import os
import subprocess

import psycopg
import pytest

from conftest import ALICE, ALICE_PW, APP_PW, APP_USER
from pg import PG_BIN
from pooler import is_pgbouncer
from rawpg import scram_secret

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: tokenbouncer's console")

ADMIN, ADMIN_PW = "admin", "Admin-Pw-91ac3e"


def counting_pooler(make_pooler, pg, mode, databases=None, pool_size=20):
    users = {ALICE: scram_secret(ALICE_PW), ADMIN: scram_secret(ADMIN_PW)}
    return make_pooler(settings={"admin_users": ADMIN, "pool_mode": mode,
                                 "default_pool_size": pool_size,
                                 "max_prepared_statements": 100}, users=users,
                       databases=databases)


def totals(p, db="appdb"):
    with p.connect("pgbouncer", ADMIN, ADMIN_PW, prepare_threshold=None) as conn:
        cur = conn.execute("SHOW STATS_TOTALS")
        names = [d.name for d in cur.description]
        for r in cur.fetchall():
            row = dict(zip(names, r))
            if row["database"] == db:
                return row["xact_count"], row["query_count"]
    return 0, 0


def delta(p, work, db="appdb"):
    x0, q0 = totals(p, db)
    work()
    x1, q1 = totals(p, db)
    return x1 - x0, q1 - q0


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_counts_simple_pipeline_prepared(make_pooler, pg, mode):
    p = counting_pooler(make_pooler, pg, mode)
    conn = p.connect("appdb", ALICE, ALICE_PW, prepare_threshold=None, autocommit=True)
    conn.execute("select 1")                  # log in and warm the server up

    def simple():
        for i in range(10):
            conn.execute("select %d" % i)
    assert delta(p, simple) == (10, 10)

    # one Query carrying three statements: one implicit transaction, one query
    raw = conn.pgconn
    def multi():
        for _ in range(5):
            raw.exec_(b"select 1; select 2; select 3")
    assert delta(p, multi) == (5, 5)

    # an explicit transaction of 4 queries inside one Query, and one spread over 4 Queries
    def explicit():
        raw.exec_(b"begin; select 1; select 2; commit")
        for q in (b"begin", b"select 1", b"select 2", b"commit"):
            raw.exec_(q)
    assert delta(p, explicit) == (2, 5)

    # psycopg 3 pipeline: N Parse/Bind/Execute and one Sync
    def pipeline():
        with conn.pipeline():
            for i in range(20):
                conn.execute("select %s::int", (i,))
    assert delta(p, pipeline) == (1, 1)

    # pipeline with a Sync after each statement: one query and one transaction per Sync
    def pipeline_syncs():
        with conn.pipeline() as pl:
            for i in range(6):
                conn.execute("select %s::int", (i,))
                pl.sync()
    x, q = delta(p, pipeline_syncs)
    assert (x, q) == (6, 6) or (x, q) == (7, 7), (x, q)   # psycopg may add a final Sync

    # protocol-level prepared statements reused: each execution one query, one transaction
    pconn = p.connect("appdb", ALICE, ALICE_PW, prepare_threshold=0, autocommit=True)
    pconn.execute("select %s::int + 1", (0,))
    def prepared():
        for i in range(15):
            pconn.execute("select %s::int + 1", (i,))
    assert delta(p, prepared) == (15, 15)
    pconn.close()
    conn.close()


PGBENCH = os.path.join(PG_BIN, "pgbench")


def test_counts_pgbench_prepared(make_pooler, pg, bench_db, bench_role):
    role = bench_role("cnt")
    from conftest import app_connstr
    p = counting_pooler(make_pooler, pg, "transaction",
                        databases={"bench": app_connstr(pg, dbname=bench_db)}, pool_size=2)
    # pgbench logs in as appuser through the alias's forced user; clients auth as alice
    script = "\\set aid random(1, 100000)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n" \
             "BEGIN;\nSELECT 1;\nSELECT 2;\nEND;\n"
    path = os.path.join(p.workdir, "count.sql")
    with open(path, "w") as f:
        f.write(script)
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": ALICE_PW}
    def run():
        res = subprocess.run([PGBENCH, "-n", "-M", "prepared", "-c", "4", "-j", "4", "-t", "50", "-f", path,
                              "-h", "127.0.0.1", "-p", str(p.port), "-U", ALICE, "bench"],
                             env=env, capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL)
        assert res.returncode == 0, res.stdout + res.stderr
    # per script run: 1 autocommit query + a 4-query transaction = 2 transactions, 5 queries.
    # pgbench -M prepared also prepares each of the 5 statements once per client with its own
    # Parse + Sync (a query each; the two prepared outside the transaction are transactions too).
    # (-j 4: pgbench prepares with a blocking PQprepare, which would stall its other clients
    # while they hold the servers in a transaction.) Four clients share two servers, so statements are also re-prepared by the pooler on the
    # server a client lands on: those Parses travel with the client's Sync and add nothing.
    assert delta(p, run, "bench") == (4 * (50 * 2 + 2), 4 * (50 * 5 + 5))


def test_pooler_own_queries_not_counted(make_pooler, pg):
    # two clients with different session parameters share one server: the pooler's SET before
    # each hand-over, its reset and check queries are not the clients' queries
    users = {ALICE: scram_secret(ALICE_PW), ADMIN: scram_secret(ADMIN_PW)}
    p = make_pooler(settings={"admin_users": ADMIN, "pool_mode": "transaction",
                              "default_pool_size": 1, "server_reset_query_always": 1,
                              "server_check_delay": 0}, users=users)
    a = p.connect("appdb", ALICE, ALICE_PW, prepare_threshold=None, application_name="a")
    b = p.connect("appdb", ALICE, ALICE_PW, prepare_threshold=None, application_name="b",
                  options="-c TimeZone=Asia/Tokyo")
    a.execute("select 1")
    b.execute("select 1")

    def alternate():
        for _ in range(10):
            assert a.execute("show application_name").fetchone()[0] == "a"
            assert b.execute("show application_name").fetchone()[0] == "b"
    assert delta(p, alternate) == (20, 20)
    a.close()
    b.close()
