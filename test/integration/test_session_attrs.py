"""[databases] target_session_attrs with a host list of a real primary and a real hot standby
(pg_basebackup -R of the test cluster), with libpq's meanings: read-write, read-only, primary,
standby, prefer-standby, any (issue 12)."""
import os
import subprocess

import psycopg
import pytest

from conftest import ALICE, ALICE_PW, APP_DB, APP_PW, APP_USER
from pg import PG_BIN, PgServer
from pooler import is_pgbouncer

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="PgBouncer 1.18 has no target_session_attrs")


@pytest.fixture(scope="module")
def standby(pg):
    sb = PgServer(certs=pg.certs)
    os.chmod(sb.basedir, 0o755)
    os.makedirs(sb.sockdir)
    if os.geteuid() == 0:
        os.chown(sb.basedir, sb.uid, sb.gid)
        os.chown(sb.sockdir, sb.uid, sb.gid)
    res = subprocess.run([os.path.join(PG_BIN, "pg_basebackup"), "-h", pg.sockdir, "-p", str(pg.port),
                          "-U", "postgres", "-D", sb.datadir, "-R", "-X", "stream", "-c", "fast"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
                         cwd=sb.basedir, **sb._as_user())
    if res.returncode != 0:
        pytest.fail("pg_basebackup failed:\n" + res.stdout + res.stderr)
    with open(os.path.join(sb.datadir, "postgresql.conf"), "a") as f:
        f.write("\n# the standby's own\nport = %d\nunix_socket_directories = '%s'\nhot_standby = on\n"
                % (sb.port, sb.sockdir))
    sb.start()
    assert sb.scalar("select pg_is_in_recovery()") is True
    yield sb
    sb.destroy()


def alias(hosts, tsa):
    return ("host=%s dbname=%s user=%s password=%s target_session_attrs=%s"
            % (",".join("127.0.0.1:%d" % h.port for h in hosts), APP_DB, APP_USER, APP_PW, tsa))


def in_recovery(p, db):
    with p.connect(db, ALICE, ALICE_PW, prepare_threshold=None) as c:
        return c.execute("select pg_is_in_recovery()").fetchone()[0]


def test_target_session_attrs_primary_and_standby(make_pooler, pg, standby):
    dbs = {
        "rw": alias([standby, pg], "read-write"),      # the standby is listed first
        "prim": alias([standby, pg], "primary"),
        "ro": alias([pg, standby], "read-only"),
        "sb": alias([pg, standby], "standby"),
        "pref": alias([pg, standby], "prefer-standby"),
        "pref_nosb": alias([pg], "prefer-standby"),    # no standby: takes the primary
        "any": alias([standby], "any"),
        "prim_none": alias([standby], "primary"),      # no host fits
    }
    p = make_pooler(databases=dbs, settings={"server_login_retry": 1})
    for _ in range(3):                                 # fresh connections cycle through the hosts
        with p.connect("rw", ALICE, ALICE_PW, prepare_threshold=None) as a, \
                p.connect("sb", ALICE, ALICE_PW, prepare_threshold=None) as b, \
                p.connect("pref", ALICE, ALICE_PW, prepare_threshold=None) as c:
            assert a.execute("select pg_is_in_recovery()").fetchone()[0] is False
            a.execute("create temp table tsa_probe (i int)")   # really writable
            assert b.execute("select pg_is_in_recovery()").fetchone()[0] is True
            assert c.execute("select pg_is_in_recovery()").fetchone()[0] is True
    assert in_recovery(p, "prim") is False
    assert in_recovery(p, "ro") is True
    assert in_recovery(p, "pref_nosb") is False
    assert in_recovery(p, "any") is True
    with pytest.raises(psycopg.OperationalError, match='no host of database "prim_none" is a primary'):
        in_recovery(p, "prim_none")
    log = p.log_text()
    assert ("127.0.0.1:%d is not read-write (target_session_attrs=read-write); trying the next "
            "host" % standby.port) in log
    assert ("127.0.0.1:%d is not a standby (target_session_attrs=prefer-standby); trying the "
            "next host" % pg.port) in log
    with p.connect("sb", ALICE, ALICE_PW, prepare_threshold=None) as c:
        assert c.execute("show port").fetchone()[0] == str(standby.port)
