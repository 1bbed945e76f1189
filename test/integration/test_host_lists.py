"""[databases] host lists as PgBouncer 1.24: host=a,b with per-host ports, load_balance_hosts
round-robin (each new server connection takes the next host) or disable (stay on a host until
a connection to it fails). One entry points at a closed port, so which host a connection
tried shows in the log as a refused login."""
import pytest

import rawpg
from conftest import ALICE, ALICE_PW, APP_DB, APP_PW, APP_USER
from pooler import is_pgbouncer

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: the reference is 1.18")


def host_list_pooler(make_pooler, pg, balance):
    entry = "host=127.0.0.1:1,127.0.0.1:%d dbname=%s user=%s password=%s" % (pg.port, APP_DB, APP_USER, APP_PW)
    if balance:
        entry += " load_balance_hosts=" + balance
    return make_pooler(settings={"server_login_retry": 0.1, "default_pool_size": 10},
                       databases={"appdb": entry})


def open_sessions(p, n):
    conns = [rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW) for _ in range(n)]
    for c in conns:
        assert c.query_ok("select 1").rows == [("1",)]
    return conns


def refused(p):
    with open(p.logfile) as f:
        return sum(1 for line in f if "closing: login failed" in line and "(127.0.0.1:1)" in line)


@pytest.mark.parametrize("balance", [None, "round-robin"])
def test_round_robin_takes_each_host_in_turn(make_pooler, pg, balance):
    p = host_list_pooler(make_pooler, pg, balance)
    conns = open_sessions(p, 4)     # session mode: four servers, opened one after another
    try:
        assert refused(p) >= 2, p.log_text()
    finally:
        for c in conns:
            c.terminate()


def test_disable_stays_on_a_working_host(make_pooler, pg):
    p = host_list_pooler(make_pooler, pg, "disable")
    conns = open_sessions(p, 4)
    try:
        assert refused(p) == 1, p.log_text()
    finally:
        for c in conns:
            c.terminate()
