"""PgBouncer 1.25's per-user limits and timeouts and the timeouts added since 1.18: [users]
pool_size / reserve_pool_size (over the database's), [users] query_timeout,
query_wait_timeout, idle_transaction_timeout, transaction_timeout, client_idle_timeout (over
the global values), [databases] query_wait_timeout, transaction_timeout, query_wait_notify,
cancel_wait_timeout, server_fast_close, autodb_idle_timeout and pool_idle_timeout. Short
timeouts (1 s) and polling; every wait is bounded."""
import signal
import struct
import time

import pytest

import rawpg
from conftest import ALICE, ALICE_PW, APP_DB, APP_PW, app_connstr
from pooler import is_pgbouncer
from rawpg import scram_secret
from util import Bounded, wait_for

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: the reference is 1.18")

ADMIN, ADMIN_PW = "admin", "Admin-Pw-91ac3e"
BOB, BOB_PW = "bob", "Bob-Pw-3e81d0"


def tpooler(make_pooler, pg, role, settings=None, user_settings=None, databases=None, **alias):
    """Alias appdb logs in upstream as role (so [users] role applies to its pool)."""
    s = {"pool_mode": "transaction", "admin_users": ADMIN}
    s.update(settings or {})
    dbs = databases or {"appdb": app_connstr(pg, user=role, **alias)}
    users = {ALICE: scram_secret(ALICE_PW), BOB: scram_secret(BOB_PW), ADMIN: scram_secret(ADMIN_PW)}
    return make_pooler(settings=s, databases=dbs, users=users, user_settings=user_settings)


def login(p, db="appdb", user=ALICE, pw=ALICE_PW):
    return rawpg.try_login("127.0.0.1", p.port, user, db, pw)


def console(p, sql):
    c = login(p, "pgbouncer", ADMIN, ADMIN_PW)
    try:
        r = c.query_ok(sql)
        return [dict(zip(r.columns, row)) for row in r.rows]
    finally:
        c.terminate()


def active(pg, role, like="%"):
    return pg.scalar("select count(*) from pg_stat_activity where usename = %s and state = 'active' "
                     "and query like %s", (role, like))


def errors_of(data):
    return [rawpg.parse_error_fields(b) for t, b in rawpg.parse_messages(data) if t == "E"]


def closed_with(conn, timeout=5):
    """Wait for the pooler to close conn; -> (first error's fields or None, seconds waited)."""
    start = time.monotonic()
    got, _ = conn.wait_closed(timeout)
    errs = errors_of(got)
    return (errs[0] if errs else None), time.monotonic() - start


# ------------------------------------------------------------------ [users] pool sizes
def test_user_pool_size_and_reserve_win_over_the_database(make_pooler, pg, new_role):
    role = new_role("ups")
    p = tpooler(make_pooler, pg, role, {"query_wait_timeout": 1, "reserve_pool_timeout": 0.3},
                user_settings={role: "pool_size=1"}, pool_size=5, reserve_pool=0)
    rows = {r["name"]: r for r in console(p, "SHOW USERS")}
    assert (rows[role]["pool_size"], rows[role]["reserve_pool_size"]) == ("1", None), rows[role]
    config = {r["key"]: r for r in console(p, "SHOW CONFIG")}
    for key, default in [("transaction_timeout", "0"), ("query_wait_notify", "5"),
                         ("cancel_wait_timeout", "10"), ("server_fast_close", "0"),
                         ("autodb_idle_timeout", "3600"), ("pool_idle_timeout", "0")]:
        assert (config[key]["default"], config[key]["changeable"]) == (default, "yes"), config[key]
    with login(p) as a, login(p) as b:
        a.query_ok("BEGIN")                       # holds the pool's one server
        start = time.monotonic()
        r = b.query("select 'b'")
        assert r.error is not None and r.error.message.startswith("query_wait_timeout"), r.rows
        assert 0.9 <= time.monotonic() - start < 2.5
        a.query_ok("COMMIT")
    # the user's reserve pool: a second server after reserve_pool_timeout, by reload
    p.user_settings[role] = "pool_size=1 reserve_pool_size=1"
    p.settings["query_wait_timeout"] = 10
    p.write_files()
    p.reload()
    rows = {r["name"]: r for r in console(p, "SHOW USERS")}
    assert (rows[role]["pool_size"], rows[role]["reserve_pool_size"]) == ("1", "1"), rows[role]
    with login(p) as a, login(p) as b:
        a.query_ok("BEGIN")
        start = time.monotonic()
        assert b.query_ok("select 'b served'").rows == [("b served",)]
        assert 0.25 <= time.monotonic() - start < 5, "served from the reserve after %.2fs" % (
            time.monotonic() - start)
        a.query_ok("COMMIT")


# ------------------------------------------------------------------ transaction_timeout
def test_transaction_timeout_user_wins_over_global(make_pooler, pg, new_role):
    """A transaction kept busy (never idle) is ended after the pool user's [users]
    transaction_timeout, with its work rolled back, while another user's pool keeps the global
    value (5 s)."""
    role, other = new_role("xto"), new_role("xtf")
    table = '"tb_xto_%s"' % role
    pg.sql("create table %s (x int)" % table, dbname=APP_DB)
    pg.sql('grant all on %s to "%s"' % (table, role), dbname=APP_DB)
    dbs = {"appdb": app_connstr(pg, user=role), "otherdb": app_connstr(pg, user=other)}
    p = tpooler(make_pooler, pg, role, {"transaction_timeout": 5}, databases=dbs,
                user_settings={role: "transaction_timeout=1"})
    with login(p) as c, login(p, "otherdb") as f:
        c.query_ok("BEGIN")
        c.query_ok("insert into %s values (1)" % table)
        f.query_ok("BEGIN")
        start, err = time.monotonic(), None
        while time.monotonic() - start < 3 and err is None:
            r = c.query("select 1")                # busy: idle_transaction_timeout would not fire
            err = r.error.fields if r.error else None
            f.query_ok("select 1")
            time.sleep(0.1)
        took = time.monotonic() - start
        assert err is not None, "transaction_timeout=1 did not end the transaction in 3 s"
        assert (err["S"], err["C"], err["M"]) == ("FATAL", "08P01", "transaction timeout"), err
        assert 0.8 <= took < 2.5, "transaction_timeout=1 fired after %.2fs" % took
        assert f.query_ok("select 'still in its transaction'").rows == [("still in its transaction",)]
        f.query_ok("COMMIT")
    assert pg.scalar("select count(*) from %s" % table, dbname=APP_DB) == 0


def test_transaction_timeout_cancels_a_running_query(make_pooler, pg, new_role):
    role = new_role("xtq")
    p = tpooler(make_pooler, pg, role, {"transaction_timeout": 1})
    with login(p) as c:
        start = time.monotonic()
        r = c.query("select pg_sleep(30)")
        took = time.monotonic() - start
    assert r.error is not None and r.error.message == "transaction timeout", r.rows
    assert 0.8 <= took < 2.5
    wait_for(lambda: active(pg, role, "select pg_sleep(30)%") == 0, 5, "the backend's sleep to stop")


# ------------------------------------------------------------------ [users] timeouts
def test_user_timeouts_win_over_global(make_pooler, pg, new_role):
    """[users] query_timeout and idle_transaction_timeout apply to the pools of that (server)
    user, client_idle_timeout to the clients that log in as that user, while the global values
    are off (as PgBouncer 1.25)."""
    qt, itx = new_role("uqt"), new_role("uit")
    dbs = {"qt": app_connstr(pg, user=qt), "itx": app_connstr(pg, user=itx)}
    p = tpooler(make_pooler, pg, qt, databases=dbs,
                user_settings={qt: "query_timeout=1", itx: "idle_transaction_timeout=1",
                               BOB: "client_idle_timeout=1"})
    with login(p, "qt") as a, login(p, "itx") as b, login(p, "qt") as keep:
        keep.query_ok("select 1")
        start = time.monotonic()
        r = a.query("select pg_sleep(30)")
        assert r.error is not None and r.error.message == "query timeout", r.rows
        assert 0.8 <= time.monotonic() - start < 2.5
        b.query_ok("BEGIN")
        err, took = closed_with(b)
        assert err and (err["C"], err["M"]) == ("08P01", "idle transaction timeout"), err
        c = login(p, "qt", BOB, BOB_PW)           # the same pool as keep, another login user
        c.query_ok("select 1")
        err, took = closed_with(c)
        c.close()
        assert err and "client_idle_timeout" in err["M"], err
        # alice's idle client has no client_idle_timeout
        assert keep.query_ok("select 'kept'").rows == [("kept",)]


def test_database_and_user_query_wait_timeout(make_pooler, pg, new_role):
    """[databases] query_wait_timeout wins over the global 120 s; the login user's [users]
    value wins over both."""
    role, other = new_role("dqw"), new_role("uqw")
    dbs = {"appdb": app_connstr(pg, user=role, pool_size=1, query_wait_timeout=1),
           "userdb": app_connstr(pg, user=other, pool_size=1, query_wait_timeout=30)}
    p = tpooler(make_pooler, pg, role, databases=dbs, user_settings={BOB: "query_wait_timeout=1"})
    for db, waiter in (("appdb", ALICE), ("userdb", BOB)):
        pw = ALICE_PW if waiter == ALICE else BOB_PW
        with login(p, db) as a, login(p, db, waiter, pw) as b:
            a.query_ok("BEGIN")
            start = time.monotonic()
            r = b.query("select 1")
            waited = time.monotonic() - start
            assert r.error is not None and r.error.code == "08P01", (db, r.rows)
            assert r.error.message.startswith("query_wait_timeout"), r.error.message
            assert 0.9 <= waited < 2.5, "%s: query_wait_timeout after %.2fs" % (db, waited)
            a.query_ok("COMMIT")


# ------------------------------------------------------------------ query_wait_notify
def test_query_wait_notify_sends_one_notice(make_pooler, pg, new_role):
    role = new_role("qwn")
    p = tpooler(make_pooler, pg, role, {"query_wait_notify": 1}, pool_size=1)
    with login(p) as a, login(p) as b:
        a.query_ok("BEGIN")
        b.send(rawpg.query_message("select 'b'"))
        start = time.monotonic()
        wait_for(lambda: _take_notice(b), 5, "the NOTICE to the waiting client")
        assert time.monotonic() - start >= 0.7
        a.query_ok("select pg_sleep(1.5)")       # b waits on, past 2 x query_wait_notify
        a.query_ok("COMMIT")
        r = _read_result(b)
    assert r.rows == [("b",)], r.rows
    notices = b.notices + r.notices
    assert len(notices) == 1, notices
    assert notices[0]["S"] == "NOTICE", notices[0]
    assert notices[0]["M"] == "No server connection available in postgres backend, client being queued"


def _take_notice(conn):
    m = conn.read_message_within(0.1)
    if m is None:
        return False
    assert m[0] == "N", m
    conn.notices.append(rawpg.parse_error_fields(m[1]))
    return True


def _read_result(conn):
    """The rest of a simple query's answer, up to ReadyForQuery."""
    r = rawpg.QueryResult()
    while True:
        t, pl = conn.read_message()
        if t == "D":
            r.rows.append(tuple(x.decode() for x in _fields(pl)))
        elif t == "N":
            r.notices.append(rawpg.parse_error_fields(pl))
        elif t == "E":
            r.errors.append(rawpg.PgError(rawpg.parse_error_fields(pl)))
        elif t == "Z":
            return r


def _fields(pl):
    (n,) = struct.unpack("!H", pl[:2])
    i, out = 2, []
    for _ in range(n):
        (ln,) = struct.unpack("!i", pl[i:i + 4])
        i += 4
        out.append(pl[i:i + ln])
        i += ln
    return out


# ------------------------------------------------------------------ cancel_wait_timeout
def test_cancel_of_a_waiting_client_is_forwarded_once_it_runs(make_pooler, pg, new_role):
    role = new_role("cwt")
    p = tpooler(make_pooler, pg, role, {"cancel_wait_timeout": 10}, pool_size=1)
    with login(p) as a, login(p) as b:
        a.query_ok("BEGIN")
        b.send(rawpg.query_message("select pg_sleep(30)"))
        wait_for(lambda: console_waiting(p) == 1, 5, "b to wait for a server")
        cc = rawpg.RawConn("127.0.0.1", p.port)
        cc.send(rawpg.cancel_request(b.backend_pid, b.backend_key))
        assert cc.read_message_within(0.5) is None, "the cancel was answered before b ran"
        pools = [r for r in console(p, "SHOW POOLS") if r["database"] == "appdb"]
        assert [r["cl_waiting_cancel_req"] for r in pools] == ["1"], pools
        a.query_ok("COMMIT")                     # b gets the server; its sleep starts
        start = time.monotonic()
        r = _read_result(b)
        assert r.error is not None and r.error.code == "57014", r.rows
        assert time.monotonic() - start < 5
        cc.wait_closed(5)
        assert b.query_ok("select 'b goes on'").rows == [("b goes on",)]


def test_cancel_wait_timeout_gives_up(make_pooler, pg, new_role):
    role = new_role("cwg")
    p = tpooler(make_pooler, pg, role, {"cancel_wait_timeout": 1}, pool_size=1)
    with login(p) as a, login(p) as b:
        a.query_ok("BEGIN")
        b.send(rawpg.query_message("select pg_sleep(0.5), 'b'"))
        wait_for(lambda: console_waiting(p) == 1, 5, "b to wait for a server")
        cc = rawpg.RawConn("127.0.0.1", p.port)
        start = time.monotonic()
        cc.send(rawpg.cancel_request(b.backend_pid, b.backend_key))
        cc.wait_closed(5)
        waited = time.monotonic() - start
        assert 0.8 <= waited < 2.5, "cancel_wait_timeout=1 closed the request after %.2fs" % waited
        time.sleep(0.3)
        a.query_ok("COMMIT")
        r = _read_result(b)                       # the given-up cancel never reaches b's query
        assert r.errors == [] and len(r.rows) == 1, (r.errors, r.rows)


def console_waiting(p):
    return sum(int(r["cl_waiting"]) for r in console(p, "SHOW POOLS") if r["database"] == "appdb")


# ------------------------------------------------------------------ server_fast_close
def test_server_fast_close_ends_idle_sessions_on_reconnect(make_pooler, pg, new_role):
    role = new_role("sfc")
    p = tpooler(make_pooler, pg, role, {"pool_mode": "session", "server_fast_close": 1})
    with login(p) as idle, login(p) as busy:
        idle.query_ok("select 1")
        busy.query_ok("BEGIN")
        console(p, "RECONNECT")
        err, took = closed_with(idle)
        assert err and (err["C"], err["M"]) == ("08P01", "database configuration changed"), err
        assert took < 2
        # a session inside a transaction keeps it, and goes at its end
        assert busy.query_ok("select 'in transaction'").rows == [("in transaction",)]
        busy.query_ok("COMMIT")
        err, _ = closed_with(busy)
        assert err and err["M"] == "database configuration changed", err
    wait_for(lambda: pg.scalar("select count(*) from pg_stat_activity where usename = %s", (role,)) == 0,
             5, "the reconnected servers to close")
    with login(p) as c:
        assert c.query_ok("select 'new session'").rows == [("new session",)]


def test_without_server_fast_close_sessions_survive_reconnect(make_pooler, pg, new_role):
    role = new_role("sfn")
    p = tpooler(make_pooler, pg, role, {"pool_mode": "session"})
    with login(p) as idle:
        idle.query_ok("select 1")
        console(p, "RECONNECT")
        assert idle.read_message_within(1.0) is None
        assert idle.query_ok("select 'kept'").rows == [("kept",)]


# ------------------------------------------------------------------ idle databases and pools
def test_autodb_idle_timeout_frees_star_databases(make_pooler, pg, new_role):
    role = new_role("adb")
    dbs = {"*": "host=127.0.0.1 port=%d user=%s password=%s" % (pg.port, role, APP_PW)}
    p = tpooler(make_pooler, pg, role, {"autodb_idle_timeout": 1, "server_idle_timeout": 1},
                databases=dbs)
    with login(p, APP_DB) as c:
        c.query_ok("select 1")
        assert APP_DB in [r["name"] for r in console(p, "SHOW DATABASES")]
        # the witness that the idle sweep has run: a database used once and left is freed
        with login(p, "postgres") as w:
            w.query_ok("select 1")
        wait_for(lambda: "postgres" not in [r["name"] for r in console(p, "SHOW DATABASES")], 8,
                 "the witness database to be freed")
        assert APP_DB in [r["name"] for r in console(p, "SHOW DATABASES")]   # in use: kept
    # its idle server goes after server_idle_timeout, the database a second later
    wait_for(lambda: APP_DB not in [r["name"] for r in console(p, "SHOW DATABASES")], 8,
             "the unused auto-created database to be freed")
    assert pg.scalar("select count(*) from pg_stat_activity where usename = %s", (role,)) == 0
    with login(p, APP_DB) as c:                       # made again on demand
        assert c.query_ok("select 'again'").rows == [("again",)]


def test_pool_idle_timeout_frees_empty_pools(make_pooler, pg, new_role):
    role = new_role("pit")
    p = tpooler(make_pooler, pg, role, {"pool_idle_timeout": 1, "server_idle_timeout": 1})
    with login(p) as c:
        c.query_ok("select 1")
    assert [r for r in console(p, "SHOW POOLS") if r["database"] == "appdb"]
    wait_for(lambda: not [r for r in console(p, "SHOW POOLS") if r["database"] == "appdb"], 8,
             "the empty pool to be freed")
    with login(p) as c:
        assert c.query_ok("select 'new pool'").rows == [("new pool",)]


def test_server_fast_close_lets_sigint_end_sessions(make_pooler, pg, new_role):
    """SIGINT waits for the servers in use; in session mode an idle session holds its server
    until it leaves, unless server_fast_close ends it at once."""
    role = new_role("sfs")
    p = tpooler(make_pooler, pg, role, {"pool_mode": "session", "server_fast_close": 1})
    with login(p) as c:
        c.query_ok("select 1")
        start = time.monotonic()
        p.signal(signal.SIGINT)
        err, _ = closed_with(c)
        assert err and err["M"] == "database configuration changed", err
    p.proc.wait(5)
    assert time.monotonic() - start < 5
    assert p.proc.returncode == 0, p.log_text()[-2000:]


def test_reload_applies_user_timeouts_to_connected_clients(make_pooler, pg, new_role):
    role = new_role("rlt")
    p = tpooler(make_pooler, pg, role)
    with login(p, user=BOB, pw=BOB_PW) as bob, login(p) as alice:
        bob.query_ok("select 1")
        alice.query_ok("select 1")
        assert bob.read_message_within(1.2) is None       # no client_idle_timeout yet
        p.user_settings[BOB] = "client_idle_timeout=1"
        p.write_files()
        p.reload()
        err, took = closed_with(bob)
        assert err and err["M"] == "client_idle_timeout", err
        assert alice.query_ok("select 'alice stays'").rows == [("alice stays",)]


def test_server_fast_close_on_reload_that_changes_the_database(make_pooler, pg, new_role):
    role = new_role("sfr")
    p = tpooler(make_pooler, pg, role, {"pool_mode": "session", "server_fast_close": 1})
    with login(p) as idle:
        idle.query_ok("select 1")
        p.databases["appdb"] = app_connstr(pg, user=role, application_name="changed")
        p.write_files()
        p.reload()
        err, took = closed_with(idle)
        assert err and err["M"] == "database configuration changed", err
    with login(p) as c:
        assert c.query_ok("show application_name").rows == [("changed",)]
