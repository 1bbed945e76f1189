"""Client connection limits as in PgBouncer 1.25: max_db_client_connections (global and per
database), max_user_client_connections (global and per [users] entry), max_client_conn changed
with SET; the console stays reachable when the pooler is full; SHOW DATABASES and SHOW USERS
report the limits and counts."""
import pytest

import rawpg
from conftest import ALICE, ALICE_PW, app_connstr
from pooler import is_pgbouncer
from rawpg import scram_secret
from util import wait_for

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: the reference is 1.18")

ADMIN, ADMIN_PW = "admin", "Admin-Pw-91ac3e"
BOB, BOB_PW = "bob", "Bob-Pw-3e81d0"


def limits_pooler(make_pooler, pg, settings=None, databases=None, user_settings=None):
    s = {"admin_users": ADMIN}
    s.update(settings or {})
    users = {ALICE: scram_secret(ALICE_PW), BOB: scram_secret(BOB_PW), ADMIN: scram_secret(ADMIN_PW)}
    dbs = databases or {"appdb": app_connstr(pg), "other": app_connstr(pg)}
    return make_pooler(settings=s, users=users, databases=dbs, user_settings=user_settings)


def login(p, user=ALICE, pw=ALICE_PW, db="appdb"):
    return rawpg.try_login("127.0.0.1", p.port, user, db, pw)


def refused(p, message, user=ALICE, pw=ALICE_PW, db="appdb"):
    with pytest.raises(rawpg.PgError) as ei:
        login(p, user, pw, db).close()
    assert (ei.value.code, ei.value.message) == ("53300", message), ei.value.fields


def console_rows(p, sql):
    c = login(p, ADMIN, ADMIN_PW, "pgbouncer")
    try:
        r = c.query_ok(sql)
        return [dict(zip(r.columns, row)) for row in r.rows]
    finally:
        c.terminate()


def test_max_db_client_connections_global_and_per_database(make_pooler, pg):
    dbs = {"appdb": app_connstr(pg), "other": app_connstr(pg) + " max_db_client_connections=1"}
    p = limits_pooler(make_pooler, pg, {"max_db_client_connections": 2}, databases=dbs)
    held = [login(p), login(p, BOB, BOB_PW)]
    try:
        refused(p, "client connections exceeded (max_db_client_connections)")
        held.append(login(p, db="other"))       # another database has its own count
        refused(p, "client connections exceeded (max_db_client_connections)", db="other")
        rows = {r["name"]: r for r in console_rows(p, "SHOW DATABASES")}
        assert (rows["appdb"]["max_client_connections"], rows["appdb"]["current_client_connections"]) == ("2", "2")
        assert (rows["other"]["max_client_connections"], rows["other"]["current_client_connections"]) == ("1", "1")
    finally:
        held.pop(0).terminate()
    # a client that left frees its place at once
    c = login(p)
    c.terminate()
    for c in held:
        c.terminate()


def test_max_user_client_connections_global_and_per_user(make_pooler, pg):
    p = limits_pooler(make_pooler, pg, {"max_user_client_connections": 2},
                      user_settings={BOB: "max_user_client_connections=1"})
    held = [login(p), login(p, db="other"), login(p, BOB, BOB_PW)]
    try:
        refused(p, "client connections exceeded (max_user_client_connections)")
        refused(p, "client connections exceeded (max_user_client_connections)", BOB, BOB_PW, "other")
        rows = {r["name"]: r for r in console_rows(p, "SHOW USERS")}
        assert (rows[ALICE]["max_user_client_connections"], rows[ALICE]["current_client_connections"]) == ("2", "2")
        assert (rows[BOB]["max_user_client_connections"], rows[BOB]["current_client_connections"]) == ("1", "1")
    finally:
        for c in held:
            c.terminate()


def test_set_max_client_conn_applies_at_once_and_console_stays_reachable(make_pooler, pg):
    p = limits_pooler(make_pooler, pg)
    a = login(p)
    try:
        console_rows(p, "SET max_client_conn = 1")
        refused(p, "no more connections allowed (max_client_conn)", BOB, BOB_PW)
        # full, but the console still lets an admin in (PgBouncer does the same)
        assert console_rows(p, "SHOW CONFIG max_client_conn")[0]["value"] == "1"
        console_rows(p, "SET max_client_conn = 10")
        login(p, BOB, BOB_PW).terminate()
    finally:
        a.terminate()
    wait_for(lambda: console_rows(p, "SHOW DATABASES appdb")[0]["current_client_connections"] == "0",
             10, "counts to drop when clients leave")
