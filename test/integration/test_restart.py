"""PostgreSQL going away and coming back under the pooler (own PostgreSQL instance)."""
import socket
import time

import psycopg
import pytest

import rawpg
from pooler import is_pgbouncer
from conftest import ALICE, ALICE_PW, app_connstr
from util import Bounded, wait_for


def new_client_error(p, timeout=10):
    """A new client while upstream is down: must get an ErrorResponse (at login or at its first
    query), within the timeout. Returns (fields, seconds)."""
    start = time.monotonic()
    try:
        c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, timeout=timeout)
    except rawpg.PgError as e:
        return e.fields, time.monotonic() - start
    except socket.timeout:
        pytest.fail("no answer to a login within %ds while PostgreSQL is down (hang)" % timeout)
    except rawpg.ConnectionClosed:
        pytest.fail("closed without an ErrorResponse while PostgreSQL is down")
    with c:
        try:
            r = c.query("select 1")
        except socket.timeout:
            pytest.fail("no answer to a query within %ds while PostgreSQL is down (hang)" % timeout)
        except rawpg.ConnectionClosed:
            pytest.fail("closed without an ErrorResponse while PostgreSQL is down")
        assert r.errors, "query succeeded while PostgreSQL is down"
        return r.errors[0].fields, time.monotonic() - start


def test_upstream_restart(make_pooler, private_pg):
    pg = private_pg
    # A client without a server waits through a restart-like failure (refused, 57P03) for up to
    # server_connect_timeout + server_login_retry before it gets the error.
    settings = {"server_login_retry": 1, "server_connect_timeout": 3}
    if is_pgbouncer():
        settings["query_wait_timeout"] = 5  # PgBouncer 1.18 otherwise holds the client 120 s
    p = make_pooler(settings=settings, databases={"appdb": app_connstr(pg)})
    existing = p.connect("appdb", ALICE, ALICE_PW)
    assert existing.execute("select 1").fetchone() == (1,)

    pg.stop("fast")

    # the existing client's next query fails cleanly (an error, not a hang)
    with pytest.raises(psycopg.OperationalError):
        Bounded(existing.execute, "select 1").result(10, "query on a client whose server died")
    existing.close()

    # a new client gets an ErrorResponse, quickly
    fields, elapsed = new_client_error(p)
    assert fields["S"] in ("FATAL", "ERROR"), fields
    assert elapsed < 10

    pg.start()
    restarted = time.monotonic()

    def works():
        try:
            with p.connect("appdb", ALICE, ALICE_PW, connect_timeout=5) as conn:
                return conn.execute("select 42").fetchone() == (42,)
        except psycopg.OperationalError:
            return False
    wait_for(works, 15, "a client to get through again after PostgreSQL restarted", interval=0.2)
    took = time.monotonic() - restarted
    # server_login_retry = 1: the pooler may wait that long before trying again
    assert took < 10, "clients got through only %.1fs after the restart" % took
    assert p.alive()
