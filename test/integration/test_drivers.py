"""Real drivers with their default named prepared statements through transaction mode, with
fewer servers than concurrent clients (8 workers over pool_size=3), so that statements prepared
by one client's connection meet other clients' servers.

Every driver runs the same work per worker: a parametrised query repeated past the driver's
prepare threshold, transactions that insert and count (every third rolled back), and a
statement prepared once and reused across transactions; every value is checked. The Python
drivers run here; pgjdbc, node-postgres, postgres.js, DBD::Pg and ruby-pg run the scripts in
test/drivers/.
"""
import asyncio
import os
import shutil
import subprocess
import threading

import psycopg
import pytest

import rawpg
from conftest import ALICE, ALICE_PW, APP_DB, app_connstr
from pooler import is_pgbouncer

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVERS = os.path.join(os.path.dirname(HERE), "drivers")
WORKERS = 8
ROUNDS = 12
POOL_SIZE = 3


@pytest.fixture
def drv(make_pooler, pg, new_role):
    """-> (pooler, table) with a table (w int, i int) the pool's role may use."""
    def make(prefix, settings=None, users=None):
        role = new_role(prefix)
        table = "tb_%s" % role
        pg.sql("create table %s (w int, i int)" % table, dbname=APP_DB)
        pg.sql('grant all on %s to "%s"' % (table, role), dbname=APP_DB)
        s = {"pool_mode": "transaction", "max_client_conn": 200,
             "ignore_startup_parameters": "extra_float_digits"}
        s.update(settings or {})
        p = make_pooler(settings=s, users=users,
                        databases={"appdb": app_connstr(pg, user=role, pool_size=POOL_SIZE)})
        return p, table, role
    return make


def check_table(pg, table):
    """Each worker committed two of every three rounds."""
    rows = pg.sql("select w, count(*) from %s group by w order by w" % table, dbname=APP_DB)
    assert [tuple(r) for r in rows] == [(w, ROUNDS - ROUNDS // 3) for w in range(1, WORKERS + 1)]


def run_threads(fn):
    errors, threads = [], []

    def wrap(w):
        try:
            fn(w)
        except BaseException as e:  # noqa: B902 - reported below
            errors.append((w, repr(e)))
    for w in range(1, WORKERS + 1):
        t = threading.Thread(target=wrap, args=(w,), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "worker hung"
    assert not errors, errors


def dsn(p, user=ALICE, password=ALICE_PW):
    return "host=127.0.0.1 port=%d dbname=appdb user=%s password=%s" % (p.port, user, password)


# ------------------------------------------------------------------------------ psycopg 3
class Rolled(Exception):
    pass


def psycopg_round(conn, table, w, i, committed, reused):
    assert conn.execute("select %s::int * 1000 + %s::int", (w, i)).fetchone()[0] == w * 1000 + i
    try:
        with conn.transaction():
            conn.execute("insert into %s values (%%s, %%s)" % table, (w, i))
            got = conn.execute("select count(*) from %s where w = %%s" % table, (w,)).fetchone()[0]
            assert got == committed + 1, (got, committed)
            assert conn.execute(reused, (i,), prepare=True).fetchone()[0] == i + w
            if i % 3 == 0:
                raise Rolled()
        committed += 1
    except Rolled:
        pass
    assert conn.execute("select count(*) from %s where w = %%s" % table, (w,)).fetchone()[0] == committed
    return committed


def test_psycopg_default_prepare_threshold(drv, pg):
    p, table, _ = drv("dps")

    def work(w):
        with psycopg.connect(dsn(p), autocommit=True) as conn:
            assert conn.prepare_threshold == 5
            committed = 0
            reused = "select %%s::int + %d" % w
            for i in range(1, ROUNDS + 1):
                committed = psycopg_round(conn, table, w, i, committed, reused)
            # psycopg prepares on the spot with prepare=True (a ROLLBACK makes it DEALLOCATE ALL)
            assert conn.execute(reused, (1,), prepare=True).fetchone()[0] == 1 + w
            assert conn._prepared._names
    run_threads(work)
    check_table(pg, table)


def test_psycopg_pool(drv, pg):
    from psycopg_pool import ConnectionPool
    p, table, _ = drv("dpp")
    with ConnectionPool(dsn(p), min_size=WORKERS, max_size=WORKERS, kwargs={"autocommit": True},
                        timeout=30) as pool:
        state = {}

        def work(w):
            committed = 0
            for i in range(1, ROUNDS + 1):
                with pool.connection() as conn:
                    committed = psycopg_round(conn, table, w, i, committed, "select %%s::int + %d" % w)
            state[w] = committed
        run_threads(work)
    check_table(pg, table)


def test_psycopg_async_pool(drv, pg):
    from psycopg_pool import AsyncConnectionPool
    p, table, _ = drv("dpa")

    async def one_round(conn, w, i, committed):
        cur = await conn.execute("select %s::int * 1000 + %s::int", (w, i), prepare=True)
        assert (await cur.fetchone())[0] == w * 1000 + i
        try:
            async with conn.transaction():
                await conn.execute("insert into %s values (%%s, %%s)" % table, (w, i))
                cur = await conn.execute("select count(*) from %s where w = %%s" % table, (w,))
                assert (await cur.fetchone())[0] == committed + 1
                if i % 3 == 0:
                    raise Rolled()
            committed += 1
        except Rolled:
            pass
        return committed

    async def main():
        async with AsyncConnectionPool(dsn(p), min_size=WORKERS, max_size=WORKERS,
                                       kwargs={"autocommit": True}, timeout=30) as pool:
            async def work(w):
                committed = 0
                for i in range(1, ROUNDS + 1):
                    async with pool.connection() as conn:
                        committed = await one_round(conn, w, i, committed)
            await asyncio.wait_for(asyncio.gather(*(work(w) for w in range(1, WORKERS + 1))), 120)
    asyncio.run(main())
    check_table(pg, table)


# ------------------------------------------------------------------------------ asyncpg
def asyncpg_connect(p):
    import asyncpg
    return asyncpg.connect(host="127.0.0.1", port=p.port, user=ALICE, password=ALICE_PW,
                           database="appdb", ssl=False)


def test_asyncpg_statement_cache_and_prepare(drv, pg):
    p, table, _ = drv("dap")

    async def work(w):
        conn = await asyncpg_connect(p)
        try:
            reused = await conn.prepare("select $1::int + %d" % w)
            committed = 0
            for i in range(1, ROUNDS + 1):
                assert await conn.fetchval("select $1::int * 1000 + $2::int", w, i) == w * 1000 + i
                try:
                    async with conn.transaction():
                        await conn.execute("insert into %s values ($1, $2)" % table, w, i)
                        assert await conn.fetchval("select count(*) from %s where w = $1" % table, w) == committed + 1
                        assert await reused.fetchval(i) == i + w
                        if i % 3 == 0:
                            raise Rolled()
                    committed += 1
                except Rolled:
                    pass
                assert await reused.fetchval(-i) == w - i
                rows = await conn.fetch("select w, i from %s where w = $1 order by i" % table, w)
                assert len(rows) == committed and all(r["w"] == w for r in rows)
        finally:
            await conn.close()

    async def main():
        await asyncio.wait_for(asyncio.gather(*(work(w) for w in range(1, WORKERS + 1))), 120)
    asyncio.run(main())
    check_table(pg, table)


def test_sqlalchemy_async_engine(drv, pg):
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    p, table, _ = drv("dsa")

    async def main():
        engine = create_async_engine("postgresql+asyncpg://%s:%s@127.0.0.1:%d/appdb" % (ALICE, ALICE_PW, p.port),
                                     pool_size=WORKERS, max_overflow=0)

        async def work(w):
            committed = 0
            for i in range(1, ROUNDS + 1):
                async with engine.connect() as conn:
                    r = await conn.execute(text("select cast(:a as int) * 1000 + cast(:b as int)"), {"a": w, "b": i})
                    assert r.scalar() == w * 1000 + i
                    await conn.commit()
                    # SQLAlchemy 1.4's async connections begin on first use
                    await conn.execute(text("insert into %s values (:w, :i)" % table), {"w": w, "i": i})
                    r = await conn.execute(text("select count(*) from %s where w = :w" % table), {"w": w})
                    assert r.scalar() == committed + 1
                    if i % 3 == 0:
                        await conn.rollback()
                    else:
                        await conn.commit()
                        committed += 1
        try:
            await asyncio.wait_for(asyncio.gather(*(work(w) for w in range(1, WORKERS + 1))), 120)
        finally:
            await engine.dispose()
    asyncio.run(main())
    check_table(pg, table)


# ------------------------------------------------------------------------------ pg8000
def test_pg8000_md5(drv, pg):
    """Debian 12's pg8000 1.10 speaks md5 but not SCRAM: its pooler asks clients for md5."""
    import pg8000
    users = {ALICE: rawpg.md5_secret(ALICE, ALICE_PW)}
    p, table, _ = drv("d8k", settings={"auth_type": "md5"}, users=users)

    def work(w):
        conn = pg8000.connect(user=ALICE, password=ALICE_PW, host="127.0.0.1", port=p.port,
                              database="appdb")
        try:
            cur = conn.cursor()
            committed = 0
            for i in range(1, ROUNDS + 1):
                conn.autocommit = True
                cur.execute("select cast(%s as int) * 1000 + cast(%s as int)", (w, i))
                assert cur.fetchone()[0] == w * 1000 + i
                conn.autocommit = False
                cur.execute("insert into " + table + " values (%s, %s)", (w, i))
                cur.execute("select count(*) from " + table + " where w = %s", (w,))
                assert cur.fetchone()[0] == committed + 1
                if i % 3 == 0:
                    conn.rollback()
                else:
                    conn.commit()
                    committed += 1
        finally:
            conn.close()
    run_threads(work)
    check_table(pg, table)


# ------------------------------------------------------------------------------ other languages
def run_clients(argv, cwd=None, timeout=180):
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert res.returncode == 0, "%s failed (%d):\n%s\n%s" % (argv[0], res.returncode, res.stdout[-3000:],
                                                          res.stderr[-5000:])
    assert res.stdout.strip().splitlines()[-1] == "ok %d" % (WORKERS * ROUNDS), res.stdout
    return res


def script_args(p, table):
    return ["127.0.0.1", str(p.port), "appdb", ALICE, ALICE_PW, table, str(WORKERS), str(ROUNDS)]


JDBC_JAR = "/usr/share/java/postgresql.jar"


def test_pgjdbc_default_prepare_threshold(drv, pg):
    java = shutil.which("java")
    if not java or not os.path.exists(JDBC_JAR):
        pytest.fail("java or %s missing (scripts/deps.sh installs them)" % JDBC_JAR)
    p, table, _ = drv("djd")
    run_clients([java, "-Xshare:auto", "-cp", JDBC_JAR, os.path.join(DRIVERS, "JdbcPrepared.java")] +
                script_args(p, table))
    check_table(pg, table)


def node_modules():
    mods = os.path.join(DRIVERS, "node", "node_modules")
    if not (os.path.isdir(os.path.join(mods, "pg")) and os.path.isdir(os.path.join(mods, "postgres"))):
        pytest.fail("npm modules missing: run scripts/deps.sh (npm ci in test/drivers/node)")
    return shutil.which("node")


@pytest.mark.parametrize("lib", ["pg", "postgres"])
def test_node(drv, pg, lib):
    node = node_modules()
    p, table, _ = drv("dn" + lib[:2])
    run_clients([node, os.path.join(DRIVERS, "node", "prepared.js"), lib] + script_args(p, table),
                cwd=os.path.join(DRIVERS, "node"))
    check_table(pg, table)


def test_postgres_js_pipelined_queries_get_their_own_rows(drv):
    """The wrong-row report: postgres.js pipelining three queries per connection. Without
    statement tracking, statements go missing on the next server (26000), and postgres.js's
    retry of several queries at once pairs a query with another's RowDescription and DataRow
    (a row of the wrong query, or of NULLs when the column names differ). With tracking no
    statement goes missing, so the retry path is never taken."""
    node = node_modules()
    p, table, _ = drv("dnpp")
    run_clients([node, os.path.join(DRIVERS, "node", "prepared.js"), "postgres-pipeline"] +
                script_args(p, table), cwd=os.path.join(DRIVERS, "node"), timeout=90)


def test_perl_dbd_pg(drv, pg):
    p, table, _ = drv("dpl")
    run_clients(["perl", os.path.join(DRIVERS, "prepared.pl")] + script_args(p, table))
    check_table(pg, table)


def test_ruby_pg(drv, pg):
    p, table, _ = drv("drb")
    run_clients(["ruby", os.path.join(DRIVERS, "prepared.rb")] + script_args(p, table))
    check_table(pg, table)


pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: run against tokenbouncer")
