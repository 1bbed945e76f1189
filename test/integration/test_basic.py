"""Queries through the pooler with the usual clients; notices, LISTEN/NOTIFY, cancel."""
import os
import subprocess
import time

import psycopg
import pytest

import rawpg
from conftest import ALICE, ALICE_PW, APP_DB, APP_USER, app_connstr
from pg import PG_BIN
from util import Bounded, wait_for

PSQL = os.path.join(PG_BIN, "psql")


def psql(pooler, sql, db="appdb", user=ALICE, password=ALICE_PW, extra_env=None, timeout=30):
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
    env.update(extra_env or {})
    return subprocess.run([PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                           str(pooler.port), "-U", user, "-d", db, "-c", sql],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def test_psycopg_query(make_pooler):
    p = make_pooler()
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        row = conn.execute("select 6*7, current_user, current_database()").fetchone()
        assert row == (42, APP_USER, APP_DB)
        # a second statement on the same connection, with parameters (extended protocol)
        assert conn.execute("select %s::int + %s::int", (40, 2)).fetchone() == (42,)


def test_psql_query(make_pooler):
    p = make_pooler()
    res = psql(p, "select 40+2, current_user, current_database()")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "42|%s|%s" % (APP_USER, APP_DB)


def test_libpq_c_program_query(make_pooler, libpq_query):
    p = make_pooler()
    conninfo = "host=127.0.0.1 port=%d dbname=appdb user=%s password=%s connect_timeout=10" % (
        p.port, ALICE, ALICE_PW)
    res = subprocess.run([libpq_query, conninfo, "select 6*7, current_database()"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "42|" + APP_DB


def test_rawpg_query_and_errors(make_pooler):
    p = make_pooler()
    with rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW) as c:
        assert c.params.get("server_version", "").startswith("15"), c.params
        assert c.params.get("client_encoding") == "UTF8"
        assert c.backend_pid is not None and c.backend_key is not None
        r = c.query("select 1/0")
        assert r.error is not None and r.error.code == "22012"
        # the session goes on after an error
        r = c.query_ok("select 'a' as x union all select 'b' order by 1")
        assert r.rows == [("a",), ("b",)] and r.tags == ["SELECT 2"]
        # several statements in one simple query
        r = c.query_ok("select 1; select 2")
        assert r.rows == [("1",), ("2",)] and r.tags == ["SELECT 1", "SELECT 1"]
        c.terminate()


def test_notice_reaches_client(make_pooler):
    p = make_pooler()
    notices = []
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        conn.add_notice_handler(lambda d: notices.append((d.severity_nonlocalized, d.message_primary)))
        conn.execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$")
    assert notices == [("NOTICE", "hello 42")]


def test_listen_notify_between_two_clients(make_pooler):
    p = make_pooler()
    with rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW) as listener:
        listener.query_ok("LISTEN tb_chan")
        with p.connect("appdb", ALICE, ALICE_PW) as sender:
            sender_pid = sender.execute("select pg_backend_pid()").fetchone()[0]
            sender.execute("NOTIFY tb_chan, 'payload one'")
            sender.execute("select pg_notify('tb_chan', 'payload two')")
        # delivered while the listener is idle: the pooler must forward asynchronous messages
        n1 = listener.read_notification(10)
        n2 = listener.read_notification(10)
        assert n1 == {"pid": sender_pid, "channel": "tb_chan", "payload": "payload one"}
        assert n2 == {"pid": sender_pid, "channel": "tb_chan", "payload": "payload two"}
        assert listener.query_ok("select 1").rows == [("1",)]


def test_cancel_request_through_pooler(make_pooler, pg):
    """psycopg's cancel() sends a CancelRequest with the key the pooler gave the client."""
    p = make_pooler()
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]
        run = Bounded(conn.execute, "select pg_sleep(30)")
        # cancel only once the sleep is really running on the server
        wait_for(lambda: run.done() or pg.scalar(
            "select count(*) from pg_stat_activity where pid = %s and state = 'active' "
            "and query like 'select pg_sleep(30)%%'", (pid,)) == 1, 10, "pg_sleep to start")
        start = time.monotonic()
        conn.cancel()
        with pytest.raises(psycopg.errors.QueryCanceled):
            run.result(10, "cancelled pg_sleep(30)")
        assert time.monotonic() - start < 5
        assert conn.execute("select pg_backend_pid()").fetchone()[0] == pid


def test_cancel_with_unknown_key_is_ignored(make_pooler):
    p = make_pooler()
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        with rawpg.RawConn("127.0.0.1", p.port, timeout=5) as c:
            c.send(rawpg.cancel_request(12345, 67890))
            got, _ = c.wait_closed(5)
            assert got == b""  # a CancelRequest gets no answer, just a close
        assert conn.execute("select 7").fetchone() == (7,)


def test_unix_socket(make_pooler):
    p = make_pooler(start=False)
    p.settings["unix_socket_dir"] = p.workdir
    p.write_files()
    p.start()
    assert os.path.exists(os.path.join(p.workdir, ".s.PGSQL.%d" % p.port))
    res = subprocess.run([PSQL, "-X", "-At", "-h", p.workdir, "-p", str(p.port), "-U", ALICE, "-d", "appdb",
                          "-c", "select 'via unix socket'"],
                         env={"PATH": "/usr/bin:/bin", "PGPASSWORD": ALICE_PW, "PGCONNECT_TIMEOUT": "10"},
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "via unix socket"
    with p.connect("appdb", ALICE, ALICE_PW, host=p.workdir) as conn:
        assert conn.execute("select 8").fetchone() == (8,)


def test_extended_protocol_and_pipeline(make_pooler):
    p = make_pooler()
    with p.connect("appdb", ALICE, ALICE_PW, prepare_threshold=0) as conn:
        # server-side prepared statements (Parse/Bind/Execute with a name)
        for i in range(5):
            assert conn.execute("select %s::int * 2", (i,)).fetchone() == (i * 2,)
        n = conn.execute("select count(*) from pg_prepared_statements").fetchone()[0]
        assert n >= 1
        # many messages in flight at once
        with conn.pipeline():
            curs = [conn.execute("select %s::int + 1", (i,)) for i in range(200)]
        assert [c.fetchone()[0] for c in curs] == [i + 1 for i in range(200)]
        # binary results
        assert conn.execute("select 'bin'::text", binary=True).fetchone() == ("bin",)


def test_startup_parameters_reach_the_server(make_pooler, pg):
    """application_name, TimeZone and DateStyle from the StartupMessage apply to the session, also
    when the server connection is reused by a client with other values."""
    p = make_pooler(databases={"appdb": app_connstr(pg, pool_size=1)})
    with rawpg.RawConn("127.0.0.1", p.port) as c:
        c.login(ALICE, "appdb", ALICE_PW, application_name="tb_app_one", TimeZone="Asia/Tokyo",
                DateStyle="SQL, DMY")
        assert c.params.get("application_name") == "tb_app_one"
        assert c.params.get("TimeZone") == "Asia/Tokyo"
        r = c.query_ok("select current_setting('application_name'), current_setting('TimeZone'), "
                       "current_setting('DateStyle'), pg_backend_pid()")
        name, tz, ds, pid1 = r.rows[0]
        assert (name, tz, ds) == ("tb_app_one", "Asia/Tokyo", "SQL, DMY")
        c.terminate()
    with rawpg.RawConn("127.0.0.1", p.port) as c:
        c.login(ALICE, "appdb", ALICE_PW, application_name="tb_app_two", TimeZone="America/New_York")
        r = c.query_ok("select current_setting('application_name'), current_setting('TimeZone'), "
                       "current_setting('DateStyle'), pg_backend_pid()")
        name, tz, ds, pid2 = r.rows[0]
        assert pid2 == pid1, "expected the single server to be reused"
        assert (name, tz) == ("tb_app_two", "America/New_York")
        assert ds == "ISO, MDY"  # back to the server default
        c.terminate()
