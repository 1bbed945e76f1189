"""/healthz and /readyz on metrics_listen (doc/operations.md, "Health endpoints").

/healthz: 200 while the event loop turns. /readyz: 200 when the configuration is loaded, the
listeners are open, no shutdown is under way and every token alias with a fixed upstream user
holds a usable token; else 503 with the cause on one line."""
import signal
import urllib.error
import urllib.request

import psycopg
import pytest

import pooler as pooler_mod
from conftest import ALICE, ALICE_PW, app_connstr
from util import free_port, wait_for
from test_entra import (ROLE, entra, entra_pooler, make_front, secret_cred,  # noqa: F401 (fixtures)
                        standins, token_posts)


@pytest.fixture(autouse=True)
def _tokenbouncer_only():
    pooler_mod.tokenbouncer_only("/healthz and /readyz are tokenbouncer's")


def get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_password_pooler_live_and_ready_then_not_ready_while_shutting_down(make_pooler, pg, new_role):
    role = new_role("health")
    mport = free_port()
    p = make_pooler(settings={"metrics_listen": "127.0.0.1:%d" % mport, "pool_mode": "session"},
                    databases={"appdb": app_connstr(pg, user=role, pool_size=2)})
    assert get(mport, "/healthz") == (200, "ok\n")
    assert get(mport, "/readyz") == (200, "ok\n")
    # SIGTERM waits for the clients: the pooler still runs, but must take no new ones
    with psycopg.connect(host="127.0.0.1", port=p.port, dbname="appdb", user=ALICE, password=ALICE_PW,
                         sslmode="disable", autocommit=True) as held:
        held.execute("select 1")
        p.expected_exit = True
        p.signal(signal.SIGTERM)
        status, body = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(get(mport, "/readyz")), 10,
                                "/readyz to turn 503 after SIGTERM")
        assert body == "not ok: shutting down\n"
        assert get(mport, "/healthz") == (200, "ok\n")
        assert held.execute("select 2").fetchone() == (2,)


def test_readyz_waits_for_the_token_of_a_fixed_user_alias(make_pooler, certs, make_front, standins, tmp_path):
    e = standins(entra.EntraStandIn())
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    mport = free_port()
    p = entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path),
                     settings={"metrics_listen": "127.0.0.1:%d" % mport})
    wait_for(lambda: get(mport, "/readyz") == (200, "ok\n"), 15, "/readyz once the prefetched token is in")
    assert token_posts(e), "ready without a token request"
    assert get(mport, "/healthz") == (200, "ok\n")
    p.stop()


def test_readyz_names_the_alias_whose_token_fails(make_pooler, certs, make_front, standins, tmp_path):
    e = standins(entra.EntraStandIn())
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    mport = free_port()
    entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path, secret="not-the-secret"),
                 settings={"metrics_listen": "127.0.0.1:%d" % mport})
    wait_for(lambda: token_posts(e), 10, "the prefetch's token request")
    status, body = wait_for(lambda: (lambda r: r if "token failed" in r[1] else None)(get(mport, "/readyz")),
                            15, "/readyz to report the failed token")
    assert status == 503
    assert body.startswith('not ok: alias "orders": token failed: '), body
    assert "not-the-secret" not in body
    assert get(mport, "/healthz") == (200, "ok\n"), "a failing token endpoint is no reason to restart"
