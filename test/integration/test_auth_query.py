"""auth_user / auth_query / auth_dbname: a client whose user is not in auth_file is looked up
with auth_query over a server connection of the lookup alias logged in as auth_user, then
authenticated locally against the returned verifier (SCRAM, md5 or plain)."""
import threading
import time

import pytest

import rawpg
from conftest import APP_DB, APP_PW
from pooler import is_pgbouncer

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: tokenbouncer's messages")

SU_PW = "Authq-Su-Pw-5a1"


def authq_pooler(make_pooler, pg, auth_user, auth_pw=SU_PW, settings=None, db_extra=""):
    s = {"pool_mode": "transaction", "auth_user": auth_user}
    s.update(settings or {})
    # only auth_user is in the userlist; no user= and no password= on the alias
    return make_pooler(settings=s, users={auth_user: auth_pw},
                       databases={"appdb": "host=127.0.0.1 port=%d dbname=%s pool_size=3 %s" %
                                  (pg.port, APP_DB, db_extra)})


def login_error(p, user, password):
    with pytest.raises(rawpg.PgError) as ei:
        rawpg.try_login("127.0.0.1", p.port, user, "appdb", password).close()
    return ei.value


def test_auth_query_scram_verifier_and_unknown_user(make_pooler, pg, new_role):
    su = new_role("aqsu", password=SU_PW)
    pg.sql('ALTER ROLE "%s" SUPERUSER' % su)
    user = new_role("aqs")
    assert pg.scalar("select rolpassword from pg_authid where rolname = %s", (user,)).startswith("SCRAM-SHA-256$")
    p = authq_pooler(make_pooler, pg, su, settings={"auth_type": "scram-sha-256"})
    with rawpg.try_login("127.0.0.1", p.port, user, "appdb", APP_PW) as c:
        assert c.auth_codes[0] == rawpg.AUTH_SASL
        # upstream by SCRAM pass-through with the key the client's proof gave
        assert c.query_ok("select current_user").rows == [(user,)]
    assert login_error(p, user, "wrong-password").code == "28P01"
    e = login_error(p, "no_such_user_aq", "whatever")
    assert e.code == "28P01"
    assert "password authentication failed" in e.fields.get("M", "")
    # an expired role: the default query returns NULL for it
    old = new_role("aqx")
    pg.sql("ALTER ROLE \"%s\" VALID UNTIL '2000-01-01'" % old)
    assert login_error(p, old, APP_PW).code == "28P01"
    assert APP_PW not in p.log_for_report()


def test_auth_query_md5_verifier(make_pooler, pg, new_role):
    su = new_role("aqsu", password=SU_PW)
    pg.sql('ALTER ROLE "%s" SUPERUSER' % su)
    user = new_role("aqm", md5=True)
    assert pg.scalar("select rolpassword from pg_authid where rolname = %s", (user,)).startswith("md5")
    p = authq_pooler(make_pooler, pg, su, settings={"auth_type": "md5"})
    with rawpg.try_login("127.0.0.1", p.port, user, "appdb", APP_PW) as c:
        assert c.auth_codes[0] == rawpg.AUTH_MD5
        # upstream with the md5 hash the query returned
        assert c.query_ok("select current_user").rows == [(user,)]
    assert login_error(p, user, "wrong-password").code == "28P01"


SETUP_DEFINER = """
CREATE SCHEMA IF NOT EXISTS aq;
CREATE TABLE IF NOT EXISTS aq.calls (usename text, at timestamptz default now());
CREATE OR REPLACE FUNCTION aq.get_auth(p_usename text, OUT username text, OUT password text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO aq.calls(usename) VALUES (p_usename);
    PERFORM pg_sleep(0.7);
    SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END
      INTO username, password FROM pg_authid WHERE rolname = p_usename AND rolcanlogin;
    RETURN;
END $$;
REVOKE ALL ON FUNCTION aq.get_auth(text) FROM PUBLIC;
"""


def test_auth_query_security_definer_single_flight(make_pooler, pg, new_role):
    """auth_user is no superuser: it may only call a SECURITY DEFINER function (the pattern for
    managed services that hide pg_authid). Eight concurrent logins of one unknown user run the
    function once; the function records each call."""
    lookup = new_role("aqlk", password=SU_PW)
    pg.sql(SETUP_DEFINER, dbname=APP_DB)
    pg.sql('GRANT USAGE ON SCHEMA aq TO "%s"' % lookup, dbname=APP_DB)
    pg.sql('GRANT EXECUTE ON FUNCTION aq.get_auth(text) TO "%s"' % lookup, dbname=APP_DB)
    user = new_role("aqd")
    p = authq_pooler(make_pooler, pg, lookup,
                     settings={"auth_query": "SELECT username, password FROM aq.get_auth($1)"})
    before = pg.scalar("select count(*) from aq.calls where usename = %s", (user,), dbname=APP_DB)
    assert before == 0
    results, errors = [], []

    def one():
        try:
            with rawpg.try_login("127.0.0.1", p.port, user, "appdb", APP_PW, timeout=20) as c:
                results.append(c.query_ok("select current_user").rows[0][0])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert results == [user] * 8
    calls = pg.scalar("select count(*) from aq.calls where usename = %s", (user,), dbname=APP_DB)
    # the eight logins overlap the 0.7 s the function sleeps: one query served them all
    assert calls == 1, calls
    # the lookup role cannot read pg_authid itself: the default query would fail
    with pytest.raises(Exception):
        pg.sql('SET ROLE "%s"; SELECT rolpassword FROM pg_authid' % lookup, dbname=APP_DB)


def test_auth_query_wrong_auth_user_password(make_pooler, pg, new_role):
    su = new_role("aqsu", password=SU_PW)
    pg.sql('ALTER ROLE "%s" SUPERUSER' % su)
    user = new_role("aqw")
    p = authq_pooler(make_pooler, pg, su, auth_pw="not-the-password")
    t0 = time.monotonic()
    e = login_error(p, user, APP_PW)
    assert time.monotonic() - t0 < 15
    msg = e.fields.get("M", "")
    assert "auth_user" in msg and su in msg and '"appdb"' in msg, msg
    assert "password authentication failed" in msg, msg


def test_auth_query_failing_query_names_the_alias(make_pooler, pg, new_role):
    su = new_role("aqsu", password=SU_PW)
    pg.sql('ALTER ROLE "%s" SUPERUSER' % su)
    user = new_role("aqf")
    p = authq_pooler(make_pooler, pg, su, settings={"auth_query": "SELECT usename, passwd FROM no_such_table WHERE usename=$1"})
    e = login_error(p, user, APP_PW)
    msg = e.fields.get("M", "")
    assert "auth_query" in msg and '"appdb"' in msg and "no_such_table" in msg, msg
    # the server that ran it is fine and the pooler still serves
    e2 = login_error(p, user, APP_PW)
    assert "no_such_table" in e2.fields.get("M", "")


def documented_sql():
    import os
    import re
    doc = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "doc",
                       "migrating-from-pgbouncer.md")
    text = open(doc).read()
    section = text[text.index("## auth_user and auth_query"):]
    sql = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    query = re.search(r"auth_query = (.*)\n", section).group(1)
    return sql, query


def test_auth_query_documented_security_definer_function(make_pooler, pg, new_role):
    """The function doc/migrating-from-pgbouncer.md gives, as written, for a non-superuser."""
    sql, query = documented_sql()
    lookup = new_role("aqdoc", password=SU_PW)
    pg.sql("DROP SCHEMA IF EXISTS pgbouncer CASCADE", dbname=APP_DB)
    pg.sql(sql.replace("tb_auth", '"%s"' % lookup), dbname=APP_DB)
    user = new_role("aqdu")
    p = authq_pooler(make_pooler, pg, lookup, settings={"auth_query": query})
    with rawpg.try_login("127.0.0.1", p.port, user, "appdb", APP_PW) as c:
        assert c.query_ok("select current_user").rows == [(user,)]
    assert login_error(p, "no_such_user_aqdoc", "x").code == "28P01"


def test_auth_dbname_alias_with_its_own_password(make_pooler, pg, new_role):
    """auth_dbname names another alias; auth_user logs in with that alias's password= (it is in
    no userlist), and the per-database auth_user overrides the (wrong) global one."""
    su = new_role("aqsu", password=SU_PW)
    pg.sql('ALTER ROLE "%s" SUPERUSER' % su)
    user = new_role("aqdb")
    base = "host=127.0.0.1 port=%d dbname=%s" % (pg.port, APP_DB)
    p = make_pooler(settings={"pool_mode": "transaction", "auth_user": "nobody_at_all"},
                    users={"someone_else": "x"},
                    databases={"appdb": "%s auth_user=%s auth_dbname=lookup" % (base, su),
                               "lookup": "%s password=%s" % (base, SU_PW)})
    with rawpg.try_login("127.0.0.1", p.port, user, "appdb", APP_PW) as c:
        assert c.query_ok("select current_user").rows == [(user,)]
    # the query ran as auth_user on a server of the lookup alias, which stays pooled
    assert pg.backends(su) >= 1
