"""Replication connections through the pooler (issue 12), as PgBouncer 1.23+: a startup packet
with replication=true (physical) or replication=database (logical) is authenticated by the pooler
like any client, then runs on a server connection of its own, opened with the same replication
parameter, never shared and closed when the client leaves. Driven by PostgreSQL's own tools:
pg_receivewal, pg_basebackup and pg_recvlogical."""
import os
import shutil
import subprocess
import tempfile

import psycopg
import pytest

from conftest import ALICE, ALICE_PW, APP_DB, APP_PW, app_connstr
from pg import PG_BIN
from pooler import tokenbouncer_only

pytestmark = pytest.mark.usefixtures("tokenbouncer_flavor")


@pytest.fixture
def tokenbouncer_flavor():
    tokenbouncer_only("Debian's PgBouncer 1.18 has no replication connections")


_n = [0]


@pytest.fixture
def repl_role(pg):
    _n[0] += 1
    name = "repl_%d_%d" % (os.getpid(), _n[0])
    pg.create_role(name, APP_PW, extra="REPLICATION")
    pg.sql('GRANT ALL ON SCHEMA public TO "%s"' % name, dbname=APP_DB)
    return name


def repl_pooler(make_pooler, pg, role, **settings):
    """appdb for ordinary and logical connections; "replication", the database name PostgreSQL's
    physical tools always send (libpq's streamutil discards any dbname for them)."""
    s = {"pool_mode": "transaction"}
    s.update(settings)
    return make_pooler(settings=s, databases={"appdb": app_connstr(pg, user=role, pool_size=4),
                                              "replication": app_connstr(pg, user=role, pool_size=4)})


def run_tool(args, timeout=90):
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": ALICE_PW, "PGCONNECT_TIMEOUT": "10"}
    res = subprocess.run([os.path.join(PG_BIN, args[0])] + args[1:], env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=timeout)
    return res


def conninfo(p, dbname="appdb"):
    return "host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable" % (p.port, ALICE, dbname)


def walsenders(pg, role):
    return pg.scalar("select count(*) from pg_stat_activity where usename = %s and backend_type = 'walsender'",
                     (role,))


def test_pg_receivewal_and_basebackup_physical(make_pooler, pg, repl_role, tmp_path):
    """pg_receivewal streams WAL up to a given LSN through the pooler; pg_basebackup with
    -X stream (two replication connections at once) takes a backup; both servers are
    walsenders of their own and are closed when the tools leave, while an ordinary client of
    the same alias keeps using ordinary servers."""
    p = repl_pooler(make_pooler, pg, repl_role)
    with p.connect("appdb", ALICE, ALICE_PW) as c:
        c.execute("create table if not exists repl_phys (v int)")
        c.execute("insert into repl_phys select generate_series(1, 1000)")
        end = pg.scalar("select pg_current_wal_insert_lsn()::text")
        waldir = tmp_path / "wal"
        waldir.mkdir()
        res = run_tool(["pg_receivewal", "-d", conninfo(p), "-D", str(waldir), "--no-loop",
                        "--endpos", end, "--no-sync"])
        assert res.returncode == 0, res.stdout + res.stderr + p.log_text()[-3000:]
        files = sorted(os.listdir(waldir))
        assert files and all(os.path.getsize(waldir / f) == 16 * 1024 * 1024 for f in files), files
        # the ordinary client is untouched and is not on a walsender
        assert c.execute("select count(*) from repl_phys").fetchone() == (1000,)
        assert c.execute("select backend_type from pg_stat_activity where pid = pg_backend_pid()"
                         ).fetchone() == ("client backend",)
        backup = tmp_path / "base"
        res = run_tool(["pg_basebackup", "-d", conninfo(p), "-D", str(backup), "-X", "stream",
                        "-c", "fast", "--no-sync"], timeout=180)
        assert res.returncode == 0, res.stdout + res.stderr + p.log_text()[-3000:]
        assert (backup / "PG_VERSION").exists() and (backup / "backup_manifest").exists()
        assert any(f.startswith("0000") for f in os.listdir(backup / "pg_wal"))
    assert walsenders(pg, repl_role) == 0, "a replication server outlived its client"
    log = p.log_text()
    assert "replication connection ended" in log
    print("physical: pg_receivewal got %d segment(s) up to %s; pg_basebackup took %d files" % (
        len(files), end, sum(len(f) for _, _, f in os.walk(backup))))


def test_pg_recvlogical_logical(make_pooler, pg, repl_role, tmp_path):
    """replication=database: pg_recvlogical creates a slot, streams the decoded changes of
    committed transactions up to an LSN, and drops the slot, all through the pooler."""
    p = repl_pooler(make_pooler, pg, repl_role)
    slot = "tb_slot_%d" % os.getpid()
    res = run_tool(["pg_recvlogical", "-d", conninfo(p), "--slot", slot, "--create-slot",
                    "-P", "test_decoding"])
    assert res.returncode == 0, res.stdout + res.stderr + p.log_text()[-3000:]
    try:
        with p.connect("appdb", ALICE, ALICE_PW) as c:
            c.execute("create table if not exists repl_logi (v text)")
            c.execute("insert into repl_logi values ('through-the-pooler-1'), ('through-the-pooler-2')")
        end = pg.scalar("select pg_current_wal_insert_lsn()::text")
        out = tmp_path / "changes.txt"
        res = run_tool(["pg_recvlogical", "-d", conninfo(p), "--slot", slot, "--start", "--no-loop",
                        "--endpos", end, "-f", str(out)])
        assert res.returncode == 0, res.stdout + res.stderr + p.log_text()[-3000:]
        text = out.read_text()
        assert "through-the-pooler-1" in text and "through-the-pooler-2" in text, text[-2000:]
        assert text.count("COMMIT") >= 1, text[-2000:]
    finally:
        res = run_tool(["pg_recvlogical", "-d", conninfo(p), "--slot", slot, "--drop-slot"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert pg.scalar("select count(*) from pg_replication_slots where slot_name = %s", (slot,)) == 0
    assert walsenders(pg, repl_role) == 0
    print("logical: %d lines of decoded changes" % len(text.splitlines()))


def test_replication_parameter_values_and_show(make_pooler, pg, repl_role):
    """A replication=database session runs replication commands (IDENTIFY_SYSTEM) and shows as
    logical in SHOW CLIENTS and SHOW SERVERS; replication=false is an ordinary connection; a
    value PostgreSQL would not accept is refused at login."""
    import rawpg
    from rawpg import scram_secret
    admin_pw = "Admin-Pw-rep1"
    p = make_pooler(settings={"pool_mode": "transaction", "admin_users": "admin"},
                    users={ALICE: scram_secret(ALICE_PW), "admin": scram_secret(admin_pw)},
                    databases={"appdb": app_connstr(pg, user=repl_role, pool_size=4)})
    logical = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, replication="database")
    try:
        r = logical.query_ok("IDENTIFY_SYSTEM")
        assert r.columns[:2] == ["systemid", "timeline"], r.columns
        assert walsenders(pg, repl_role) == 1
        with psycopg.connect(host="127.0.0.1", port=p.port, dbname="pgbouncer", user="admin",
                             password=admin_pw, sslmode="disable", autocommit=True) as adm:
            for what in ("CLIENTS", "SERVERS"):
                cur = adm.execute("SHOW " + what)
                names = [d.name for d in cur.description]
                rows = [dict(zip(names, row)) for row in cur.fetchall()]
                kinds = sorted(r["replication"] for r in rows if r["database"] == "appdb")
                assert kinds == ["logical"], (what, rows)
    finally:
        logical.close()
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, replication="off")
    try:
        assert c.query_ok("select backend_type from pg_stat_activity where pid = pg_backend_pid()"
                          ).rows == [("client backend",)]
    finally:
        c.close()
    with pytest.raises(rawpg.PgError) as ei:
        rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, replication="sometimes").close()
    assert ei.value.code == "08P01" and "replication" in ei.value.message, ei.value.fields
