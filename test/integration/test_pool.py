"""Session pooling: pool size limits with a FIFO wait, server reuse and reset."""
import time

import psycopg
import pytest

from conftest import ALICE, ALICE_PW, app_connstr
from pg import BackendSampler
from util import Bounded, wait_for


def BackendMonitor(pg, usename, interval=0.01, max_seconds=120):
    """The shared sampler (pg.BackendSampler) for one user's client backends."""
    return BackendSampler(pg, usename, interval, max_seconds)


def sleepers(p, n, seconds, db="appdb", timeout=60):
    """n concurrent psycopg clients each running pg_sleep(seconds); returns (backend pids, elapsed)."""
    def one():
        with p.connect(db, ALICE, ALICE_PW, connect_timeout=timeout) as conn:
            pid = conn.execute("select pg_backend_pid()").fetchone()[0]
            conn.execute("select pg_sleep(%s)" % seconds)
            return pid
    start = time.monotonic()
    runs = [Bounded(one) for _ in range(n)]
    pids = [r.result(timeout, "sleeper client") for r in runs]
    return pids, time.monotonic() - start


def test_more_clients_than_pool(make_pooler, pg, new_role):
    role = new_role("pool2")
    p = make_pooler(databases={"appdb": app_connstr(pg, user=role, pool_size=2)})
    with BackendMonitor(pg, role) as mon:
        pids, elapsed = sleepers(p, 8, 0.3)
    assert len(pids) == 8
    assert len(set(pids)) <= 2, "more than 2 distinct backends: %r" % sorted(set(pids))
    assert mon.samples > 10
    assert mon.max_seen == 2, "max backends seen %d (samples %d)" % (mon.max_seen, mon.samples)
    # 8 sleeps of 0.3 s over 2 servers cannot take less than 4 rounds
    assert elapsed >= 1.2 - 0.05, "8 x 0.3s over 2 servers took only %.2fs" % elapsed


def test_session_state_is_reset(make_pooler, pg, new_role):
    role = new_role("reset")
    p = make_pooler(databases={"appdb": app_connstr(pg, user=role, pool_size=1)})
    default_wm = pg.scalar("select reset_val from pg_settings where name = 'work_mem'")
    with p.connect("appdb", ALICE, ALICE_PW, prepare_threshold=None) as a:
        pid_a = a.execute("select pg_backend_pid()").fetchone()[0]
        a.execute("SET work_mem = '7MB'")
        a.execute("CREATE TEMP TABLE t(x int)")
        a.execute("PREPARE p AS SELECT 1")
        assert a.execute("show work_mem").fetchone() == ("7MB",)
        assert a.execute("select count(*) from pg_prepared_statements where name = 'p'").fetchone() == (1,)
    with p.connect("appdb", ALICE, ALICE_PW, prepare_threshold=None) as b:
        pid_b = b.execute("select pg_backend_pid()").fetchone()[0]
        assert pid_b == pid_a, "server connection was not reused"
        assert b.execute("show work_mem").fetchone()[0] != "7MB"
        assert b.execute("select setting from pg_settings where name = 'work_mem'").fetchone()[0] == default_wm
        assert b.execute("select to_regclass('pg_temp.t')").fetchone() == (None,)
        assert b.execute("select count(*) from pg_prepared_statements where name = 'p'").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            b.execute("EXECUTE p")


def test_pools_per_user_are_separate(make_pooler, pg, new_role):
    """Alias without user=: each client user gets its own pool and upstream login."""
    r1 = new_role("sep1", password="Sep-Pw-1")
    r2 = new_role("sep2", password="Sep-Pw-2")
    p = make_pooler(settings={"auth_type": "md5"},
                    databases={"anydb": app_connstr(pg, user=None, password=None)},
                    users={r1: "Sep-Pw-1", r2: "Sep-Pw-2"})
    with p.connect("anydb", r1, "Sep-Pw-1") as c1, p.connect("anydb", r2, "Sep-Pw-2") as c2:
        u1, pid1 = c1.execute("select current_user, pg_backend_pid()").fetchone()
        u2, pid2 = c2.execute("select current_user, pg_backend_pid()").fetchone()
    assert (u1, u2) == (r1, r2)
    assert pid1 != pid2


def test_max_client_conn_gives_53300(make_pooler):
    import rawpg
    p = make_pooler(settings={"max_client_conn": 2})
    a = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)
    b = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)
    try:
        with pytest.raises(rawpg.PgError) as ei:
            rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW).close()
        assert ei.value.code == "53300"
        assert a.query_ok("select 1").rows == [("1",)]
    finally:
        a.terminate()
        b.close()

    def third_gets_in():
        try:
            c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)
        except rawpg.PgError as e:
            assert e.code == "53300"
            return False
        c.terminate()
        return True
    wait_for(third_gets_in, 10, "a client to get in after others left", interval=0.05)
