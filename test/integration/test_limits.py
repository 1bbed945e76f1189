"""Connection limits and timeouts, with PgBouncer's meanings: max_db_connections,
max_user_connections (global and per user), reserve_pool_size/reserve_pool_timeout,
query_wait_timeout, query_timeout, client_idle_timeout, idle_transaction_timeout.
(max_client_conn: test_pool.test_max_client_conn_gives_53300.)"""
import time


import rawpg
from conftest import ALICE, ALICE_PW, APP_DB, app_connstr
from pg import BackendSampler
from pooler import is_pgbouncer
from util import Bounded, wait_for


def run_sleepers(p, plan, seconds, timeout=20):
    """plan: [(alias, user, password)] one client each, all at once, each running
    pg_sleep(seconds) in transaction mode. Returns elapsed seconds; re-raises any failure."""
    def one(db, user, pw):
        with p.connect(db, user, pw, prepare_threshold=None, connect_timeout=timeout) as conn:
            conn.execute("select pg_sleep(%s)" % seconds)
    start = time.monotonic()
    runs = [Bounded(one, *x) for x in plan]
    for r in runs:
        r.result(timeout, "sleeper")
    return time.monotonic() - start


def md5_pooler(make_pooler, pg, roles, databases, settings=None, **kw):
    """Aliases without user=: each client logs in upstream as itself (plain auth_file entries)."""
    # a client that waits for its pool's first server login gives up after 8 s, not 60
    s = {"pool_mode": "transaction", "auth_type": "md5", "client_login_timeout": 8}
    s.update(settings or {})
    return make_pooler(settings=s, databases=databases, users=dict(roles), **kw)


# ------------------------------------------------------------------ max_db_connections
def test_max_db_connections_global_and_per_alias(make_pooler, pg, new_role):
    r1, r2 = new_role("mdb1", "Mdb-Pw-1"), new_role("mdb2", "Mdb-Pw-2")
    r3, r4 = new_role("mdb3", "Mdb-Pw-3"), new_role("mdb4", "Mdb-Pw-4")
    roles = {r1: "Mdb-Pw-1", r2: "Mdb-Pw-2", r3: "Mdb-Pw-3", r4: "Mdb-Pw-4"}
    anydb = app_connstr(pg, user=None, password=None, pool_size=5)
    onedb = app_connstr(pg, user=None, password=None, pool_size=5, max_db_connections=1)
    p = md5_pooler(make_pooler, pg, roles, {"anydb": anydb, "onedb": onedb},
                   settings={"max_db_connections": 2})
    # two pools (one per user) on alias anydb: together at most 2 servers
    plan = [("anydb", r, roles[r]) for r in (r1, r2) for _ in range(3)]
    with BackendSampler(pg, [r1, r2]) as mon:
        run_sleepers(p, plan, 0.3)
    assert mon.max_seen == 2, "max_db_connections=2: %d backends at once" % mon.max_seen
    # the alias's own max_db_connections=1 wins over the global 2
    plan = [("onedb", r, roles[r]) for r in (r3, r4) for _ in range(2)]
    with BackendSampler(pg, [r3, r4]) as mon:
        run_sleepers(p, plan, 0.3)
    assert mon.max_seen == 1, "alias max_db_connections=1: %d backends at once" % mon.max_seen


def test_max_db_connections_evicts_idle_server_of_other_pool(make_pooler, pg, new_role):
    """PgBouncer: when the database is at max_db_connections, a pool that needs a server closes
    an idle server of another pool of that database instead of waiting for it to time out."""
    r1, r2 = new_role("ev1", "Ev-Pw-1"), new_role("ev2", "Ev-Pw-2")
    roles = {r1: "Ev-Pw-1", r2: "Ev-Pw-2"}
    p = md5_pooler(make_pooler, pg, roles, {"anydb": app_connstr(pg, user=None, password=None, pool_size=5)},
                   settings={"max_db_connections": 1, "query_wait_timeout": 6})
    with p.connect("anydb", r1, roles[r1]) as a:
        assert a.execute("select 1").fetchone() == (1,)     # r1's pool keeps one idle server
        start = time.monotonic()
        with p.connect("anydb", r2, roles[r2]) as b:
            assert b.execute("select 2").fetchone() == (2,)
        waited = time.monotonic() - start
    assert waited < 3, "r2 waited %.1fs for a server while r1's pool held an idle one" % waited


def test_max_user_connections_global_and_per_user(make_pooler, pg, new_role):
    """The aliases name no user=, so the pool user is the client's own name (as in PgBouncer,
    where a forced user= is a separate user per alias and is not counted across aliases)."""
    role = new_role("mu", "Mu-Pw-1")
    dbs = {"db1": app_connstr(pg, user=None, password=None, pool_size=5),
           "db2": app_connstr(pg, user=None, password=None, pool_size=5)}
    p = md5_pooler(make_pooler, pg, {role: "Mu-Pw-1"}, dbs, settings={"max_user_connections": 2})
    plan = [(db, role, "Mu-Pw-1") for db in dbs for _ in range(3)]
    with BackendSampler(pg, [role]) as mon:
        run_sleepers(p, plan, 0.3)
    assert mon.max_seen == 2, "max_user_connections=2 across two aliases: %d backends" % mon.max_seen
    p.stop()
    wait_for(lambda: pg.backends(role) == 0, 10, "the first pooler's backends to go")

    # a [users] entry overrides the global value
    p2 = md5_pooler(make_pooler, pg, {role: "Mu-Pw-1"}, dbs, settings={"max_user_connections": 3},
                    user_settings={role: "max_user_connections=1"})
    with BackendSampler(pg, [role]) as mon:
        run_sleepers(p2, plan, 0.2)
    assert mon.max_seen == 1, "[users] max_user_connections=1: %d backends" % mon.max_seen


def test_max_user_connections_evicts_idle_server_of_other_pool(make_pooler, pg, new_role):
    """As for max_db_connections: the user's idle server in another database's pool makes room."""
    role = new_role("mue", "Mue-Pw-1")
    dbs = {"db1": app_connstr(pg, user=None, password=None, pool_size=5),
           "db2": app_connstr(pg, user=None, password=None, pool_size=5)}
    p = md5_pooler(make_pooler, pg, {role: "Mue-Pw-1"}, dbs,
                   settings={"max_user_connections": 1, "query_wait_timeout": 6})
    with p.connect("db1", role, "Mue-Pw-1") as a:
        assert a.execute("select 1").fetchone() == (1,)
        start = time.monotonic()
        with p.connect("db2", role, "Mue-Pw-1") as b:
            assert b.execute("select 2").fetchone() == (2,)
        waited = time.monotonic() - start
    assert waited < 3, "db2 waited %.1fs while db1's pool held the user's idle server" % waited


# ------------------------------------------------------------------ reserve pool
def test_reserve_pool(make_pooler, pg, new_role):
    role = new_role("rsv")
    p = make_pooler(settings={"pool_mode": "transaction", "reserve_pool_size": 1, "reserve_pool_timeout": 0.5},
                    databases={"appdb": app_connstr(pg, user=role, pool_size=2)})
    plan = [("appdb", ALICE, ALICE_PW)] * 3
    with BackendSampler(pg, [role]) as mon:
        elapsed = run_sleepers(p, plan, 2)
    # without the reserve the third sleeper would start after the first two: >= 4 s
    assert mon.max_seen == 3, "reserve pool not used: max %d backends" % mon.max_seen
    assert elapsed < 3.6, "3 x pg_sleep(2) on 2+1 servers took %.1fs" % elapsed
    # four at once: the reserve is one server, never more
    with BackendSampler(pg, [role]) as mon:
        run_sleepers(p, plan + plan[:1], 0.8)
    assert mon.max_seen == 3


# ------------------------------------------------------------------ timeouts
def test_query_wait_timeout(make_pooler, pg, new_role):
    role = new_role("qwt")
    p = make_pooler(settings={"pool_mode": "transaction", "query_wait_timeout": 1},
                    databases={"appdb": app_connstr(pg, user=role, pool_size=1)})
    with p.connect("appdb", ALICE, ALICE_PW) as a, \
            rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW) as b:
        busy = Bounded(a.execute, "select pg_sleep(3)")
        wait_for(lambda: busy.done() or pg.scalar(
            "select count(*) from pg_stat_activity where usename = %s and state = 'active'", (role,)) == 1,
            10, "a's query to run")
        start = time.monotonic()
        r = b.query("select 'b got a server'")
        waited = time.monotonic() - start
        assert r.error is not None, r.rows
        assert r.error.severity == "FATAL" and r.error.code == "08P01", r.error.fields
        assert r.error.message.startswith("query_wait_timeout"), r.error.message
        assert 0.9 <= waited < 2.5, "query_wait_timeout=1 fired after %.2fs" % waited
        busy.result(10, "a's pg_sleep(3)")      # the busy client is not affected
        assert a.execute("select 1").fetchone() == (1,)


def test_query_timeout_cancels_the_backend(make_pooler, pg, new_role):
    role = new_role("qt")
    p = make_pooler(settings={"pool_mode": "transaction", "query_timeout": 1},
                    databases={"appdb": app_connstr(pg, user=role, pool_size=1)})
    with rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW) as c:
        assert c.query_ok("select pg_sleep(0.2), 'short query'").rows == [("", "short query")]
        start = time.monotonic()
        r = c.query("select pg_sleep(30)")
        took = time.monotonic() - start
    assert r.error is not None, r.rows
    assert 0.9 <= took < 2.5, "query_timeout=1 fired after %.2fs" % took
    if not is_pgbouncer():
        # PgBouncer's: the client is disconnected with 08P01 "query timeout"
        assert (r.error.code, r.error.message) == ("08P01", "query timeout"), r.error.fields
    # the backend's query is stopped too, not left running for 30 s (PgBouncer 1.18 only
    # closes the server connection, and the backend sleeps on)
    if not is_pgbouncer():
        wait_for(lambda: pg.scalar("select count(*) from pg_stat_activity where usename = %s and "
                                   "state = 'active' and query like 'select pg_sleep(30)%%'", (role,)) == 0,
                 5, "the timed-out pg_sleep(30) to stop on PostgreSQL")
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute("select 'pool still works'").fetchone() == ("pool still works",)


def test_client_idle_timeout(make_pooler, pg, new_role):
    role = new_role("cit")
    p = make_pooler(settings={"pool_mode": "transaction", "client_idle_timeout": 1},
                    databases={"appdb": app_connstr(pg, user=role, pool_size=2)})
    with rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW) as idle, \
            rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW) as busy:
        idle.query_ok("select 1")
        start = time.monotonic()
        # the busy client sends a query every 0.2 s for 2 s and is never idle for 1 s
        deadline = start + 2.0
        while time.monotonic() < deadline:
            busy.query_ok("select 2")
            time.sleep(0.2)
        got, waited = idle.wait_closed(5)
        total = time.monotonic() - start
        errs = [rawpg.parse_error_fields(b) for t, b in rawpg.parse_messages(got) if t == "E"]
        assert errs and "client_idle_timeout" in errs[0]["M"], errs
        assert total < 3.5
        assert busy.query_ok("select 3").rows == [("3",)]


def test_idle_transaction_timeout(make_pooler, pg, new_role):
    role = new_role("itt")
    table = '"tb_itt_%s"' % role
    pg.sql("create table %s (x int)" % table, dbname=APP_DB)
    pg.sql('grant all on %s to "%s"' % (table, role), dbname=APP_DB)
    p = make_pooler(settings={"pool_mode": "transaction", "idle_transaction_timeout": 1},
                    databases={"appdb": app_connstr(pg, user=role, pool_size=1)})
    with rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW) as c:
        c.query_ok("BEGIN")
        c.query_ok("insert into %s values (1)" % table)
        start = time.monotonic()
        got, _ = c.wait_closed(5)
        took = time.monotonic() - start
    errs = [rawpg.parse_error_fields(b) for t, b in rawpg.parse_messages(got) if t == "E"]
    assert errs, "closed without an error"
    if not is_pgbouncer():
        assert (errs[0]["C"], errs[0]["M"]) == ("08P01", "idle transaction timeout"), errs[0]
    assert "idle" in errs[0]["M"] and "transaction" in errs[0]["M"], errs[0]
    assert 0.9 <= took < 2.5, "idle_transaction_timeout=1 fired after %.2fs" % took
    # the transaction is gone on the server, nothing of it committed, and the pool goes on
    wait_for(lambda: "idle in transaction" not in [r[0] for r in pg.sql(
        "select state from pg_stat_activity where usename = %s", (role,))], 5, "the open transaction to end")
    assert pg.scalar("select count(*) from %s" % table, dbname=APP_DB) == 0
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute("select count(*) from %s" % table).fetchone() == (0,)
