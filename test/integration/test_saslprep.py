"""SASLprep: non-ASCII passwords log in through the pooler exactly where PostgreSQL itself
accepts them. For each pair (the password as stored, the form the client types), PostgreSQL is
asked first, with libpq (psycopg) and psql: the role's password is set on PostgreSQL, and the
typed form logs in directly. Then the same pair goes through the pooler on both of its sides:
the client-facing SCRAM exchange checks the typed form against the plain password in auth_file,
and the pooler logs in upstream with that auth_file password against the secret PostgreSQL made."""
import os
import subprocess

import psycopg
import pytest

from conftest import app_connstr
from pg import PG_BIN
from pooler import tokenbouncer_only

# (stored, typed): each pair prepares to the same string, so PostgreSQL takes either for the other.
PAIRS = [
    ("I\u00adX", "IX"),                 # RFC 4013's example: SOFT HYPHEN maps to nothing
    ("cafe\u0301", "caf\u00e9"),        # decomposed stored, composed typed (NFKC)
    ("\u2168-nine", "IX-nine"),         # ROMAN NUMERAL NINE is "IX" after NFKC
    ("a\u00a0b\u3000c", "a b c"),       # non-ASCII spaces map to U+0020
]


def direct_ok(pg, user, password):
    """Does PostgreSQL itself (libpq as the client) accept this password?"""
    try:
        with psycopg.connect(host="127.0.0.1", port=pg.port, dbname="app", user=user,
                             password=password, sslmode="disable", connect_timeout=10) as conn:
            return conn.execute("select current_user").fetchone()[0] == user
    except psycopg.OperationalError:
        return False


def psql_login(port, dbname, user, password):
    """psql (libpq) logs in and prints current_user; returns the CompletedProcess."""
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="10", PGSSLMODE="disable")
    return subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-At", "-h", "127.0.0.1",
                           "-p", str(port), "-U", user, "-d", dbname, "-c", "select current_user"],
                          env=env, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("stored,typed", PAIRS, ids=["soft-hyphen", "nfkc-decomposed",
                                                      "roman-nine", "spaces"])
def test_prepared_forms_log_in_like_postgres(make_pooler, pg, new_role, stored, typed):
    role = new_role("sasl", password=stored)
    # What PostgreSQL accepts: the stored form and the typed one, and not a different word.
    assert direct_ok(pg, role, stored) and direct_ok(pg, role, typed)
    assert not direct_ok(pg, role, typed + "x")
    # Upstream with the auth_file password, client-facing against the same plain password.
    p = make_pooler(settings={"auth_type": "scram-sha-256"},
                    databases={"sasldb": app_connstr(pg, user=None, password=None)},
                    users={role: stored})
    for password in (stored, typed):
        with p.connect("sasldb", role, password) as conn:
            assert conn.execute("select current_user").fetchone() == (role,)
    r = psql_login(p.port, "sasldb", role, typed)
    assert r.returncode == 0 and r.stdout.strip() == role, r.stderr
    with pytest.raises(psycopg.OperationalError):
        p.connect("sasldb", role, typed + "x").close()


def test_upstream_password_in_the_alias(make_pooler, pg, new_role):
    """The alias's own password= is prepared too: stored decomposed in the ini, composed on
    PostgreSQL."""
    role = new_role("saslup", password="caf\u00e9")
    alias = app_connstr(pg, user=role, password="cafe\u0301")
    p = make_pooler(settings={"auth_type": "trust"}, databases={"updb": alias},
                    users={"anyone": ""})
    with p.connect("updb", "anyone") as conn:
        assert conn.execute("select current_user").fetchone() == (role,)


def test_not_prepared_when_postgres_does_not(make_pooler, pg, new_role):
    """Where prep fails (a prohibited character), PostgreSQL and the pooler both hash the raw
    bytes: the exact password works, a look-alike does not."""
    stored = "x\u0085y"                    # NEXT LINE (C.2.2) is prohibited: raw bytes hashed
    role = new_role("saslraw", password=stored)
    assert direct_ok(pg, role, stored) and not direct_ok(pg, role, "xy")
    p = make_pooler(settings={"auth_type": "scram-sha-256"},
                    databases={"rawdb": app_connstr(pg, user=None, password=None)},
                    users={role: stored})
    with p.connect("rawdb", role, stored) as conn:
        assert conn.execute("select current_user").fetchone() == (role,)
    with pytest.raises(psycopg.OperationalError):
        p.connect("rawdb", role, "xy").close()


def mapped_libraries(p):
    """The shared objects mapped into the pooler, by file name (from /proc/PID/maps)."""
    with open("/proc/%d/maps" % p.pid) as f:
        return {os.path.basename(line.split()[5]) for line in f if len(line.split()) >= 6}


def test_icu_and_libpq_loaded_only_when_needed(make_pooler, pg, new_role):
    """Resident memory of an idle pooler (issue 13): libpq (only `check --through` uses it)
    and ICU (only SASLprep of a non-ASCII password) are not mapped at start-up nor by an
    ASCII SCRAM login; the first non-ASCII password loads ICU, and it then logs in."""
    tokenbouncer_only("tokenbouncer loads libpq and ICU on demand")
    ascii_role = new_role("saslascii", password="plain-ascii")
    role = new_role("saslicu", password="caf\u00e9")
    p = make_pooler(settings={"auth_type": "scram-sha-256"},
                    databases={"icudb": app_connstr(pg, user=None, password=None)},
                    users={ascii_role: "plain-ascii", role: "caf\u00e9"})

    def has(prefix):
        return any(name.startswith(prefix) for name in mapped_libraries(p))

    assert has("libc.so"), "maps parsing found nothing: vacuous"
    assert not has("libpq.so") and not has("libicuuc.so"), sorted(mapped_libraries(p))
    with p.connect("icudb", ascii_role, "plain-ascii") as conn:
        assert conn.execute("select current_user").fetchone() == (ascii_role,)
    assert not has("libicuuc.so"), "an ASCII password loaded ICU"
    with p.connect("icudb", role, "cafe\u0301") as conn:
        assert conn.execute("select current_user").fetchone() == (role,)
    assert has("libicuuc.so") and not has("libpq.so"), sorted(mapped_libraries(p))
