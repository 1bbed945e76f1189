"""Reload and recovery (issue 12): an upstream that is restarting (answers a login with 57P03,
refuses, or closes) is retried within server_connect_timeout + server_login_retry for clients
that have no server yet, instead of passing the FATAL through; min_pool_size of a database with a
forced user is opened without any client, at start and after a reload."""
import os
import signal
import time

import psycopg
import pytest

import rawpg

from conftest import ALICE, ALICE_PW, app_connstr
from pooler import tokenbouncer_only
from util import Bounded, wait_for


def recovery_pooler(make_pooler, pgsrv, role, retry=0.2, connect_timeout=10, **extra):
    settings = {"pool_mode": "transaction", "server_login_retry": retry,
                "server_connect_timeout": connect_timeout}
    settings.update(extra)
    return make_pooler(settings=settings,
                       databases={"appdb": app_connstr(pgsrv, user=role, pool_size=4)})


def test_login_answered_57p03_is_retried(make_pooler, private_pg, new_role):
    """A smart shutdown of PostgreSQL with a session open answers every new login with
    FATAL 57P03 "the database system is shutting down". A client that asks for a server then
    keeps waiting while the pooler retries; once PostgreSQL is back, its query runs. Then a fast
    restart closes a client's idle server: its next query, sent while PostgreSQL is down
    (connection refused), waits for the retry and runs too."""
    tokenbouncer_only("PgBouncer 1.18 passes 57P03 through")
    pgsrv = private_pg
    role = new_role("r57", target=pgsrv)
    p = recovery_pooler(make_pooler, pgsrv, role)
    holder = pgsrv.connect()                                 # keeps the smart shutdown waiting
    marks = p._log_marks()
    os.kill(pgsrv.pid, signal.SIGTERM)                       # smart shutdown
    run = Bounded(_query_new_client, p, "select 'after restart'")
    # a retry was made (a second failed login) and the client is still waiting
    wait_for(lambda: run.done() or p.log_since(marks).count(
        "server login failed: the database system is shutting down") >= 2, 10, "a retried login")
    assert not run.done(), "the client got an answer while PostgreSQL refused logins: %r" % (
        run._exc or run._value,)
    holder.close()
    pgsrv.proc.wait(30)
    pgsrv.start()
    assert run.result(30, "the waiting client's query") == ("after restart",)
    n57 = p.log_since(marks).count("server login failed")

    old = p.connect("appdb", ALICE, ALICE_PW)
    assert old.execute("select 1").fetchone() == (1,)      # an idle server stays in the pool
    marks = p._log_marks()
    pgsrv.stop("fast")                                       # closes it
    wait_for(lambda: "closing" in p.log_since(marks), 10, "the idle server to be closed")
    run = Bounded(old.execute, "select 2")
    wait_for(lambda: run.done() or p.log_since(marks).count("Connection refused; retrying") >= 2, 10,
             "a retried login")
    assert not run.done(), run._exc
    pgsrv.start()
    assert run.result(30, "the query sent while PostgreSQL was down").fetchone() == (2,)
    print("restart: %d failed logins (57P03) then %d (refused) before PostgreSQL was back" % (
        n57, p.log_since(marks).count("server login failed")))
    old.close()


def test_refused_login_waits_only_so_long(make_pooler, private_pg, new_role):
    """PostgreSQL stopped: a connection refused is retried, but a client waits at most
    server_connect_timeout + server_login_retry, then gets the error (08006)."""
    tokenbouncer_only()
    pgsrv = private_pg
    role = new_role("rref", target=pgsrv)
    p = recovery_pooler(make_pooler, pgsrv, role, retry=0.3, connect_timeout=1.5)
    with p.connect("appdb", ALICE, ALICE_PW) as c:
        c.execute("select 1")
    pgsrv.stop("fast")
    start = time.monotonic()
    with pytest.raises(psycopg.OperationalError) as ei:
        Bounded(_query_new_client, p, "select 1").result(20, "a client while PostgreSQL is down")
    waited = time.monotonic() - start
    print("PostgreSQL down: the client got %r after %.2fs" % (str(ei.value).strip()[-80:], waited))
    assert "could not connect" in str(ei.value) or "refused" in str(ei.value), str(ei.value)
    assert 1.5 <= waited < 1.5 + 0.3 + 3, "waited %.2fs" % waited
    assert p.log_text().count("server login failed") >= 2, "no retry was made"


def _query_new_client(p, sql):
    with p.connect("appdb", ALICE, ALICE_PW, connect_timeout=30) as c:
        return c.execute(sql).fetchone()


def test_min_pool_size_of_forced_user_opens_without_clients(make_pooler, pg, new_role):
    """As PgBouncer: a database with a forced user (user= in its entry) and min_pool_size opens
    that many servers without waiting for a client, at start and when a reload adds it or raises
    its min_pool_size."""
    tokenbouncer_only()
    role, role2 = new_role("minf"), new_role("minf2")
    p = make_pooler(settings={"pool_mode": "transaction"},
                    databases={"warm": app_connstr(pg, user=role, pool_size=4, min_pool_size=2)})
    wait_for(lambda: pg.backends(role) == 2, 10, "min_pool_size=2 servers at start, no client")
    p.databases["warm2"] = app_connstr(pg, user=role2, pool_size=4, min_pool_size=1)
    p.databases["warm"] = app_connstr(pg, user=role, pool_size=4, min_pool_size=3)
    p.write_files()
    p.reload()
    wait_for(lambda: pg.backends(role2) == 1, 10, "min_pool_size of an alias added by reload")
    wait_for(lambda: pg.backends(role) == 3, 10, "a raised min_pool_size after reload")
    with p.connect("warm", ALICE, ALICE_PW) as c:
        assert c.execute("select current_user").fetchone() == (role,)


def test_reload_applies_client_tls_to_new_clients(make_pooler, certs):
    """client_tls_* changed by SIGHUP apply to the next client at once: enabling TLS (require)
    refuses plaintext logins and accepts TLS ones, while a client already connected keeps its
    plaintext session; disabling it again answers SSLRequest with N."""
    p = make_pooler()
    before = p.connect("appdb", ALICE, ALICE_PW)
    with rawpg.RawConn("127.0.0.1", p.port) as raw:
        assert raw.request_ssl() == "N"
    p.settings.update({"client_tls_sslmode": "require", "client_tls_key_file": certs.server_key,
                       "client_tls_cert_file": certs.server_crt, "client_tls_ca_file": certs.ca_crt})
    p.write_files()
    p.reload()
    with pytest.raises(psycopg.OperationalError) as ei:
        p.connect("appdb", ALICE, ALICE_PW, sslmode="disable")
    assert "SSL required" in str(ei.value), str(ei.value)
    kw = dict(sslmode="verify-full", sslrootcert=certs.ca_crt, host="localhost", hostaddr="127.0.0.1")
    with p.connect("appdb", ALICE, ALICE_PW, **kw) as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("select 1").fetchone() == (1,)
    assert before.execute("select 2").fetchone() == (2,)
    p.settings["client_tls_sslmode"] = "disable"
    p.write_files()
    p.reload()
    with rawpg.RawConn("127.0.0.1", p.port) as raw:
        assert raw.request_ssl() == "N"
    with p.connect("appdb", ALICE, ALICE_PW, sslmode="disable") as c:
        assert c.execute("select 3").fetchone() == (3,)
    before.close()
