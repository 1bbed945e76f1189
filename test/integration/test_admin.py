"""The admin console (issue 6): login rules, every SHOW with PgBouncer 1.25's columns in order,
control commands with PgBouncer's semantics, SET, stats averages, the /metrics endpoint, and
Debian's prometheus-pgbouncer-exporter run unchanged against the console."""
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

import psycopg
import pytest

import rawpg
from conftest import ALICE, ALICE_PW, APP_DB, APP_USER, app_connstr
from pg import PG_BIN
from pooler import is_pgbouncer
from rawpg import scram_secret
from util import Bounded, free_port, port_accepts, wait_for

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: tokenbouncer's console")

PSQL = os.path.join(PG_BIN, "psql")
PGBENCH = os.path.join(PG_BIN, "pgbench")
ADMIN, ADMIN_PW = "admin", "Admin-Pw-91ac3e"
WATCHER, WATCHER_PW = "watcher", "Watcher-Pw-27bd10"   # in stats_users
NOBODY, NOBODY_PW = "nobody", "Nobody-Pw-5f0a4c"       # in neither list

# ---- PgBouncer 1.25's columns, in order; tokenbouncer's extras only at the end ----

SOCKET_COLS = ["type", "user", "database", "replication", "state", "addr", "port", "local_addr",
               "local_port", "connect_time", "request_time", "wait", "wait_us", "close_needed",
               "ptr", "link", "remote_pid", "tls", "application_name", "prepared_statements", "id"]
BUFFER_COLS = ["recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain", "pkt_avail",
               "send_avail"]
STATS_TOTAL_NAMES = ["server_assignment_count", "xact_count", "query_count", "received", "sent",
                     "xact_time", "query_time", "wait_time", "client_parse_count",
                     "server_parse_count", "bind_count"]
COLUMNS = {
    "VERSION": ["version"],
    "CONFIG": ["key", "value", "default", "changeable"],
    "DATABASES": ["name", "host", "port", "database", "force_user", "pool_size", "min_pool_size",
                  "reserve_pool_size", "server_lifetime", "pool_mode", "load_balance_hosts",
                  "max_connections", "current_connections", "max_client_connections",
                  "current_client_connections", "paused", "disabled",
                  "reserve_pool"],                       # legacy name, read by exporter 1.7
    "POOLS": ["database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
              "cl_waiting_cancel_req", "sv_active", "sv_active_cancel", "sv_being_canceled",
              "sv_idle", "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us", "pool_mode",
              "load_balance_hosts"],
    "STATS": ["database"] + ["total_" + n for n in STATS_TOTAL_NAMES] +
             ["avg_server_assignment_count", "avg_xact_count", "avg_query_count", "avg_recv",
              "avg_sent", "avg_xact_time", "avg_query_time", "avg_wait_time",
              "avg_client_parse_count", "avg_server_parse_count", "avg_bind_count"] +
             ["total_requests", "avg_req", "avg_query"],  # pre-1.8 names, read by exporter 1.7
    "STATS_TOTALS": ["database", "server_assignment_count", "xact_count", "query_count",
                     "bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time",
                     "client_parse_count", "server_parse_count", "bind_count"],
    "STATS_AVERAGES": ["database", "server_assignment_count", "xact_count", "query_count",
                       "bytes_received", "bytes_sent", "xact_time", "query_time", "wait_time",
                       "avg_client_parse_count", "avg_server_parse_count", "avg_bind_count"],
    "TOTALS": ["name", "value"],
    "SERVERS": SOCKET_COLS + ["age_seconds", "retire_in_seconds"],
    "CLIENTS": SOCKET_COLS,
    "SOCKETS": SOCKET_COLS + BUFFER_COLS,
    "ACTIVE_SOCKETS": SOCKET_COLS + BUFFER_COLS,
    "USERS": ["name", "pool_size", "reserve_pool_size", "pool_mode", "max_user_connections",
              "current_connections", "max_user_client_connections", "current_client_connections"],
    "LISTS": ["list", "items"],
    "MEM": ["name", "size", "used", "free", "memtotal"],
    "STATE": ["key", "value"],
    "TOKENS": ["alias", "credential", "provider", "db_user", "state", "expires_in", "refresh_in",
               "last_refresh", "last_error", "fetch_count", "failure_count"],
    "CREDENTIALS": ["name", "type", "source", "state"],
}
# What Debian's prometheus-pgbouncer-exporter 1.7 reads (collectors.py)
EXPORTER_LISTS = ["databases", "users", "pools", "free_clients", "used_clients", "login_clients",
                  "free_servers", "used_servers", "dns_names", "dns_zones", "dns_queries",
                  "dns_pending"]


def console_pooler(make_pooler, pg, settings=None, databases=None, **kw):
    s = {"admin_users": ADMIN, "stats_users": WATCHER}
    s.update(settings or {})
    users = {ALICE: scram_secret(ALICE_PW), ADMIN: scram_secret(ADMIN_PW),
             WATCHER: scram_secret(WATCHER_PW), NOBODY: scram_secret(NOBODY_PW)}
    return make_pooler(settings=s, users=users, databases=databases, **kw)


def admin(p, db="pgbouncer", user=ADMIN, password=ADMIN_PW):
    # psycopg prepares a query run 5 times (extended protocol), which the console refuses,
    # as PgBouncer's does: monitoring loops must turn that off.
    return p.connect(db, user, password, prepare_threshold=None)


def rows_of(conn, sql):
    """-> (column names, list of dicts) for one console command."""
    cur = conn.execute(sql)
    names = [d.name for d in cur.description]
    return names, [dict(zip(names, r)) for r in cur.fetchall()]


def clients_waiting(conn, db="appdb"):
    """SHOW POOLS cl_waiting of db: the witness a "nothing happens yet" check polls first."""
    return sum(r["cl_waiting"] for r in rows_of(conn, "SHOW POOLS")[1] if r["database"] == db)


def psql_console(p, sql, user=ADMIN, password=ADMIN_PW, db="pgbouncer", csv=True, timeout=60):
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
    args = [PSQL, "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(p.port), "-U", user,
            "-d", db, "-c", sql]
    if csv:
        args.insert(2, "--csv")
    return subprocess.run(args, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def alice_conn(p, **kw):
    # no server-side prepared statements: several tests run in transaction mode
    return p.connect("appdb", ALICE, ALICE_PW, prepare_threshold=None, **kw)


# ---------------------------------------------------------------- login


def test_console_login_reply(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    for dbname in ("tokenbouncer", "pgbouncer"):
        with rawpg.try_login("127.0.0.1", p.port, ADMIN, dbname, ADMIN_PW,
                             application_name="probe") as c:
            assert c.params["server_version"].startswith("15.0 (tokenbouncer "), c.params
            for k, v in (("client_encoding", "UTF8"), ("server_encoding", "UTF8"), ("DateStyle", "ISO"),
                         ("integer_datetimes", "on"), ("standard_conforming_strings", "on"),
                         ("application_name", "probe")):
                assert c.params.get(k) == v, (k, c.params)
            assert c.backend_pid is not None and c.backend_key is not None
            r = c.query_ok("SHOW VERSION")
            assert r.columns == ["version"] and r.tags == ["SHOW"]
            assert r.rows[0][0].startswith("tokenbouncer ")
            c.terminate()


def test_console_refuses_other_users(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    for db in ("pgbouncer", "tokenbouncer"):
        with pytest.raises(rawpg.PgError) as ei:
            rawpg.try_login("127.0.0.1", p.port, NOBODY, db, NOBODY_PW).close()
        assert ei.value.code == "28000", ei.value.fields
        assert "admin_users" in ei.value.message and "stats_users" in ei.value.message
    # a wrong password for an admin is an authentication failure, as for any database
    with pytest.raises(rawpg.PgError) as ei:
        rawpg.try_login("127.0.0.1", p.port, ADMIN, "pgbouncer", "wrong").close()
    assert ei.value.code == "28P01"


# ---------------------------------------------------------------- SHOW


def test_show_columns_psycopg(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    with alice_conn(p) as a:
        a.execute("select 1")
        with admin(p) as conn:
            for cmd, expected in COLUMNS.items():
                names, rows = rows_of(conn, "SHOW " + cmd)
                assert names == expected, cmd
            # typed like PgBouncer's: numbers come back as numbers
            _, pools = rows_of(conn, "SHOW POOLS")
            mine = [r for r in pools if r["database"] == "appdb"]
            assert len(mine) == 1 and mine[0]["user"] == APP_USER
            assert mine[0]["cl_active"] == 1 and mine[0]["sv_active"] == 1, mine
            assert mine[0]["pool_mode"] == "session"
            assert any(r["database"] == "tokenbouncer" and r["cl_active"] == 1 for r in pools), pools
            _, lists = rows_of(conn, "SHOW LISTS")
            got = {r["list"]: r["items"] for r in lists}
            assert set(EXPORTER_LISTS) <= set(got), got
            assert got["used_clients"] == 2 and got["used_servers"] == 1, got
            _, dbs = rows_of(conn, "SHOW DATABASES")
            appdb = [r for r in dbs if r["name"] == "appdb"][0]
            assert appdb["host"] == "127.0.0.1" and appdb["port"] == pg.port
            assert appdb["database"] == APP_DB and appdb["force_user"] == APP_USER
            assert appdb["pool_size"] == 20 and appdb["reserve_pool"] == appdb["reserve_pool_size"]
            assert appdb["current_connections"] == 1 and appdb["current_client_connections"] == 1
            _, servers = rows_of(conn, "SHOW SERVERS")
            assert len(servers) == 1 and servers[0]["state"] == "active"
            assert servers[0]["age_seconds"] >= 0 and servers[0]["retire_in_seconds"] > 3000
            assert servers[0]["remote_pid"] == a.execute("select pg_backend_pid()").fetchone()[0]
            _, clients = rows_of(conn, "SHOW CLIENTS")
            mine = [c for c in clients if c["database"] == "appdb"]
            assert len(mine) == 1 and mine[0]["link"] == servers[0]["ptr"]
            assert mine[0]["user"] == ALICE and mine[0]["state"] == "active"
            _, one = rows_of(conn, "SHOW CLIENTS %d" % mine[0]["id"])
            assert [c["id"] for c in one] == [mine[0]["id"]]
            _, cfg = rows_of(conn, "SHOW CONFIG")
            keys = {r["key"]: r for r in cfg}
            assert keys["admin_users"]["value"] == ADMIN and keys["listen_port"]["changeable"] == "no"
            assert keys["stats_period"]["default"] == "60" and keys["metrics_listen"]["value"] == ""
            _, users = rows_of(conn, "SHOW USERS")
            assert {ALICE, ADMIN, WATCHER} <= {u["name"] for u in users}
            _, stats = rows_of(conn, "SHOW STATS appdb")
            assert len(stats) == 1 and stats[0]["total_query_count"] >= 2
            assert stats[0]["total_requests"] == stats[0]["total_query_count"]
            for cmd in ("TOKENS", "CREDENTIALS"):
                assert rows_of(conn, "SHOW " + cmd)[1] == []


def test_every_command_through_psql(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    for cmd, expected in COLUMNS.items():
        res = psql_console(p, "SHOW " + cmd)
        assert res.returncode == 0, (cmd, res.stderr)
        assert res.stdout.splitlines()[0] == ",".join(expected), (cmd, res.stdout)
    res = psql_console(p, "SHOW HELP", csv=False)
    assert res.returncode == 0 and "SHOW HELP|VERSION" in res.stderr and "SHOW TOKENS" in res.stderr
    control = [("PAUSE appdb", "PAUSE"), ("RESUME appdb", "RESUME"), ("PAUSE", "PAUSE"),
               ("RESUME", "RESUME"), ("DISABLE appdb", "DISABLE"), ("ENABLE appdb", "ENABLE"),
               ("RECONNECT appdb", "RECONNECT"), ("RECONNECT", "RECONNECT"),
               ("WAIT_CLOSE appdb", "WAIT_CLOSE"), ("WAIT_CLOSE", "WAIT_CLOSE"),
               ("KILL appdb", "KILL"), ("RESUME appdb", "RESUME"), ("RELOAD", "RELOAD"),
               ("SET query_wait_timeout = 100", "SET"), ("REFRESH TOKENS", "REFRESH"),
               ("SHOW STATE; SHOW VERSION", None)]
    for sql, tag in control:
        res = psql_console(p, sql, csv=False)
        assert res.returncode == 0, (sql, res.stderr)
        if tag:
            assert res.stdout.strip() == tag, (sql, res.stdout)
    res = psql_console(p, "KILL_CLIENT 999999", csv=False)
    assert res.returncode != 0 and "no client with id 999999" in res.stderr


def test_stats_user_may_only_show(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    with admin(p, user=WATCHER, password=WATCHER_PW) as conn:
        for cmd in COLUMNS:
            conn.execute("SHOW " + cmd).fetchall()
        for sql in ("PAUSE", "RESUME", "RELOAD", "KILL appdb", "KILL_CLIENT 1", "DISABLE appdb",
                    "ENABLE appdb", "RECONNECT", "SHUTDOWN", "WAIT_CLOSE", "SET default_pool_size = 3",
                    "REFRESH TOKENS"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as ei:
                conn.execute(sql)
            assert "admin_users" in str(ei.value), sql
        # the session parameters drivers set on connect are fine
        conn.execute("SET client_encoding = 'UTF8'")
        assert conn.execute("SHOW VERSION").fetchone()[0].startswith("tokenbouncer")
    res = psql_console(p, "PAUSE", user=WATCHER, password=WATCHER_PW, csv=False)
    assert res.returncode != 0 and "permission denied" in res.stderr
    assert p.alive()


def test_several_commands_and_errors(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    with rawpg.try_login("127.0.0.1", p.port, ADMIN, "pgbouncer", ADMIN_PW) as c:
        r = c.query_ok("SHOW VERSION; show state ;")
        assert r.tags == ["SHOW", "SHOW"] and len(r.rows) == 4
        r = c.query("SHOW VERSION; SELECT 1; SHOW STATE")
        assert r.tags == ["SHOW"] and r.error.code == "42601", r.errors
        assert "SHOW HELP" in r.error.message and r.error.severity == "ERROR"
        r = c.query("SHOW NO_SUCH_THING")
        assert r.error.code == "42601" and "SHOW HELP" in r.error.message
        r = c.query("  ")
        assert r.tags == [] and r.error is None
        r = c.query_ok("SET server_check_query = 'select 2; -- ;'")
        assert r.tags == ["SET"]
        r = c.query_ok("SHOW CONFIG server_check_query")
        assert r.rows == [("server_check_query", "select 2; -- ;", "<empty>", "yes")]
        # extended protocol: refused with an error, the session stays usable after Sync
        c.send(rawpg.message("P", b"\0SHOW VERSION\0\0\0") + rawpg.message("B", b"\0\0\0\0\0\0\0\0") +
               rawpg.message("E", b"\0\0\0\0\0") + rawpg.message("S"))
        seen = []
        while True:
            t, body = c.read_message()
            seen.append(t)
            if t == "E":
                assert rawpg.parse_error_fields(body)["C"] == "0A000"
            if t == "Z":
                break
        assert seen == ["E", "Z"], seen
        assert c.query_ok("SHOW STATE").tags == ["SHOW"]
        c.terminate()
    with admin(p) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("SHOW VERSION", binary=True)   # binary results need the extended protocol
        assert conn.execute("SHOW VERSION").fetchone()[0].startswith("tokenbouncer")


# ---------------------------------------------------------------- control


def test_set_reloadable_and_restart_only(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    with admin(p) as conn:
        conn.execute("SET default_pool_size = 7")
        assert rows_of(conn, "SHOW CONFIG default_pool_size")[1][0]["value"] == "7"
        assert [r for r in rows_of(conn, "SHOW DATABASES appdb")[1]][0]["pool_size"] == 7
        conn.execute("SET stats_period TO 5")
        assert rows_of(conn, "SHOW CONFIG stats_period")[1][0]["value"] == "5"
        with pytest.raises(psycopg.errors.CantChangeRuntimeParam) as ei:   # 55P02
            conn.execute("SET listen_port = 7777")
        assert "listen_port" in str(ei.value)
        with pytest.raises(psycopg.errors.CantChangeRuntimeParam):
            conn.execute("SET metrics_listen = '127.0.0.1:9999'")
        with pytest.raises(psycopg.errors.UndefinedObject) as ei:          # 42704
            conn.execute("SET no_such_param = 1")
        assert "no_such_param" in str(ei.value)
        with pytest.raises(psycopg.errors.InvalidParameterValue) as ei:    # 22023
            conn.execute("SET default_pool_size = many")
        assert 'invalid value for default_pool_size: "many"' in str(ei.value)
        with pytest.raises(psycopg.Error) as ei:     # applied like a reload: the file must load
            conn.execute("SET auth_file = '/nonexistent'")
        assert "/nonexistent" in str(ei.value)
    # the new value is in force: pool_size 1 makes a second session client wait
    with admin(p) as conn:
        conn.execute("SET default_pool_size = 1")
    with alice_conn(p) as a1:
        a1.execute("select 1")
        waiter = Bounded(lambda: alice_conn(p).execute("select 2").fetchone())
        with admin(p) as conn:
            wait_for(lambda: clients_waiting(conn) >= 1, 10, "the second client to wait for a server")
        assert not waiter.done()
    assert waiter.result(10) == (2,)


def test_reload_from_console(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    with admin(p) as conn:
        p.settings["default_pool_size"] = 9
        p.write_files()
        conn.execute("RELOAD")
        assert rows_of(conn, "SHOW CONFIG default_pool_size")[1][0]["value"] == "9"
        p.extra_lines = ["bogus_setting = 1"]
        p.write_files()
        with pytest.raises(psycopg.Error) as ei:
            conn.execute("RELOAD")
        assert "bogus_setting" in str(ei.value) and ei.value.sqlstate == "F0000"
        assert rows_of(conn, "SHOW CONFIG default_pool_size")[1][0]["value"] == "9"


def test_disable_enable(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    with admin(p) as conn:
        conn.execute("DISABLE appdb")
        assert rows_of(conn, "SHOW DATABASES appdb")[1][0]["disabled"] == 1
        with pytest.raises(rawpg.PgError) as ei:
            rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW).close()
        assert ei.value.code == "57P03"
        conn.execute("ENABLE appdb")
        with alice_conn(p) as a:
            assert a.execute("select 5").fetchone() == (5,)
        with pytest.raises(psycopg.errors.InvalidCatalogName):
            conn.execute("DISABLE no_such_db")
        with pytest.raises(psycopg.errors.SyntaxError):
            conn.execute("DISABLE")


def test_kill_and_resume(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    a1, a2 = alice_conn(p), alice_conn(p)
    a1.execute("select 1")
    a2.execute("select 1")
    with admin(p) as conn:
        conn.execute("KILL appdb")
        for a in (a1, a2):
            with pytest.raises(psycopg.OperationalError):
                a.execute("select 1")
            a.close()
        assert rows_of(conn, "SHOW SERVERS")[1] == []
        assert rows_of(conn, "SHOW DATABASES appdb")[1][0]["paused"] == 1
        # a killed database is paused: a new client logs in but its query waits for RESUME
        late = Bounded(lambda: alice_conn(p).execute("select 3").fetchone())
        wait_for(lambda: clients_waiting(conn) >= 1, 10, "the late client to wait for RESUME")
        assert not late.done()
        conn.execute("RESUME appdb")
        assert late.result(10) == (3,)
    assert "was killed" in p.log_text()


def test_kill_client(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    victim = alice_conn(p, application_name="victim")
    other = alice_conn(p, application_name="other")
    victim.execute("select 1")
    other.execute("select 1")
    with admin(p) as conn:
        _, clients = rows_of(conn, "SHOW CLIENTS")
        vid = [c["id"] for c in clients if c["application_name"] == "victim"]
        assert len(vid) == 1, clients
        conn.execute("KILL_CLIENT %d" % vid[0])
        with pytest.raises(psycopg.OperationalError):
            victim.execute("select 1")
        assert other.execute("select 7").fetchone() == (7,)
        assert vid[0] not in [c["id"] for c in rows_of(conn, "SHOW CLIENTS")[1]]
        with pytest.raises(psycopg.errors.UndefinedObject):
            conn.execute("KILL_CLIENT %d" % vid[0])
        # a console client may kill itself: the connection just ends
        me = [c["id"] for c in rows_of(conn, "SHOW CLIENTS")[1] if c["database"] == "tokenbouncer"]
        assert len(me) == 1
        with pytest.raises(psycopg.OperationalError):
            conn.execute("KILL_CLIENT %d" % me[0])
    victim.close()
    other.close()


def test_reconnect_and_wait_close(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    holder = alice_conn(p)     # session mode: keeps its server
    pid1 = holder.execute("select pg_backend_pid()").fetchone()[0]
    with alice_conn(p) as idle_maker:
        idle_maker.execute("select 1")
    with admin(p) as conn:
        servers = rows_of(conn, "SHOW SERVERS")[1]
        assert sorted(s["state"] for s in servers) == ["active", "idle"], servers
        conn.execute("RECONNECT appdb")
        servers = rows_of(conn, "SHOW SERVERS")[1]
        assert [(s["state"], s["close_needed"]) for s in servers] == [("active", 1)], servers
        # WAIT_CLOSE waits (without blocking the pooler) until the marked server is gone
        sent = threading.Event()

        def wait_close():
            c = admin(p)
            sent.set()
            return c.execute("WAIT_CLOSE appdb").statusmessage
        waiter = Bounded(wait_close)
        # no SHOW row tells a waiting WAIT_CLOSE apart: the witness is its console login, then
        # a few loop passes for the command that follows it
        assert sent.wait(10)
        time.sleep(0.3)
        assert not waiter.done()
        assert conn.execute("SHOW VERSION").fetchone()       # the loop is not blocked
        holder.close()
        assert waiter.result(10) == "WAIT_CLOSE"
    with alice_conn(p) as a:
        assert a.execute("select pg_backend_pid()").fetchone()[0] != pid1


def count_rows(pg, table):
    return pg.scalar("select count(*) from %s" % table, dbname=APP_DB)


def test_pause_resume_under_pgbench(make_pooler, pg, new_role, tmp_path):
    role = new_role("bench")
    pg.sql('CREATE TABLE IF NOT EXISTS admin_bench (id bigserial primary key, v int)', dbname=APP_DB)
    pg.sql('TRUNCATE admin_bench', dbname=APP_DB)
    pg.sql('GRANT ALL ON admin_bench, admin_bench_id_seq TO "%s"' % role, dbname=APP_DB)
    p = console_pooler(make_pooler, pg, settings={"pool_mode": "transaction"},
                       databases={"appdb": app_connstr(pg, user=role, pool_size=2)})
    script = tmp_path / "insert.sql"
    script.write_text("INSERT INTO admin_bench (v) VALUES (1);\n")
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": ALICE_PW}
    bench = subprocess.Popen([PGBENCH, "-n", "-c", "4", "-j", "2", "-T", "8", "-f", str(script),
                              "-h", "127.0.0.1", "-p", str(p.port), "-U", ALICE, "appdb"],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        with admin(p) as conn:
            wait_for(lambda: count_rows(pg, "admin_bench") > 50, 20, "pgbench to insert rows")
            start = time.monotonic()
            assert conn.execute("PAUSE appdb").statusmessage == "PAUSE"
            paused_for = time.monotonic() - start
            assert paused_for < 5, paused_for
            # no server is linked while paused, so nothing commits
            pools = [r for r in rows_of(conn, "SHOW POOLS appdb")[1]]
            assert pools[0]["sv_active"] == 0, pools
            # every pgbench client waits (the witness), then a while with no commit
            wait_for(lambda: clients_waiting(conn) == 4, 10, "all four pgbench clients to wait")
            before = count_rows(pg, "admin_bench")
            wait_for(lambda: rows_of(conn, "SHOW POOLS appdb")[1][0]["maxwait"] >= 1, 10,
                     "the waiting clients to have waited a second")
            assert count_rows(pg, "admin_bench") == before
            assert rows_of(conn, "SHOW STATE")[1][0]["value"] == "yes"  # the pooler as a whole is active
            assert conn.execute("RESUME appdb").statusmessage == "RESUME"
            wait_for(lambda: count_rows(pg, "admin_bench") > before + 20, 10, "inserts after RESUME")
        out, err = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    assert bench.returncode == 0, err
    done = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", out)
    assert failed is None or failed.group(1) == "0", out
    assert done > 0 and count_rows(pg, "admin_bench") == done, (done, out)


def test_pause_all_waits_for_session_client(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    holder = alice_conn(p)
    holder.execute("select 1")
    with admin(p) as conn:
        pause = Bounded(lambda: admin(p).execute("PAUSE").statusmessage)
        # the witness: the pooler is paused (the PAUSE arrived), yet PAUSE has not returned
        wait_for(lambda: rows_of(conn, "SHOW STATE")[1][1]["value"] == "yes", 10, "PAUSE to arrive")
        assert not pause.done(), "PAUSE returned while a session client holds a server"
        holder.close()
        assert pause.result(10) == "PAUSE"
        conn.execute("RESUME")
        with alice_conn(p) as a:
            assert a.execute("select 4").fetchone() == (4,)


def test_shutdown_now(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    p.expected_exit = True
    conn = admin(p)
    try:
        conn.execute("SHUTDOWN")
    except psycopg.OperationalError:
        pass      # the reply and the close may race; the process exit is what counts
    p.proc.wait(10)
    assert p.proc.returncode == 0
    conn.close()


def test_shutdown_wait_for_clients(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    p.expected_exit = True
    a = alice_conn(p)
    a.execute("select 1")
    conn = admin(p)
    assert conn.execute("SHUTDOWN WAIT_FOR_CLIENTS").statusmessage == "SHUTDOWN"
    wait_for(lambda: not port_accepts(p.port), 5, "listener closed")
    # the witness is the closed listener; the pooler checks for its exit four times a second
    time.sleep(0.3)
    assert p.alive()
    assert a.execute("select 2").fetchone() == (2,)   # existing clients keep working
    a.close()
    conn.close()
    p.proc.wait(10)
    assert p.proc.returncode == 0


def test_shutdown_wait_for_servers(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    p.expected_exit = True
    a = alice_conn(p)
    a.execute("select 1")                # session mode: holds a server
    conn = admin(p)
    assert conn.execute("SHUTDOWN WAIT_FOR_SERVERS").statusmessage == "SHUTDOWN"
    wait_for(lambda: not port_accepts(p.port), 5, "listener closed")   # the witness
    time.sleep(0.3)     # a few exit checks (four a second) with the server still held
    assert p.alive()
    a.close()                            # the server is released: exit, console still connected
    p.proc.wait(10)
    assert p.proc.returncode == 0
    conn.close()


def test_refresh_tokens_without_token_aliases(make_pooler, pg):
    p = console_pooler(make_pooler, pg)
    with admin(p) as conn:
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        assert conn.execute("REFRESH TOKENS").statusmessage == "REFRESH"
        assert notices == ["no token-backed aliases"]
        with pytest.raises(psycopg.Error) as ei:
            conn.execute("REFRESH TOKENS appdb")
        assert "not token-backed" in str(ei.value)
        with pytest.raises(psycopg.errors.InvalidCatalogName):
            conn.execute("REFRESH TOKENS nosuch")


# ---------------------------------------------------------------- statistics


def test_stats_totals_and_averages(make_pooler, pg):
    p = console_pooler(make_pooler, pg, settings={"stats_period": 3, "pool_mode": "transaction"})
    with alice_conn(p) as a:
        for i in range(40):
            a.execute("select %d" % i)
        with a.transaction():
            a.execute("select 1")
            a.execute("select 2")
    with admin(p) as conn:
        # the averages come from the stats snapshots: poll until one holds the queries
        s = wait_for(lambda: [r for r in rows_of(conn, "SHOW STATS appdb")[1] if r["avg_query_count"] > 0],
                     10, "a stats snapshot with the queries")[0]
        assert s["total_query_count"] >= 44 and s["total_xact_count"] >= 41, s
        assert s["total_received"] > 0 and s["total_sent"] > 0
        assert s["total_query_time"] > 0 and s["total_xact_time"] >= s["total_query_time"] * 0
        assert s["total_server_assignment_count"] >= 41
        assert s["avg_query_count"] > 0 and s["avg_xact_count"] > 0 and s["avg_recv"] > 0
        assert s["avg_query_time"] > 0
        assert (s["total_requests"], s["avg_req"], s["avg_query"]) == (
            s["total_query_count"], s["avg_query_count"], s["avg_query_time"])
        t = rows_of(conn, "SHOW STATS_TOTALS appdb")[1][0]
        assert t["query_count"] == s["total_query_count"] and t["bytes_received"] == s["total_received"]
        av = rows_of(conn, "SHOW STATS_AVERAGES appdb")[1][0]
        assert av["query_time"] == s["avg_query_time"]
        totals = dict((r["name"], r["value"]) for r in rows_of(conn, "SHOW TOTALS")[1])
        assert totals["total_query_count"] == s["total_query_count"]
        # after stats_period of quiet the averages drop back to zero
        wait_for(lambda: rows_of(conn, "SHOW STATS appdb")[1][0]["avg_query_count"] == 0, 10,
                 "averages to decay")


# ---------------------------------------------------------------- metrics and exporters


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        return r.headers.get("Content-Type"), r.read().decode()


def test_metrics_endpoint_under_load(make_pooler, pg, new_role):
    from prometheus_client.parser import text_string_to_metric_families
    role = new_role("metrics")
    mport = free_port()
    p = console_pooler(make_pooler, pg, settings={"metrics_listen": "127.0.0.1:%d" % mport,
                                                   "pool_mode": "transaction"},
                       databases={"appdb": app_connstr(pg, user=role, pool_size=2)})
    url = "http://127.0.0.1:%d/metrics" % mport
    stop = threading.Event()
    done = [0]

    def worker():
        with alice_conn(p) as a:
            while not stop.is_set():
                a.execute("select pg_sleep(0.05)")
                done[0] += 1
    workers = [threading.Thread(target=worker, daemon=True) for _ in range(5)]
    for w in workers:
        w.start()
    try:
        wait_for(lambda: done[0] > 20, 20, "load")
        ctype, text = scrape(url)
        assert ctype.startswith("text/plain") and "version=0.0.4" in ctype
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        samples = {}
        for f in fams.values():
            for s in f.samples:
                samples.setdefault(s.name, []).append(s)

        def one(name, **labels):
            got = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
            assert len(got) == 1, (name, labels, samples.get(name))
            return got[0]
        pl = {"database": "appdb", "user": role}
        # 5 clients, 2 servers: the rest wait (cl_active counts linked and idle clients)
        cl_active, cl_waiting = one("tokenbouncer_pool_cl_active", **pl), one("tokenbouncer_pool_cl_waiting", **pl)
        assert cl_active + cl_waiting == 5 and cl_waiting >= 1, (cl_active, cl_waiting)
        active = one("tokenbouncer_pool_sv_active", **pl)
        idle = one("tokenbouncer_pool_sv_idle", **pl)
        assert 1 <= active + idle + one("tokenbouncer_pool_sv_used", **pl) <= 2
        assert one("tokenbouncer_pool_sv_login", **pl) >= 0
        assert one("tokenbouncer_pool_maxwait_seconds", **pl) >= 0
        assert one("tokenbouncer_pool_server_max_age_seconds", **pl) > 0
        assert one("tokenbouncer_server_age_seconds_count", **pl) == 2
        assert one("tokenbouncer_server_age_seconds_bucket", le="+Inf", **pl) == 2
        assert fams["tokenbouncer_server_age_seconds"].type == "histogram"
        x1 = one("tokenbouncer_xacts_total", database="appdb")
        assert x1 >= 20 and fams["tokenbouncer_xacts"].type == "counter"
        assert one("tokenbouncer_queries_total", database="appdb") >= x1
        assert one("tokenbouncer_received_bytes_total", database="appdb") > 0
        assert one("tokenbouncer_sent_bytes_total", database="appdb") > 0
        assert one("tokenbouncer_query_time_seconds_total", database="appdb") >= 0.05 * 20
        assert one("tokenbouncer_wait_time_seconds_total", database="appdb") > 0
        assert one("tokenbouncer_server_login_failures_total", database="appdb") == 0
        assert one("tokenbouncer_database_paused", database="appdb") == 0
        assert one("tokenbouncer_client_connections") == 5
        assert not [n for n in samples if "token_" in n and n != "tokenbouncer_info"]  # no token series yet

        def xacts_now():
            _, text2 = scrape(url)
            return [s.value for f in text_string_to_metric_families(text2) for s in f.samples
                    if s.name == "tokenbouncer_xacts_total" and s.labels["database"] == "appdb"][0]
        wait_for(lambda: xacts_now() > x1, 10, "the transaction counter to grow")
    finally:
        stop.set()
        for w in workers:
            w.join(10)
    # other paths and methods are refused without disturbing the pooler
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen("http://127.0.0.1:%d/other" % mport, timeout=10)
    assert ei.value.code == 404
    assert p.alive()


def test_metrics_listen_port_taken(make_pooler, pg):
    import socket
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        p = console_pooler(make_pooler, pg, settings={"metrics_listen": "127.0.0.1:%d" % s.getsockname()[1]},
                           start=False)
        p.expected_exit = True
        with pytest.raises(RuntimeError) as ei:
            p.start(timeout=10)
        assert "metrics_listen" in str(ei.value)
    finally:
        s.close()


EXPORTER = "/usr/bin/prometheus-pgbouncer-exporter"


@pytest.mark.skipif(not os.path.exists(EXPORTER), reason="prometheus-pgbouncer-exporter not installed")
def test_debian_prometheus_pgbouncer_exporter(make_pooler, pg, tmp_path):
    p = console_pooler(make_pooler, pg)
    with alice_conn(p) as a:
        for i in range(5):
            a.execute("select %d" % i)
        eport = free_port()
        log = open(tmp_path / "exporter.log", "w+")
        env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": ADMIN_PW, "PGCONNECT_TIMEOUT": "10"}
        proc = subprocess.Popen([EXPORTER, "--host", "127.0.0.1", "--port", str(eport),
                                 "--pgbouncer-host", "127.0.0.1", "--pgbouncer-port", str(p.port),
                                 "--pgbouncer-user", ADMIN],
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: proc.poll() is not None or port_accepts(eport), 20, "exporter to listen")
            assert proc.poll() is None, open(tmp_path / "exporter.log").read()
            _, text = scrape("http://127.0.0.1:%d/metrics" % eport)
            _, text = scrape("http://127.0.0.1:%d/metrics" % eport)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
    out = open(tmp_path / "exporter.log").read()
    assert not re.search(r"(?i)error|traceback|exception", out), out
    from prometheus_client.parser import text_string_to_metric_families
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    names = {s.name for s in samples}
    # every collector produced its series: STATS (legacy columns), POOLS, DATABASES, LISTS
    for n in ("pgbouncer_requests_total", "pgbouncer_received_bytes_total", "pgbouncer_sent_bytes_total",
              "pgbouncer_query_microseconds_total", "pgbouncer_active_clients", "pgbouncer_waiting_clients",
              "pgbouncer_pool_size", "pgbouncer_reserve_pool", "pgbouncer_databases", "pgbouncer_pools",
              "pgbouncer_used_clients", "pgbouncer_dns_pending"):
        assert n in names, (n, sorted(names))
    req = [s.value for s in samples if s.name == "pgbouncer_requests_total" and s.labels["database"] == "appdb"]
    assert req and req[0] >= 5
    act = [s.value for s in samples if s.name == "pgbouncer_active_clients" and s.labels["database"] == "appdb"]
    assert act == [1.0]


def test_show_sockets_lists_clients_and_servers(make_pooler, pg):
    """SHOW SOCKETS: every client (logging in too) and server; ACTIVE_SOCKETS only those with
    bytes buffered (none, between queries)."""
    p = console_pooler(make_pooler, pg)
    with alice_conn(p) as a:
        a.execute("select 1")
        with admin(p) as conn:
            _, rows = rows_of(conn, "SHOW SOCKETS")
            kinds = sorted((r["type"], r["user"]) for r in rows)
            assert ("C", ALICE) in kinds and ("C", ADMIN) in kinds and ("S", APP_USER) in kinds, kinds
            assert all(r["pkt_avail"] == 0 and r["send_avail"] == 0 for r in rows), rows
            _, active = rows_of(conn, "SHOW ACTIVE_SOCKETS")
            assert all(r["type"] != "S" for r in active), active
