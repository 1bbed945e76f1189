"""Pooling core II: transaction and statement pooling, pool_mode per alias and per user,
parameter sync between clients sharing a server, cancel routing, COPY and failed transactions
in transaction mode, and real drivers (pgbench, psycopg pipelines, libpq, JDBC) through it.

The drivers here run with named prepared statements off (psycopg prepare_threshold=None,
pgbench -M simple/extended, JDBC prepareThreshold=0, libpq PQexecParams), to test the plain
data path; test_drivers.py runs every driver with its defaults through max_prepared_statements.
"""
import os
import random
import shutil
import subprocess
import tempfile
import time

import psycopg
import pytest

import rawpg
from conftest import ALICE, ALICE_PW, APP_DB, app_connstr
from pgbench import run_pgbench
from pooler import is_pgbouncer
from test_pool import BackendMonitor
from util import Bounded, wait_for


def tx_pooler(make_pooler, pg, role, pool_size=1, settings=None, **kw):
    """A pooler in transaction mode whose alias appdb logs in to db app as `role`."""
    s = {"pool_mode": "transaction"}
    s.update(settings or {})
    return make_pooler(settings=s, databases={"appdb": app_connstr(pg, user=role, pool_size=pool_size)}, **kw)


def connect(p, **kw):
    """psycopg connection to appdb as alice, no named prepared statements (not supported in
    transaction mode yet)."""
    kw.setdefault("prepare_threshold", None)
    return p.connect("appdb", ALICE, ALICE_PW, **kw)


def raw_login(p, **extra):
    return rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, **extra)


def backend_states(pg, role):
    """[(pid, state, query)] of the role's client backends, on PostgreSQL directly."""
    return pg.sql("select pid, state, query from pg_stat_activity where usename = %s "
                  "and backend_type = 'client backend' order by pid", (role,))


def wait_active(pg, role, like, n, timeout=10, also=None):
    """Wait until n backends of role are 'active' running a query LIKE like."""
    def ok():
        if also is not None and also():
            return True
        return pg.scalar("select count(*) from pg_stat_activity where usename = %s and "
                         "state = 'active' and query like %s", (role, like)) == n
    wait_for(ok, timeout, "%d active %r queries of %s" % (n, like, role), interval=0.02)


# ------------------------------------------------------------------ transaction mode basics
def test_transaction_mode_shares_one_server(make_pooler, pg, new_role):
    role = new_role("tx1")
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    with connect(p) as a, connect(p) as b:
        # both clients stay connected; with pool_size=1 they take turns on one server
        pids = set()
        for i in range(5):
            pids.add(a.execute("select pg_backend_pid()").fetchone()[0])
            pids.add(b.execute("select pg_backend_pid()").fetchone()[0])
            with a.transaction():
                a.execute("select %s::int", (i,))
                pids.add(a.execute("select pg_backend_pid()").fetchone()[0])
        assert len(pids) == 1, pids
        assert pg.backends(role) == 1


def test_transaction_keeps_server_until_commit(make_pooler, pg, new_role):
    """Inside BEGIN the server stays with the client; another client waits until COMMIT."""
    role = new_role("tx2")
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    with connect(p) as a, connect(p) as b:
        a.execute("BEGIN")
        a.execute("create temp table t_in_tx(x int)")
        a_pid = a.execute("select pg_backend_pid()").fetchone()[0]
        other = Bounded(lambda: b.execute("select pg_backend_pid()").fetchone()[0])
        # b has to wait: the only server is in a's transaction (checked on PostgreSQL: the
        # backend is idle in transaction while b's query is queued in the pooler)
        wait_for(lambda: ("idle in transaction" in [s for _, s, _ in backend_states(pg, role)]), 10,
                 "a's backend idle in transaction")
        assert not other.done(), "b got a server while a's transaction was open"
        a.execute("insert into t_in_tx values (1)")
        assert a.execute("select pg_backend_pid()").fetchone()[0] == a_pid
        a.execute("COMMIT")
        assert other.result(10, "b's query after a's COMMIT") == a_pid


def test_failed_transaction_keeps_server_until_rollback(make_pooler, pg, new_role):
    """An error inside BEGIN ('E' state): the server stays with the client until ROLLBACK,
    then the next transaction works, for this client and for the waiting one."""
    role = new_role("txe")
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    with raw_login(p) as a, connect(p) as b:
        assert a.query_ok("BEGIN").tags == ["BEGIN"]
        r = a.query("select 1/0")
        assert r.error is not None and r.error.code == "22012"
        other = Bounded(lambda: b.execute("select 'b ran'").fetchone()[0])
        wait_for(lambda: "idle in transaction (aborted)" in [s for _, s, _ in backend_states(pg, role)],
                 10, "backend in aborted transaction")
        r = a.query("select 1")
        assert r.error is not None and r.error.code == "25P02", r.errors
        assert not other.done(), "b got the server while a was in a failed transaction"
        assert a.query_ok("ROLLBACK").tags == ["ROLLBACK"]
        assert other.result(10, "b after a's ROLLBACK") == "b ran"
        r = a.query_ok("BEGIN; select 41 + 1; COMMIT")
        assert r.rows == [("42",)]
        a.terminate()


def _extended(sql):
    """Unnamed Parse/Bind/Execute for sql, no Sync."""
    import struct
    cs = lambda x: x.encode() + b"\0"  # noqa: E731
    return (rawpg.message("P", cs("") + cs(sql) + struct.pack("!H", 0)) +
            rawpg.message("B", cs("") + cs("") + struct.pack("!HHH", 0, 0, 0)) +
            rawpg.message("E", cs("") + struct.pack("!I", 0)))


def test_extended_protocol_holds_server_until_sync(make_pooler, pg, new_role):
    """Parse/Bind/Execute + Flush without Sync: the server stays with the client (it is in an
    implicit transaction) until the Sync's ReadyForQuery."""
    role = new_role("txext")
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    with raw_login(p) as a, connect(p) as b:
        a.send(_extended("select pg_backend_pid()") + rawpg.message("H"))
        got = []
        while "C" not in got:
            t, body = a.read_message()
            got.append(t)
            if t == "D":
                a_pid = int(body[6:].decode())
        assert got == ["1", "2", "D", "C"], got
        other = Bounded(lambda: b.execute("select pg_backend_pid()").fetchone()[0])
        try:
            other.result(0.7, "b's query while a has unsynced extended messages")
            raise AssertionError("b got the server while a had not sent Sync")
        except AssertionError as e:
            if "did not finish" not in str(e):
                raise
        a.send(_extended("select 2") + rawpg.message("S"))
        got = []
        while "Z" not in got:
            got.append(a.read_message()[0])
        assert got == ["1", "2", "D", "C", "Z"], got
        assert other.result(10, "b after a's Sync") == a_pid
        assert a.query_ok("select 3").rows == [("3",)]
        a.terminate()


def test_copy_inside_transactions(make_pooler, pg, new_role):
    role = new_role("txcopy")
    pg.sql('create table "tb_copy_%s" (id int, v text)' % role, dbname=APP_DB)
    pg.sql('grant all on "tb_copy_%s" to "%s"' % (role, role), dbname=APP_DB)
    table = '"tb_copy_%s"' % role
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    with connect(p, autocommit=False) as a, connect(p) as b:
        cur = a.cursor()
        # BEGIN; COPY ... FROM STDIN; COMMIT
        with a.transaction():
            with cur.copy("COPY %s (id, v) FROM STDIN" % table) as cp:
                for i in range(1000):
                    cp.write_row((i, "row %d" % i))
            assert cur.execute("select count(*) from %s" % table).fetchone() == (1000,)
        assert b.execute("select count(*), sum(id) from %s" % table).fetchone() == (1000, 499500)
        # COPY TO STDOUT in a transaction
        with a.transaction():
            with cur.copy("COPY (select id from %s where id < 5 order by id) TO STDOUT" % table) as cp:
                got = [row for row in cp.rows()]
        assert got == [("0",), ("1",), ("2",), ("3",), ("4",)]
        # a COPY the client aborts (CopyFail) inside a transaction: rolled back, next one works
        with pytest.raises((RuntimeError, psycopg.errors.QueryCanceled)):
            with a.transaction():
                with cur.copy("COPY %s (id, v) FROM STDIN" % table) as cp:
                    cp.write_row((-1, "never"))
                    raise RuntimeError("client gives up")
        with a.transaction():
            assert cur.execute("select count(*) from %s where id = -1" % table).fetchone() == (0,)
        assert b.execute("select count(*) from %s" % table).fetchone() == (1000,)
    assert pg.scalar("select count(*) from %s" % table, dbname=APP_DB) == 1000


def test_copy_through_psql_in_transaction_mode(make_pooler, pg, new_role):
    """psql's \\copy FROM STDIN in an explicit transaction, with other clients in between."""
    from test_basic import psql
    role = new_role("txpsql")
    table = '"tb_psql_%s"' % role
    pg.sql("create table %s (id int)" % table, dbname=APP_DB)
    pg.sql('grant all on %s to "%s"' % (table, role), dbname=APP_DB)
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    script = ("BEGIN;\n\\copy %s from program 'seq 1 500'\nselect count(*) from %s;\nCOMMIT;\n"
              % (table, table))
    path = os.path.join(p.workdir, "copy.sql")
    with open(path, "w") as f:
        f.write(script)
    from test_basic import PSQL
    res = subprocess.run([PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(p.port),
                          "-U", ALICE, "-d", "appdb", "-f", path],
                         env={"PATH": "/usr/bin:/bin", "PGPASSWORD": ALICE_PW, "PGCONNECT_TIMEOUT": "10"},
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "500" in res.stdout.split()
    assert psql(p, "select count(*) from %s" % table).stdout.strip() == "500"


# ------------------------------------------------------------------ statement mode, mode selection
def test_statement_mode_refuses_transaction_blocks(make_pooler, pg, new_role):
    role = new_role("stmt")
    p = make_pooler(settings={"pool_mode": "statement"},
                    databases={"appdb": app_connstr(pg, user=role, pool_size=1)})
    with connect(p) as a, connect(p) as b:
        assert a.execute("select 1").fetchone() == (1,)
        assert b.execute("select 2").fetchone() == (2,)
    with raw_login(p) as c:
        # The answer to BEGIN must be the FATAL error, not a ReadyForQuery('T') that makes the
        # client believe it is in a transaction (PgBouncer sends the error in its place).
        c.send(rawpg.query_message("BEGIN"))
        got, _ = c.wait_closed(5)
        msgs = rawpg.parse_messages(got)
        types = [t for t, _ in msgs]
        errors = [rawpg.parse_error_fields(b) for t, b in msgs if t == "E"]
        assert errors, "no ErrorResponse for BEGIN in statement mode; got %r" % types
        e = errors[0]
        assert e["S"] == "FATAL"
        assert e["C"] == ("08P01" if is_pgbouncer() else "25001"), e
        assert "transaction blocks" in e["M"] and "statement pooling mode" in e["M"], e
        assert "Z" not in types, ("BEGIN's ReadyForQuery was forwarded before the FATAL error: %r" % types)
    # psycopg without autocommit opens a transaction block: refused the same way
    with connect(p, autocommit=False) as d:
        with pytest.raises(psycopg.Error) as ei:
            d.execute("select 1")
            d.execute("select 2")
        assert "transaction blocks" in str(ei.value)
    # no transaction was left open on the server, and the pool goes on serving
    wait_for(lambda: all(s == "idle" for _, s, _ in backend_states(pg, role)), 10,
             "no backend left in a transaction")
    with connect(p) as e:
        assert e.execute("select 3").fetchone() == (3,)


def _two_client_pids(p, db, user, password):
    """Backend pids of two clients connected at the same time (each runs one query)."""
    with p.connect(db, user, password, prepare_threshold=None) as a, \
            p.connect(db, user, password, prepare_threshold=None) as b:
        pa = a.execute("select pg_backend_pid()").fetchone()[0]
        pb = b.execute("select pg_backend_pid()").fetchone()[0]
        return pa, pb


def test_pool_mode_per_alias_and_per_user(make_pooler, pg, new_role):
    """Session mode: two connected clients hold two servers; transaction mode: the second
    reuses the first one's server. Global session, alias txdb transaction, user bob session on
    every alias, user carol transaction on every alias. The aliases name no user, so each
    client user logs in upstream as itself (its pool's user is its own name, which is what
    PgBouncer's [users] pool_mode is looked up by)."""
    alice, bob, carol = new_role("m_al", "Al-Pw-1"), new_role("m_bob", "Bob-Pw-1"), new_role("m_car", "Car-Pw-1")
    pws = {alice: "Al-Pw-1", bob: "Bob-Pw-1", carol: "Car-Pw-1"}
    p = make_pooler(settings={"pool_mode": "session", "auth_type": "md5"},
                    databases={"sessdb": app_connstr(pg, user=None, password=None, pool_size=2),
                               "txdb": app_connstr(pg, user=None, password=None, pool_size=2,
                                                   pool_mode="transaction")},
                    users=pws,
                    user_settings={bob: "pool_mode=session", carol: "pool_mode=transaction"})
    pa, pb = _two_client_pids(p, "sessdb", alice, pws[alice])
    assert pa != pb, "global session mode: two clients shared a server"
    pa, pb = _two_client_pids(p, "txdb", alice, pws[alice])
    assert pa == pb, "alias pool_mode=transaction: the second client did not reuse the server"
    pa, pb = _two_client_pids(p, "txdb", bob, pws[bob])
    assert pa != pb, "user pool_mode=session on a transaction alias: clients shared a server"
    pa, pb = _two_client_pids(p, "sessdb", carol, pws[carol])
    assert pa == pb, "user pool_mode=transaction on a session alias: no sharing"


# ------------------------------------------------------------------ parameter sync
def test_parameters_follow_each_client(make_pooler, pg, new_role):
    """pool_size=1, transaction mode: SET by one client must not leak to the other, and each
    client sees its own values again on its next transaction (SHOW and ParameterStatus)."""
    role = new_role("psync")
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    default_tz = pg.scalar("select reset_val from pg_settings where name = 'TimeZone'")
    assert default_tz != "Asia/Tokyo"
    with connect(p) as a, connect(p, client_encoding="LATIN1") as b:
        pid = a.execute("select pg_backend_pid()").fetchone()[0]
        a.execute("SET TimeZone = 'Asia/Tokyo'")
        a.execute("SET DateStyle = 'SQL, DMY'")
        # PgBouncer 1.18 does not track IntervalStyle, nor sync an empty application_name
        # (the reference run leaves them alone)
        track_is = not is_pgbouncer()
        if track_is:
            a.execute("SET IntervalStyle = 'postgres_verbose'")
            a.execute("SET application_name = 'tb_client_a'")
        a.execute("SET standard_conforming_strings = off")
        assert a.info.parameter_status("TimeZone") == "Asia/Tokyo"
        assert a.info.parameter_status("DateStyle") == "SQL, DMY"
        assert a.info.parameter_status("IntervalStyle") == ("postgres_verbose" if track_is else "postgres")
        assert a.info.parameter_status("application_name") == ("tb_client_a" if track_is else "")
        assert a.info.parameter_status("standard_conforming_strings") == "off"

        def show(conn):
            return conn.execute(
                "select current_setting('TimeZone'), current_setting('DateStyle'), "
                "current_setting('IntervalStyle'), current_setting('application_name'), "
                "current_setting('standard_conforming_strings'), current_setting('client_encoding'), "
                "length(%s::text), pg_backend_pid()", ("\u00e9t\u00e9",)).fetchone()

        want_a = ("Asia/Tokyo", "SQL, DMY", "postgres_verbose" if track_is else "postgres",
                  "tb_client_a" if track_is else "", "off", "UTF8", 3, pid)
        want_b = (default_tz, "ISO, MDY", "postgres", "", "on", "LATIN1", 3, pid)
        for rnd in range(3):
            assert show(b) == want_b, "round %d: client b sees client a's settings" % rnd
            assert show(a) == want_a, "round %d: client a lost its settings" % rnd
        assert b.info.parameter_status("TimeZone") == default_tz
        assert b.info.parameter_status("client_encoding") == "LATIN1"
        assert b.info.parameter_status("standard_conforming_strings") == "on"
        assert a.info.parameter_status("TimeZone") == "Asia/Tokyo"
        assert a.info.parameter_status("client_encoding") == "UTF8"
        # a SET rolled back reverts (PostgreSQL reports the old value again)
        with pytest.raises(psycopg.errors.DivisionByZero):
            with a.transaction():
                a.execute("SET TimeZone = 'Europe/Paris'")
                assert a.info.parameter_status("TimeZone") == "Europe/Paris"
                a.execute("select 1/0")
        assert a.info.parameter_status("TimeZone") == "Asia/Tokyo"
        assert show(b)[0] == default_tz
        assert show(a)[0] == "Asia/Tokyo"
        # SET LOCAL lasts for its transaction only
        with a.transaction():
            a.execute("SET LOCAL TimeZone = 'America/Lima'")
            assert a.execute("show TimeZone").fetchone() == ("America/Lima",)
        assert show(b)[0] == default_tz
        assert show(a)[0] == "Asia/Tokyo"
        # RESET brings a back to the server default
        a.execute("RESET TimeZone")
        assert a.info.parameter_status("TimeZone") == default_tz
        assert show(b)[0] == default_tz and show(a)[0] == default_tz


def test_startup_parameters_synced_in_transaction_mode(make_pooler, pg, new_role):
    """Values from the StartupMessage (rawpg) are applied before each transaction."""
    role = new_role("psync2")
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    q = "select current_setting('TimeZone'), current_setting('application_name'), current_setting('DateStyle')"
    with raw_login(p, TimeZone="Asia/Tokyo", application_name="raw_a") as a, \
            raw_login(p, TimeZone="America/New_York", application_name="raw_b", DateStyle="German") as b:
        assert a.params["TimeZone"] == "Asia/Tokyo" and b.params["TimeZone"] == "America/New_York"
        for _ in range(3):
            assert a.query_ok(q).rows == [("Asia/Tokyo", "raw_a", "ISO, MDY")]
            assert b.query_ok(q).rows == [("America/New_York", "raw_b", "German, DMY")]
        a.terminate()
        b.terminate()


# ------------------------------------------------------------------ cancel
def test_cancel_reaches_the_right_server(make_pooler, pg, new_role):
    """Two clients, pool of 2, both in pg_sleep(5): cancelling one stops only that one."""
    role = new_role("cancel2")
    p = tx_pooler(make_pooler, pg, role, pool_size=2)
    with connect(p) as a, connect(p) as b:
        ka = a.info.backend_pid
        real = {a.execute("select pg_backend_pid()").fetchone()[0]}
        assert ka not in real, "the client sees the server's real pid as its cancel key pid"
        ra = Bounded(a.execute, "select pg_sleep(5)")
        rb = Bounded(b.execute, "select pg_sleep(5)")
        wait_active(pg, role, "select pg_sleep(5)%", 2, also=lambda: ra.done() or rb.done())
        start = time.monotonic()
        a.cancel()
        with pytest.raises(psycopg.errors.QueryCanceled):
            ra.result(5, "cancelled pg_sleep(5)")
        latency = time.monotonic() - start
        print("cancel latency: %.3fs" % latency)
        assert latency < 2, "cancel took %.2fs" % latency
        # the other sleeper is untouched and finishes normally
        assert pg.scalar("select count(*) from pg_stat_activity where usename = %s and state = 'active' "
                         "and query like 'select pg_sleep(5)%%'", (role,)) == 1
        rb.result(10, "the other pg_sleep(5)")
        assert a.execute("select 'a still works'").fetchone() == ("a still works",)


def test_cancel_with_forged_key_or_for_idle_client_does_nothing(make_pooler, pg, new_role):
    role = new_role("cancelx")
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    with raw_login(p) as a, raw_login(p) as b:
        real_pid = int(a.query_ok("select pg_backend_pid()").rows[0][0])
        assert (a.backend_pid, a.backend_key) != (b.backend_pid, b.backend_key)
        assert a.backend_pid != real_pid
        # a is idle now; b runs on the same (only) server
        run = Bounded(b.query, "select pg_sleep(1.5), 'b done'")
        wait_active(pg, role, "select pg_sleep(1.5)%", 1, also=run.done)
        for pid, key in ((a.backend_pid, a.backend_key),                # idle client's real key
                         (b.backend_pid, b.backend_key ^ 0x5a5a5a5a),   # b's pid, wrong key
                         (real_pid, random.getrandbits(32)),            # the server's own pid
                         (random.getrandbits(32), random.getrandbits(32))):
            with rawpg.RawConn("127.0.0.1", p.port, timeout=5) as c:
                c.send(rawpg.cancel_request(pid, key))
                got, _ = c.wait_closed(5)
                assert got == b""
        r = run.result(10, "b's pg_sleep(1.5)")
        assert not r.errors, [e.fields for e in r.errors]
        assert r.rows == [("", "b done")]
        a.terminate()
        b.terminate()


def test_cancel_with_the_right_key_after_forged_ones(make_pooler, pg, new_role):
    """rawpg's CancelRequest with the key from BackendKeyData cancels (control for the above)."""
    role = new_role("cancelr")
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    with raw_login(p) as a:
        run = Bounded(a.query, "select pg_sleep(10)")
        wait_active(pg, role, "select pg_sleep(10)%", 1, also=run.done)
        with rawpg.RawConn("127.0.0.1", p.port, timeout=5) as c:
            c.send(rawpg.cancel_request(a.backend_pid, a.backend_key))
            c.wait_closed(5)
        r = run.result(5, "cancelled pg_sleep(10)")
        assert r.error is not None and r.error.code == "57014"
        assert a.query_ok("select 1").rows == [("1",)]
        a.terminate()


# ------------------------------------------------------------------ real clients
@pytest.mark.parametrize("mode", ["simple", "extended"])
def test_pgbench_transaction_mode(make_pooler, pg, bench_role, mode):
    role = bench_role("pgb" + mode[0])
    p = make_pooler(settings={"pool_mode": "transaction"},
                    databases={"benchdb": app_connstr(pg, dbname="bench", user=role, pool_size=3)})
    with BackendMonitor(pg, role) as mon:
        res = run_pgbench(p.port, "benchdb", ALICE, ALICE_PW,
                          ["-n", "-c", "8", "-j", "2", "-T", "4", "-M", mode], timeout=60)
    ok, why = res.ok()
    assert ok, why
    print("pgbench -M %s: %d transactions, %s failed" % (mode, res.processed, res.failed))
    assert res.failed == 0
    assert mon.max_seen <= 3, "pool_size=3 but %d backends" % mon.max_seen


def test_pgbench_init_through_pooler(make_pooler, pg, new_role):
    """pgbench -i: DDL, and COPY FROM STDIN inside a transaction, through transaction mode."""
    role = new_role("pgbi")
    pg.sql('create schema "s_%s" authorization "%s"' % (role, role), dbname=APP_DB)
    pg.sql('alter role "%s" set search_path = "s_%s"' % (role, role))
    p = tx_pooler(make_pooler, pg, role, pool_size=2)
    res = run_pgbench(p.port, "appdb", ALICE, ALICE_PW, ["-i", "-s", "1", "-q", "-n"], timeout=120)
    assert res.returncode == 0, res.stderr
    assert pg.scalar('select count(*) from "s_%s".pgbench_accounts' % role, dbname=APP_DB) == 100000


def test_psycopg_pipeline_transaction_mode(make_pooler, pg, new_role):
    # prepare_threshold=None: psycopg would otherwise prepare named statements after 5
    # executions, and named prepared statements are not supported in transaction mode yet.
    role = new_role("pipe")
    table = '"tb_pipe_%s"' % role
    pg.sql("create table %s (who text, n int)" % table, dbname=APP_DB)
    pg.sql('grant all on %s to "%s"' % (table, role), dbname=APP_DB)
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    with connect(p) as a, connect(p, autocommit=False) as b:
        for rnd in range(3):
            # autocommit pipeline: each statement its own implicit transaction, one Sync at the end
            with a.pipeline():
                curs = [a.execute("select %s::int * 10", (i,)) for i in range(20)]
                a.execute("insert into " + table + " values ('a', %s)", (rnd,))
                last = a.execute("select count(*) from " + table + " where who = 'a'")
            assert [c.fetchone()[0] for c in curs] == [i * 10 for i in range(20)]
            assert last.fetchone()[0] == rnd + 1
            # a transaction in a pipeline: BEGIN ... COMMIT inside, other client in between
            with b.pipeline():
                with b.transaction():
                    for i in range(5):
                        b.execute("insert into " + table + " values ('b', %s)", (rnd * 10 + i,))
                    cnt = b.execute("select count(*) from " + table + " where who = 'b'")
            assert cnt.fetchone()[0] == (rnd + 1) * 5
            assert a.execute("select count(*) from " + table + " where who = 'b'").fetchone()[0] == (rnd + 1) * 5
        # an error in the middle of a pipeline aborts the rest; both connections go on working
        with pytest.raises(psycopg.errors.DivisionByZero):
            with a.pipeline():
                a.execute("select 1")
                a.execute("select 1/0")
                a.execute("select 2")
        assert a.execute("select 'a ok'").fetchone() == ("a ok",)
        assert b.execute("select 'b ok'").fetchone() == ("b ok",)
        b.commit()
    assert pg.scalar("select count(*) from %s" % table, dbname=APP_DB) == 3 + 15


def test_libpq_program_transaction_mode(make_pooler, pg, new_role, libpq_tx):
    role = new_role("libpq")
    pg.sql("create table if not exists tb_libpq (id int, n int)", dbname=APP_DB)
    pg.sql('grant all on tb_libpq to "%s"' % role, dbname=APP_DB)
    ids = [random.randint(1, 1 << 30) for _ in range(3)]
    p = tx_pooler(make_pooler, pg, role, pool_size=1)
    conninfo = "host=127.0.0.1 port=%d dbname=appdb user=%s password=%s connect_timeout=10 sslmode=disable" % (
        p.port, ALICE, ALICE_PW)
    procs = [subprocess.Popen([libpq_tx, conninfo, str(i), "20"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in ids]
    for i, pr in zip(ids, procs):
        out, err = pr.communicate(timeout=60)
        assert pr.returncode == 0, "libpq_tx %d: %s" % (i, err)
        assert out.strip() == "ok 20"
    assert pg.backends(role) <= 1
    assert pg.scalar("select count(*) from tb_libpq where id = any(%s)", (ids,), dbname=APP_DB) == 60


JDBC_JAR = "/usr/share/java/postgresql.jar"
JDBC_SRC = r"""
import java.sql.*;
import java.util.Properties;

/* JdbcTx URL USER PASSWORD TABLE ID: transactions with batches, autocommit queries, a failed
 * transaction rolled back. Prints "ok N" (rows of ID in TABLE). */
public class JdbcTx {
    public static void main(String[] a) throws Exception {
        Properties pr = new Properties();
        pr.setProperty("user", a[1]);
        pr.setProperty("password", a[2]);
        pr.setProperty("sslmode", "disable");
        pr.setProperty("connectTimeout", "10");
        pr.setProperty("socketTimeout", "30");
        // 0: never switch to named server-side prepared statements (not supported in
        // transaction mode yet); every statement stays an unnamed Parse/Bind/Execute.
        pr.setProperty("prepareThreshold", "0");
        String table = a[3];
        int id = Integer.parseInt(a[4]);
        try (Connection c = DriverManager.getConnection(a[0], pr)) {
            for (int t = 0; t < 10; t++) {
                c.setAutoCommit(false);
                try (PreparedStatement ps = c.prepareStatement("insert into " + table + " values (?, ?)")) {
                    for (int i = 0; i < 5; i++) {
                        ps.setInt(1, id);
                        ps.setInt(2, t * 5 + i);
                        ps.addBatch();
                    }
                    ps.executeBatch();
                }
                c.commit();
                c.setAutoCommit(true);
                try (PreparedStatement q = c.prepareStatement("select count(*) from " + table + " where id = ?")) {
                    q.setInt(1, id);
                    try (ResultSet rs = q.executeQuery()) {
                        rs.next();
                        if (rs.getInt(1) != (t + 1) * 5)
                            throw new RuntimeException("count " + rs.getInt(1) + " after " + (t + 1) + " transactions");
                    }
                }
            }
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.execute("insert into " + table + " values (" + id + ", -1)");
                s.execute("select 1/0");
                throw new RuntimeException("1/0 did not fail");
            } catch (SQLException e) {
                if (!"22012".equals(e.getSQLState())) throw e;
                c.rollback();
            }
            c.setAutoCommit(true);
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
                    "select count(*) from " + table + " where id = " + id)) {
                rs.next();
                System.out.println("ok " + rs.getInt(1));
            }
        }
    }
}
"""


def test_jdbc_transaction_mode(make_pooler, pg, new_role):
    """pgjdbc (Debian libpostgresql-jdbc-java) through transaction mode, several JVM clients
    on one server. pgjdbc sends extra_float_digits at startup, which must be ignored."""
    java = shutil.which("java")
    if not java or not os.path.exists(JDBC_JAR):
        pytest.fail("java or %s missing (scripts/deps.sh installs default-jdk-headless and "
                    "libpostgresql-jdbc-java)" % JDBC_JAR)
    role = new_role("jdbc")
    table = '"tb_jdbc_%s"' % role
    pg.sql("create table %s (id int, n int)" % table, dbname=APP_DB)
    pg.sql('grant all on %s to "%s"' % (table, role), dbname=APP_DB)
    p = tx_pooler(make_pooler, pg, role, pool_size=1,
                  settings={"ignore_startup_parameters": "extra_float_digits"})
    d = tempfile.mkdtemp(prefix="tbjdbc")
    try:
        src = os.path.join(d, "JdbcTx.java")
        with open(src, "w") as f:
            f.write(JDBC_SRC)
        url = "jdbc:postgresql://127.0.0.1:%d/appdb" % p.port
        procs = [subprocess.Popen([java, "-Xshare:auto", "-cp", JDBC_JAR, src, url, ALICE, ALICE_PW,
                                   table, str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, cwd=d) for i in (1, 2)]
        for pr in procs:
            out, err = pr.communicate(timeout=120)
            assert pr.returncode == 0, "java client failed:\n%s\n%s" % (out, err[-4000:])
            assert out.strip() == "ok 50", out
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert pg.scalar("select count(*) from %s" % table, dbname=APP_DB) == 100
