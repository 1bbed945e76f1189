"""SCRAM pass-through: the common PgBouncer set-up of a userlist of SCRAM verifiers copied from
pg_authid, no plain passwords and no password= on the alias. The pooler recovers the ClientKey
from a client's SCRAM proof and answers the server's SCRAM challenge for the same user with it."""
import pytest

import rawpg
from conftest import APP_DB, APP_PW
from pooler import is_pgbouncer

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: tokenbouncer's messages")


def verifier(pg, role):
    return pg.scalar("select rolpassword from pg_authid where rolname = %s", (role,))


def passthrough_pooler(make_pooler, pg, roles, settings=None):
    users = {r: verifier(pg, r) for r in roles}
    assert all(v.startswith("SCRAM-SHA-256$") for v in users.values())
    s = {"pool_mode": "transaction"}
    s.update(settings or {})
    # no user= and no password= on the alias: each client's own user, logged in upstream with its key
    return make_pooler(settings=s, users=users,
                       databases={"appdb": "host=127.0.0.1 port=%d dbname=%s pool_size=2" % (pg.port, APP_DB)})


def test_scram_passthrough_with_verifier_only_userlist(make_pooler, pg, new_role):
    a, b = new_role("spa"), new_role("spb", password="Other-Pw-19")
    p = passthrough_pooler(make_pooler, pg, [a, b])
    with rawpg.try_login("127.0.0.1", p.port, a, "appdb", APP_PW) as ca, \
            rawpg.try_login("127.0.0.1", p.port, b, "appdb", "Other-Pw-19") as cb:
        assert ca.query_ok("select current_user").rows == [(a,)]
        assert cb.query_ok("select current_user").rows == [(b,)]
        # more servers for the same user reuse the kept key
        with rawpg.try_login("127.0.0.1", p.port, a, "appdb", APP_PW) as ca2:
            ca.query_ok("begin")
            assert ca2.query_ok("select current_user").rows == [(a,)]
            ca.query_ok("commit")
    assert pg.backends(a) >= 1
    # a wrong password is refused locally, as before
    with pytest.raises(rawpg.PgError) as ei:
        rawpg.try_login("127.0.0.1", p.port, a, "appdb", "wrong").close()
    assert ei.value.code == "28P01"
    # the key is never written to the log
    assert "ClientKey" not in p.log_for_report()


def test_scram_passthrough_refuses_a_different_verifier(make_pooler, pg, new_role):
    """auth_file holds a verifier of the right password but with another salt than the server's:
    the client logs in to the pooler, the server login fails with a reason, nothing hangs."""
    a = new_role("spc")
    users = {a: rawpg.scram_secret(APP_PW)}
    p = make_pooler(settings={"pool_mode": "transaction"}, users=users,
                    databases={"appdb": "host=127.0.0.1 port=%d dbname=%s" % (pg.port, APP_DB)})
    with pytest.raises(rawpg.PgError) as ei:
        c = rawpg.try_login("127.0.0.1", p.port, a, "appdb", APP_PW)
        try:
            c.query_ok("select 1")
        finally:
            c.close()
    assert "salt or iterations" in ei.value.message, ei.value.message
