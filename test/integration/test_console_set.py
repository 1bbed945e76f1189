"""SET on the console for what PgBouncer can SET, including the parameters that live in loaded
state: auth_type, auth_file, auth_hba_file and the TLS settings (client TLS applies to new
clients at once; any TLS change reconnects servers, as in PgBouncer)."""
import os

import pytest

import rawpg
from conftest import ALICE, ALICE_PW
from pooler import is_pgbouncer
from rawpg import scram_secret

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: the reference is 1.18")

ADMIN, ADMIN_PW = "admin", "Admin-Pw-91ac3e"
BOB, BOB_PW = "bob", "Bob-Pw-3e81d0"


def set_pooler(make_pooler, settings=None):
    s = {"admin_users": ADMIN, "pool_mode": "transaction"}
    s.update(settings or {})
    return make_pooler(settings=s, users={ALICE: scram_secret(ALICE_PW), ADMIN: scram_secret(ADMIN_PW)})


class Console:
    def __init__(self, p):
        self.c = rawpg.try_login("127.0.0.1", p.port, ADMIN, "pgbouncer", ADMIN_PW)

    def run(self, sql):
        return self.c.query_ok(sql)

    def fails(self, sql):
        r = self.c.query(sql)
        assert r.errors, "%s succeeded" % sql
        return r.errors[0]

    def value(self, name):
        return self.run("SHOW CONFIG %s" % name).rows[0][1]

    def close(self):
        self.c.terminate()


def login(p, user=ALICE, pw=ALICE_PW, **kw):
    c = rawpg.try_login("127.0.0.1", p.port, user, "appdb", pw, **kw)
    c.terminate()


def test_set_every_changeable_parameter_to_its_value(make_pooler):
    """Every parameter SHOW CONFIG marks changeable accepts SET (to the value it has)."""
    p = set_pooler(make_pooler)
    con = Console(p)
    try:
        rows = con.run("SHOW CONFIG").rows
        changeable = [(k, v) for k, v, _default, ch in rows if ch == "yes"]
        assert len(changeable) > 80
        for key, value in changeable:
            con.run("SET %s = '%s'" % (key, value.replace("'", "''")))
            assert con.value(key) == value, key
    finally:
        con.close()


def test_set_auth_file_and_auth_type(make_pooler):
    p = set_pooler(make_pooler)
    other = os.path.join(p.workdir, "other-users.txt")
    with open(other, "w") as f:
        f.write('"%s" "%s"\n"%s" "%s"\n' % (BOB, scram_secret(BOB_PW), ADMIN, scram_secret(ADMIN_PW)))
    con = Console(p)
    try:
        with pytest.raises(rawpg.PgError):
            login(p, BOB, BOB_PW)
        err = con.fails("SET auth_file = '/nonexistent/users.txt'")
        assert "/nonexistent/users.txt" in str(err)
        login(p)                                   # nothing changed
        con.run("SET auth_file = '%s'" % other)
        login(p, BOB, BOB_PW)                      # applies at once
        with pytest.raises(rawpg.PgError):
            login(p)
        con.run("SET auth_type = trust")
        login(p, BOB, "not the password")
        con.run("SET auth_type = 'scram-sha-256'")
        with pytest.raises(rawpg.PgError):
            login(p, BOB, "not the password")
    finally:
        con.close()


def test_set_auth_hba_file(make_pooler):
    p = set_pooler(make_pooler)
    hba = os.path.join(p.workdir, "reject.conf")
    with open(hba, "w") as f:
        f.write("host pgbouncer all 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 reject\n")
    con = Console(p)
    try:
        err = con.fails("SET auth_type = hba")     # no auth_hba_file yet
        assert "auth_hba_file" in str(err)
        con.run("SET auth_hba_file = '%s'" % hba)
        con.run("SET auth_type = hba")
        with pytest.raises(rawpg.PgError):
            login(p)
        assert con.value("auth_type") == "hba"
    finally:
        con.close()


def test_set_client_tls_applies_to_new_clients(make_pooler, certs):
    p = set_pooler(make_pooler)
    con = Console(p)
    try:
        login(p)
        con.run("SET client_tls_key_file = '%s'" % certs.server_key)
        con.run("SET client_tls_cert_file = '%s'" % certs.server_crt)
        con.run("SET client_tls_sslmode = require")
        with pytest.raises(rawpg.PgError) as ei:
            login(p)                               # plain text refused at once
        assert ei.value.code == "28000"
        login(p, tls={})
        con.run("SET client_tls_sslmode = disable")
        login(p)
    finally:
        con.close()


def test_server_tls_change_reconnects_servers(make_pooler):
    p = set_pooler(make_pooler, {"server_tls_sslmode": "disable"})
    q = "select pg_backend_pid(), coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false)"
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)
    con = Console(p)
    try:
        pid1, ssl1 = c.query_ok(q).rows[0]
        assert ssl1 == "f"
        con.run("SET server_tls_sslmode = require")
        pid2, ssl2 = c.query_ok(q).rows[0]
        assert pid2 != pid1 and ssl2 == "t"
        assert "TLS settings changed" in p.log_text()
    finally:
        con.close()
        c.terminate()


def test_console_by_peer_credentials(make_pooler):
    """The pooler's own OS user gets into the console over the Unix socket as user pgbouncer
    (or tokenbouncer) without being in admin_users and without a password; nobody else does."""
    import pwd
    import subprocess
    from pg import PG_BIN
    p = make_pooler(start=False)
    p.settings.update({"unix_socket_dir": p.workdir})
    p.write_files()
    p.start()
    psql = os.path.join(PG_BIN, "psql")

    def run(user, host, as_user=None):
        cmd = [psql, "-X", "-At", "-h", host, "-p", str(p.port), "-U", user, "-d", "pgbouncer",
               "-c", "SHOW VERSION", "-c", "SET default_pool_size = 7"]
        env = {"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "10", "PGPASSWORD": "wrong"}
        kw = {}
        if as_user:
            pw = pwd.getpwnam(as_user)
            kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL, **kw)
    for user in ("pgbouncer", "tokenbouncer"):
        res = run(user, p.workdir)
        assert res.returncode == 0, res.stderr
        assert "PgBouncer 1.25" in res.stdout and "SET" in res.stdout
    res = run("pgbouncer", "127.0.0.1")          # TCP: no peer credentials
    assert res.returncode != 0
    os.chmod(p.workdir, 0o755)
    other = "postgres" if os.geteuid() == 0 else None
    if other:
        res = run("pgbouncer", p.workdir, as_user=other)
        assert res.returncode != 0 and "password authentication failed" in res.stderr, res.stderr
