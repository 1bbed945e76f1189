"""The signal and shutdown matrix with PgBouncer 1.23+ semantics (issue 12):

  SIGTERM  = SHUTDOWN WAIT_FOR_CLIENTS: stop accepting, clients carry on until they leave
  SIGINT   = SHUTDOWN WAIT_FOR_SERVERS: transactions finish, waiting/idle clients are let go
  a second SIGTERM/SIGINT, SIGQUIT, SHUTDOWN: exit at once
  SIGUSR1 / SIGUSR2 = PAUSE / RESUME;  RESUME of a shutdown is refused

During a waiting shutdown the TCP listeners are closed and the Unix socket stays open for the
console only."""
import os
import signal
import time

import psycopg
import pytest

import rawpg
from conftest import ALICE, ALICE_PW, APP_DB, app_connstr
from pooler import is_pgbouncer
from rawpg import scram_secret
from util import Bounded, port_accepts, wait_for

ADMIN, ADMIN_PW = "admin", "Admin-Pw-91ac3e"

# Debian's PgBouncer (the TB_FLAVOR=pgbouncer reference) is 1.18, from before these semantics.
pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: PgBouncer 1.23+ semantics")


def shutdown_pooler(make_pooler, pg, role, pool_size=2, mode="transaction"):
    settings = {"pool_mode": mode, "admin_users": ADMIN, "unix_socket_dir": None}
    users = {ALICE: ALICE_PW if is_pgbouncer() else scram_secret(ALICE_PW),
             ADMIN: ADMIN_PW if is_pgbouncer() else scram_secret(ADMIN_PW)}
    p = make_pooler(settings=settings, users=users, start=False,
                    databases={"appdb": app_connstr(pg, user=role, pool_size=pool_size)})
    p.settings["unix_socket_dir"] = p.workdir
    p.write_files()
    p.start()
    p.sock_path = os.path.join(p.workdir, ".s.PGSQL.%d" % p.port)
    return p


def console(p, host="127.0.0.1"):
    return psycopg.connect(host=host, port=p.port, dbname="pgbouncer", user=ADMIN, password=ADMIN_PW,
                           sslmode="disable", autocommit=True, prepare_threshold=None, connect_timeout=10)


def exit_code(p, timeout, what):
    try:
        return p.proc.wait(timeout)
    except Exception:
        raise AssertionError("tokenbouncer still running %ss after %s:\n%s" % (
            timeout, what, p.log_text()[-3000:]))


def fatal_of(raw, timeout=10):
    got, _ = raw.wait_closed(timeout)
    errs = [rawpg.parse_error_fields(b) for t, b in rawpg.parse_messages(got) if t == "E"]
    return errs[0] if errs else None


def test_sigterm_waits_for_every_client(make_pooler, pg, new_role):
    """SIGTERM: the TCP port closes at once; a connected transaction-mode client goes on with
    new transactions (and so new server assignments) for as long as it likes; over the Unix
    socket the console still logs in but a database does not; the process exits 0 when the
    last client leaves, removing the pidfile and the socket file."""
    role = new_role("sigterm")
    p = shutdown_pooler(make_pooler, pg, role, pool_size=1)
    c = p.connect("appdb", ALICE, ALICE_PW)
    assert c.execute("select 1").fetchone() == (1,)
    p.signal(signal.SIGTERM)
    wait_for(lambda: not port_accepts(p.port), 5, "the TCP listener to close after SIGTERM")
    with console(p, host=p.workdir) as adm:
        state = dict(adm.execute("SHOW STATE").fetchall())
        assert state["active"] == "no", state
    with pytest.raises(psycopg.OperationalError) as ei:
        p.connect("appdb", ALICE, ALICE_PW, host=p.workdir)
    assert "shutting down" in str(ei.value), str(ei.value)
    # 30 transactions after the signal, each released and assigned again (pool_size=1)
    for i in range(30):
        with c.transaction():
            assert c.execute("select %s::int", (i,)).fetchone() == (i,)
    assert p.alive(), "exited with a client still connected:\n" + p.log_text()[-3000:]
    c.close()
    assert exit_code(p, 10, "the last client left") == 0
    assert "all clients are gone" in p.log_text()
    assert not os.path.exists(p.pidfile)
    assert not os.path.exists(p.sock_path), "Unix socket file left behind"


def test_second_sigterm_exits_at_once(make_pooler, pg, new_role):
    role = new_role("sigterm2")
    p = shutdown_pooler(make_pooler, pg, role)
    c = p.connect("appdb", ALICE, ALICE_PW)
    assert c.execute("select 1").fetchone() == (1,)
    p.signal(signal.SIGTERM)
    wait_for(lambda: not port_accepts(p.port), 5, "the TCP listener to close")
    assert p.alive()
    start = time.monotonic()
    p.signal(signal.SIGTERM)
    assert exit_code(p, 5, "a second SIGTERM") == 0
    took = time.monotonic() - start
    with pytest.raises(psycopg.OperationalError):
        Bounded(c.execute, "select 2").result(10, "query after the second SIGTERM")
    c.close()
    print("second SIGTERM: exited in %.2fs" % took)
    assert "SIGTERM while shutting down" in p.log_text()


def test_sigint_waits_for_servers_then_second_sigint(make_pooler, pg, new_role):
    """SIGINT: a client in a transaction finishes it (COMMIT succeeds), then is let go with 57P01;
    an idle client is let go; the process exits once no server is in use. A second SIGINT
    during such a wait exits at once."""
    role = new_role("sigint")
    table = '"tb_sd_%s"' % role
    pg.sql("create table %s (v int)" % table, dbname=APP_DB)
    pg.sql('grant all on %s to "%s"' % (table, role), dbname=APP_DB)
    p = shutdown_pooler(make_pooler, pg, role)
    busy = p.connect("appdb", ALICE, ALICE_PW, autocommit=False, prepare_threshold=None)
    busy.execute("insert into " + table + " values (1)")      # transaction open, server linked
    idle = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)
    p.signal(signal.SIGINT)
    wait_for(lambda: not port_accepts(p.port), 5, "the TCP listener to close after SIGINT")
    err = fatal_of(idle)
    idle.close()
    assert err and err["C"] == "57P01", err
    assert p.alive(), "exited while a transaction was open:\n" + p.log_text()[-3000:]
    busy.execute("insert into " + table + " values (2)")
    busy.commit()
    assert exit_code(p, 10, "the transaction ended") == 0
    with pytest.raises(psycopg.OperationalError):
        Bounded(busy.execute, "select 1").result(10, "query after the exit")
    busy.close()
    assert sorted(pg.sql("select v from %s" % table, dbname=APP_DB)) == [(1,), (2,)]
    assert "no server is in use" in p.log_text()

    # a second SIGINT while the first one waits for a transaction: exit now
    p2 = shutdown_pooler(make_pooler, pg, role)
    held = p2.connect("appdb", ALICE, ALICE_PW, autocommit=False)
    held.execute("select 1")
    p2.signal(signal.SIGINT)
    wait_for(lambda: not port_accepts(p2.port), 5, "the TCP listener to close")
    assert p2.alive()
    p2.signal(signal.SIGINT)
    assert exit_code(p2, 5, "a second SIGINT") == 0
    held.close()


def test_sigquit_exits_at_once(make_pooler, pg, new_role):
    role = new_role("sigquit")
    p = shutdown_pooler(make_pooler, pg, role)
    with p.connect("appdb", ALICE, ALICE_PW) as busy:
        run = Bounded(busy.execute, "select pg_sleep(20)")
        wait_for(lambda: run.done() or pg.scalar(
            "select count(*) from pg_stat_activity where usename = %s and state = 'active'", (role,)) == 1,
            10, "pg_sleep(20) to run")
        start = time.monotonic()
        p.signal(signal.SIGQUIT)
        assert exit_code(p, 5, "SIGQUIT") == 0
        took = time.monotonic() - start
        with pytest.raises(psycopg.OperationalError):
            run.result(5, "pg_sleep(20) after SIGQUIT")
    print("SIGQUIT: exited in %.2fs" % took)
    assert took < 2
    assert not os.path.exists(p.sock_path)


def test_sigusr1_pauses_and_sigusr2_resumes(make_pooler, pg, new_role):
    role = new_role("usr")
    p = shutdown_pooler(make_pooler, pg, role)
    with p.connect("appdb", ALICE, ALICE_PW) as c, console(p) as adm:
        assert c.execute("select 1").fetchone() == (1,)
        p.signal(signal.SIGUSR1)
        wait_for(lambda: dict(adm.execute("SHOW STATE").fetchall())["paused"] == "yes", 5,
                 "SHOW STATE paused after SIGUSR1")
        run = Bounded(c.execute, "select 2")

        def waiting():
            cur = adm.execute("SHOW POOLS")
            names = [d.name for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
            return any(r["database"] == "appdb" and r["cl_waiting"] == 1 for r in rows)
        wait_for(waiting, 5, "the query to wait while paused")
        assert not run.done()
        p.signal(signal.SIGUSR2)
        assert run.result(10, "the query after SIGUSR2").fetchone() == (2,)
        assert dict(adm.execute("SHOW STATE").fetchall())["paused"] == "no"
    assert p.alive()


def test_console_resume_of_a_shutdown_is_refused(make_pooler, pg, new_role):
    """As PgBouncer 1.23+: RESUME cannot cancel a shutdown. During WAIT_FOR_CLIENTS one database
    may still be paused and resumed; once WAIT_FOR_SERVERS holds every pool, RESUME of a
    database is refused too. A shutdown signal during a console shutdown exits at once."""
    role = new_role("resume")
    p = shutdown_pooler(make_pooler, pg, role)
    p.expected_exit = True
    c = p.connect("appdb", ALICE, ALICE_PW, autocommit=False)
    c.execute("select 1")                    # a transaction stays open
    with console(p) as adm:
        assert adm.execute("SHUTDOWN WAIT_FOR_CLIENTS").statusmessage == "SHUTDOWN"
        wait_for(lambda: not port_accepts(p.port), 5, "the TCP listener to close")
        with pytest.raises(psycopg.Error) as ei:
            adm.execute("RESUME")
        assert ei.value.sqlstate == "55000" and "shutting down" in str(ei.value), str(ei.value)
        pause = Bounded(adm.execute, "PAUSE appdb")    # waits for the open transaction
        c.commit()
        assert pause.result(10, "PAUSE appdb").statusmessage == "PAUSE"
        assert adm.execute("RESUME appdb").statusmessage == "RESUME"
        c.execute("select 2")                # a new transaction: assigned after the RESUME
        assert adm.execute("SHUTDOWN WAIT_FOR_SERVERS").statusmessage == "SHUTDOWN"
        with pytest.raises(psycopg.Error) as ei:
            adm.execute("RESUME appdb")
        assert ei.value.sqlstate == "55000", str(ei.value)
        assert p.alive()                     # the open transaction holds a server
        p.signal(signal.SIGTERM)
        assert exit_code(p, 5, "SIGTERM during a console shutdown") == 0
    c.close()


def test_shutdown_wait_for_servers_lets_waiting_clients_go(make_pooler, pg, new_role):
    """pool_size=1: one client holds the server inside a transaction, another waits for it.
    SHUTDOWN WAIT_FOR_SERVERS lets the waiting one go at once (57P01) and the holder finish."""
    role = new_role("waitsrv")
    p = shutdown_pooler(make_pooler, pg, role, pool_size=1)
    p.expected_exit = True
    holder = p.connect("appdb", ALICE, ALICE_PW, autocommit=False)
    holder.execute("select 1")
    waiter = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)
    waiter.send(rawpg.query_message("select 2"))
    with console(p) as adm:
        def waiting():
            cur = adm.execute("SHOW POOLS")
            names = [d.name for d in cur.description]
            return any(dict(zip(names, r))["cl_waiting"] == 1 for r in cur.fetchall())
        wait_for(waiting, 5, "the second client to wait for the server")
        assert adm.execute("SHUTDOWN WAIT_FOR_SERVERS").statusmessage == "SHUTDOWN"
        err = fatal_of(waiter, 5)
        waiter.close()
        assert err and err["C"] == "57P01", err
        assert p.alive()
        assert holder.execute("select 3").fetchone() == (3,)
        holder.commit()
        assert exit_code(p, 10, "the holder's COMMIT") == 0
    holder.close()


def state_of(adm):
    return dict(adm.execute("SHOW STATE").fetchall())


def test_suspend_holds_every_socket_until_resume(make_pooler, pg, new_role):
    """SUSPEND answers once every socket is flushed; then no client is read (a query sent now
    gets no answer) and no new connection is accepted, while other console sessions still work.
    RESUME lets both through. SUSPEND with a paused database is refused, as in PgBouncer."""
    role = new_role("susp")
    p = shutdown_pooler(make_pooler, pg, role)
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)
    assert c.query_ok("select 1").rows == [("1",)]
    with console(p) as adm, console(p) as other:
        assert adm.execute("SUSPEND").statusmessage == "SUSPEND"
        assert state_of(other) == {"active": "no", "paused": "no", "suspended": "yes"}
        c.send(rawpg.query_message("select 42"))
        newcomer = rawpg.RawConn("127.0.0.1", p.port)     # the kernel backlog takes it
        newcomer.startup(ALICE, "appdb")
        # nothing is read while suspended: no answer to either within a second
        assert c.read_message_within(1.0) is None
        assert newcomer.read_message_within(0.3) is None
        with pytest.raises(psycopg.Error) as ei:
            other.execute("SUSPEND")
        assert "already suspended" in str(ei.value)
        assert adm.execute("RESUME").statusmessage == "RESUME"
        rows = []
        while True:
            t, body = c.read_message()
            if t == "D":
                rows.append(body)
            if t == "Z":
                break
        assert len(rows) == 1 and rows[0].endswith(b"42"), rows
        newcomer.authenticate(ALICE_PW)
        assert newcomer.read_until_ready() == "I"
        newcomer.close()
        assert state_of(other)["suspended"] == "no"
        # PgBouncer refuses SUSPEND while a database is paused
        assert adm.execute("PAUSE appdb").statusmessage == "PAUSE"
        with pytest.raises(psycopg.Error) as ei:
            adm.execute("SUSPEND")
        assert "paused databases" in str(ei.value)
        adm.execute("RESUME appdb")
    c.close()


def test_suspend_ends_when_its_console_leaves_and_sigterm_exits(make_pooler, pg, new_role):
    """The console client that ran SUSPEND disconnecting resumes everything (PgBouncer's
    "admin disappeared when suspended"); SIGTERM during a SUSPEND exits at once."""
    role = new_role("susp2")
    p = shutdown_pooler(make_pooler, pg, role)
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)
    adm = console(p)
    assert adm.execute("SUSPEND").statusmessage == "SUSPEND"
    c.send(rawpg.query_message("select 7"))
    assert c.read_message_within(0.5) is None
    adm.close()
    t = None
    while t != "Z":
        t, body = c.read_message()
    with console(p) as adm2:
        assert state_of(adm2)["suspended"] == "no"
        assert adm2.execute("SUSPEND").statusmessage == "SUSPEND"
        p.signal(signal.SIGTERM)
        assert exit_code(p, 5, "SIGTERM while suspended") == 0
    assert "while suspended: exiting now" in p.log_text()
    c.close()
