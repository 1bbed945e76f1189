"""Client authentication to the pooler: scram-sha-256, md5, plain, trust, hba; wrong passwords;
long upstream passwords; no password in the log."""
import re

import psycopg
import pytest

import rawpg
from conftest import ALICE, ALICE_PW, APP_PW, APP_USER, app_connstr
from pooler import is_pgbouncer, tokenbouncer_only
from rawpg import (AUTH_CLEARTEXT, AUTH_MD5, AUTH_OK, AUTH_SASL, AUTH_SASL_CONTINUE,
                   AUTH_SASL_FINAL, PgError, md5_secret, scram_secret, try_login)

BOB = "bob"
BOB_PW = "Bob-Pw-91d0ce"
SCRAM_FLOW = [AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL, AUTH_OK]
SERVER_ERROR_RE = re.compile(r"(FATAL|ERROR):")
# PgBouncer 1.18 (TB_FLAVOR=pgbouncer reference runs only) reports failed logins as 08P01.
BAD_PW = ("28P01", "08P01") if is_pgbouncer() else ("28P01",)
REFUSED = ("28000", "28P01", "08P01") if is_pgbouncer() else ("28000", "28P01")


def login_query(p, user, password, db="appdb", **kw):
    """Raw login + `select current_user`; returns (auth codes, current_user)."""
    with try_login("127.0.0.1", p.port, user, db, password, **kw) as c:
        r = c.query_ok("select current_user")
        return c.auth_codes, r.rows[0][0]


def login_error(p, user, password, db="appdb", **kw):
    """Raw login that must be refused with an ErrorResponse; returns its fields."""
    with pytest.raises(PgError) as ei:
        c = try_login("127.0.0.1", p.port, user, db, password, **kw)
        c.close()
    return ei.value.fields


def tls_settings(certs, mode="prefer"):
    return {"client_tls_sslmode": mode, "client_tls_key_file": certs.server_key,
            "client_tls_cert_file": certs.server_crt, "client_tls_ca_file": certs.ca_crt}


# ------------------------------------------------------------------ wrong password
def test_wrong_password_is_28P01(make_pooler):
    p = make_pooler()
    fields = login_error(p, ALICE, "not-the-password")
    assert fields["C"] in BAD_PW
    assert fields["S"] == "FATAL"
    with pytest.raises(psycopg.OperationalError) as ei:
        p.connect("appdb", ALICE, "not-the-password").close()
    assert SERVER_ERROR_RE.search(str(ei.value)), str(ei.value)
    # the right password still works afterwards
    assert login_query(p, ALICE, ALICE_PW)[1] == APP_USER


def test_unknown_user_is_refused_like_a_wrong_password(make_pooler):
    p = make_pooler()
    fields = login_error(p, "nosuchuser", "whatever")
    assert fields["C"] in BAD_PW


# ------------------------------------------------------------------ scram-sha-256
@pytest.mark.parametrize("stored", ["scram-secret", "plain"])
def test_scram_auth(make_pooler, stored):
    if stored == "scram-secret" and is_pgbouncer():
        pytest.skip("PgBouncer 1.18 passes SCRAM client keys to the forced user")
    secret = scram_secret(BOB_PW) if stored == "scram-secret" else BOB_PW
    p = make_pooler(settings={"auth_type": "scram-sha-256"}, users={BOB: secret})
    codes, user = login_query(p, BOB, BOB_PW)
    assert codes == SCRAM_FLOW
    assert user == APP_USER
    assert login_error(p, BOB, BOB_PW + "x")["C"] in BAD_PW
    with p.connect("appdb", BOB, BOB_PW) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


# ------------------------------------------------------------------ md5
@pytest.mark.parametrize("stored", ["md5-secret", "plain"])
def test_md5_auth(make_pooler, stored):
    secret = md5_secret(BOB, BOB_PW) if stored == "md5-secret" else BOB_PW
    p = make_pooler(settings={"auth_type": "md5"}, users={BOB: secret})
    codes, user = login_query(p, BOB, BOB_PW)
    assert codes == [AUTH_MD5, AUTH_OK]
    assert user == APP_USER
    assert login_error(p, BOB, "wrong")["C"] in BAD_PW
    with p.connect("appdb", BOB, BOB_PW) as conn:
        assert conn.execute("select 2").fetchone() == (2,)


# ------------------------------------------------------------------ plain
def test_plain_auth_over_tls(make_pooler, certs):
    settings = {"auth_type": "plain"}
    settings.update(tls_settings(certs, "prefer"))
    p = make_pooler(settings=settings, users={BOB: BOB_PW})
    codes, user = login_query(p, BOB, BOB_PW, tls={})
    assert codes == [AUTH_CLEARTEXT, AUTH_OK]
    assert user == APP_USER
    assert login_error(p, BOB, "wrong", tls={})["C"] in BAD_PW
    with p.connect("appdb", BOB, BOB_PW, sslmode="require") as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("select 3").fetchone() == (3,)


def test_plain_auth_refused_without_tls(make_pooler, certs):
    """auth_type=plain on a non-TLS connection: an ErrorResponse, and the pooler never asks for
    the cleartext password."""
    tokenbouncer_only("auth_plain_without_tls")
    settings = {"auth_type": "plain"}
    settings.update(tls_settings(certs, "prefer"))
    p = make_pooler(settings=settings, users={BOB: BOB_PW})
    with rawpg.RawConn("127.0.0.1", p.port) as c:
        c.startup(BOB, "appdb")
        t, payload = c.read_message()
        assert t == "E", "expected an ErrorResponse, got %r (auth request %r)" % (t, payload[:4])
        fields = rawpg.parse_error_fields(payload)
        assert fields["C"][:2] in ("28", "08"), fields


def test_plain_auth_without_tls_when_allowed(make_pooler):
    tokenbouncer_only("auth_plain_without_tls")
    p = make_pooler(settings={"auth_type": "plain", "auth_plain_without_tls": 1}, users={BOB: BOB_PW})
    codes, user = login_query(p, BOB, BOB_PW)
    assert codes == [AUTH_CLEARTEXT, AUTH_OK]
    assert user == APP_USER
    assert login_error(p, BOB, "wrong")["C"] in BAD_PW


# ------------------------------------------------------------------ trust
def test_trust_auth(make_pooler):
    p = make_pooler(settings={"auth_type": "trust"}, users={BOB: BOB_PW})
    codes, user = login_query(p, BOB, None)
    assert codes == [AUTH_OK]
    assert user == APP_USER
    with p.connect("appdb", BOB) as conn:
        assert conn.execute("select 4").fetchone() == (4,)


# ------------------------------------------------------------------ hba
HBA_USERS = ["scramuser", "trustuser", "rejectuser", "ssluser", "nossluser", "addruser"]
HBA_PW = "Hba-Pw-55aa01"


@pytest.fixture
def hba_pooler(make_pooler, pg, certs):
    hba = "\n".join([
        "# first match wins",
        "host      otherdb  all         127.0.0.1/32  reject",
        "host      appdb    scramuser   127.0.0.1/32  scram-sha-256",
        "host      appdb    trustuser   127.0.0.1/32  trust",
        "host      appdb    rejectuser  127.0.0.1/32  reject",
        "hostssl   appdb    ssluser     127.0.0.1/32  scram-sha-256",
        "hostnossl appdb    nossluser   127.0.0.1/32  trust",
        "host      appdb    addruser    127.0.0.2/32  trust",
        "host      appdb    addruser    127.0.0.1/32  reject",
        "host      otherdb2 all         127.0.0.1/32  trust",
        "",
    ])
    settings = {"auth_type": "hba"}
    settings.update(tls_settings(certs, "prefer"))
    users = {u: scram_secret(HBA_PW) for u in HBA_USERS}
    if is_pgbouncer():
        users = {u: HBA_PW for u in HBA_USERS}
    return make_pooler(settings=settings, users=users, hba=hba,
                       databases={"appdb": app_connstr(pg), "otherdb": app_connstr(pg),
                                  "otherdb2": app_connstr(pg), "norule": app_connstr(pg)})


def assert_refused(fields):
    assert fields["C"] in REFUSED, fields
    assert fields["S"] == "FATAL", fields


def test_hba_scram_rule(hba_pooler):
    codes, user = login_query(hba_pooler, "scramuser", HBA_PW)
    assert codes == SCRAM_FLOW and user == APP_USER
    assert login_error(hba_pooler, "scramuser", "wrong")["C"] in BAD_PW


def test_hba_trust_rule(hba_pooler):
    codes, user = login_query(hba_pooler, "trustuser", None)
    assert codes == [AUTH_OK] and user == APP_USER


def test_hba_reject_rule(hba_pooler):
    assert_refused(login_error(hba_pooler, "rejectuser", HBA_PW))


def test_hba_database_column(hba_pooler):
    # trustuser is trusted on appdb, but otherdb is rejected for everyone by the first rule
    assert_refused(login_error(hba_pooler, "trustuser", HBA_PW, db="otherdb"))
    codes, _ = login_query(hba_pooler, "trustuser", None, db="otherdb2")
    assert codes == [AUTH_OK]


def test_hba_no_matching_rule_is_refused(hba_pooler):
    # no line matches database norule
    assert_refused(login_error(hba_pooler, "scramuser", HBA_PW, db="norule"))


def test_hba_hostssl(hba_pooler):
    assert_refused(login_error(hba_pooler, "ssluser", HBA_PW))
    codes, user = login_query(hba_pooler, "ssluser", HBA_PW, tls={})
    assert codes == SCRAM_FLOW and user == APP_USER


def test_hba_hostnossl(hba_pooler):
    codes, _ = login_query(hba_pooler, "nossluser", None)
    assert codes == [AUTH_OK]
    assert_refused(login_error(hba_pooler, "nossluser", HBA_PW, tls={}))


def test_hba_address_column(hba_pooler):
    codes, _ = login_query(hba_pooler, "addruser", None, source_addr="127.0.0.2")
    assert codes == [AUTH_OK]
    assert_refused(login_error(hba_pooler, "addruser", HBA_PW, source_addr="127.0.0.1"))


# ------------------------------------------------------------------ long upstream password
def test_60k_password_upstream_and_client(make_pooler, pg, new_role):
    """A role with a ~60,000-character password (as cloud IAM tokens grow): the client logs in to
    the pooler with it (SCRAM against the plain password in auth_file) and the pooler logs in
    upstream with it (the alias has no user=/password=)."""
    tokenbouncer_only("PgBouncer 1.18 limits password length")
    long_pw = ("Tk-" + "abcdefghij0123456789" * 3000)[:60000]
    assert len(long_pw) == 60000
    name = new_role("longpw", password=long_pw)
    # the role really has that password on PostgreSQL
    with pg.connect(user=name, password=long_pw, dbname="app") as conn:
        assert conn.execute("select current_user").fetchone() == (name,)
    p = make_pooler(settings={"auth_type": "scram-sha-256"},
                    databases={"longdb": app_connstr(pg, user=None, password=None)},
                    users={name: long_pw})
    with p.connect("longdb", name, long_pw) as conn:
        assert conn.execute("select current_user, current_database()").fetchone() == (name, "app")
    # and a wrong (also long) password is refused
    assert login_error(p, name, long_pw[:-1] + "X", db="longdb")["C"] in BAD_PW


def test_client_user_and_auth_file_password_upstream(make_pooler, pg, new_role):
    """Alias without user=/password=: the client's user logs in upstream with the auth_file
    password (plain or md5 in auth_file)."""
    plain_role = new_role("plainup", password="Up-Pw-1")
    md5_role = new_role("md5up", password="Up-Pw-2", md5=True)
    p = make_pooler(settings={"auth_type": "md5"},
                    databases={"anydb": app_connstr(pg, user=None, password=None)},
                    users={plain_role: "Up-Pw-1", md5_role: md5_secret(md5_role, "Up-Pw-2")})
    assert login_query(p, plain_role, "Up-Pw-1", db="anydb")[1] == plain_role
    assert login_query(p, md5_role, "Up-Pw-2", db="anydb")[1] == md5_role


# ------------------------------------------------------------------ secrets stay out of the log
def test_no_password_in_log(make_pooler, pg, new_role, certs):
    up_role = new_role("logup", password="Upstream-Secret-Pw-4242")
    client_pw = "Client-Secret-Pw-7777"
    plain_pw = "Plain-Secret-Pw-8888"
    md5_pw = "Md5-Secret-Pw-9999"
    wrong_pw = "Wrong-Secret-Pw-1111"
    users = {"scramc": client_pw if is_pgbouncer() else scram_secret(client_pw), "plainc": plain_pw, "md5c": md5_secret("md5c", md5_pw),
             up_role: "Upstream-Secret-Pw-4242"}
    p = make_pooler(settings={"verbose": 2, "auth_type": "scram-sha-256"},
                    databases={"appdb": app_connstr(pg),
                               "clientdb": app_connstr(pg, user=None, password=None)},
                    users=users)
    login_query(p, "scramc", client_pw)
    login_query(p, "plainc", plain_pw)
    login_query(p, up_role, "Upstream-Secret-Pw-4242", db="clientdb")
    login_error(p, "scramc", wrong_pw)
    login_error(p, "plainc", wrong_pw)
    with p.connect("appdb", "scramc", client_pw) as conn:
        conn.execute("select 1")
    with pytest.raises(psycopg.OperationalError):
        p.connect("appdb", "plainc", wrong_pw).close()
    p.stop()
    log = p.log_text()
    assert len(log) > 0
    secrets = [client_pw, plain_pw, md5_pw, wrong_pw, APP_PW, "Upstream-Secret-Pw-4242",
               users["scramc"].split("$")[-1], md5_secret("md5c", md5_pw)]
    leaked = [s for s in secrets if s in log]
    assert leaked == [], "secrets found in the log: %r" % leaked
