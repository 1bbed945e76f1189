"""PgBouncer 1.25 parameters that tokenbouncer implements: socket options (listen_backlog,
unix_socket_mode, unix_socket_group), TLS cipher and key-exchange settings on both sides,
scram_iterations, server_check_query = <empty>, log_pooler_errors, syslog settings checked."""
import grp
import os
import stat
import subprocess

import pytest

import rawpg
from conftest import ALICE, ALICE_PW
from pooler import is_pgbouncer, run_check

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: the reference is 1.18")


def client_tls(certs, mode="require"):
    return {"client_tls_sslmode": mode, "client_tls_key_file": certs.server_key,
            "client_tls_cert_file": certs.server_crt, "client_tls_ca_file": certs.ca_crt}


def listen_backlog_of(port):
    """Send-Q of a listening TCP socket is its backlog (ss(8))."""
    out = subprocess.run(["ss", "-ltnH", "sport = :%d" % port], capture_output=True, text=True,
                         timeout=10).stdout
    return {int(line.split()[2]) for line in out.splitlines() if line.strip()}


def test_listen_backlog_and_unix_socket_mode_and_group(make_pooler):
    group = grp.getgrgid(os.getgid()).gr_name
    p = make_pooler(start=False)
    p.settings.update({"listen_backlog": 77, "unix_socket_dir": p.workdir, "unix_socket_mode": "0750",
                       "unix_socket_group": group})
    p.write_files()
    p.start()
    assert listen_backlog_of(p.port) == {77}
    st = os.stat(os.path.join(p.workdir, ".s.PGSQL.%d" % p.port))
    assert stat.S_IMODE(st.st_mode) == 0o750 and st.st_gid == os.getgid()
    with p.connect("appdb", ALICE, ALICE_PW, host=p.workdir) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_tls13_ciphers_on_both_sides(make_pooler, certs):
    s = client_tls(certs)
    s.update({"client_tls13_ciphers": "TLS_AES_128_GCM_SHA256", "server_tls_sslmode": "require",
              "server_tls13_ciphers": "TLS_CHACHA20_POLY1305_SHA256"})
    p = make_pooler(settings=s)
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, tls={})
    try:
        assert c.sock.cipher()[0] == "TLS_AES_128_GCM_SHA256"
        upstream = c.query_ok("select cipher from pg_stat_ssl where pid = pg_backend_pid()").rows
        assert upstream == [("TLS_CHACHA20_POLY1305_SHA256",)]
    finally:
        c.terminate()


def test_tls12_cipher_list_applies(make_pooler, certs):
    s = client_tls(certs)
    s.update({"client_tls_protocols": "tlsv1.2", "client_tls_ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256"})
    p = make_pooler(settings=s)
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, tls={})
    try:
        assert c.sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    finally:
        c.terminate()


@pytest.mark.parametrize("setting,value,message", [
    ("server_tls_ciphers", "NO-SUCH-CIPHER", "invalid server_tls_ciphers"),
    ("client_tls13_ciphers", "TLS_NOPE", "invalid client_tls13_ciphers"),
    ("client_tls_dheparams", "huge", "invalid client_tls_dheparams"),
    ("syslog_facility", "kernel", "invalid value for syslog_facility"),
    ("unix_socket_mode", "0999", "invalid value for unix_socket_mode"),
])
def test_invalid_values_are_refused(make_pooler, certs, setting, value, message):
    p = make_pooler(settings=dict(client_tls(certs), **{setting: value}), start=False)
    res = run_check(p.ini)
    assert res.returncode == 1 and message in res.stderr, res.stderr


def test_scram_iterations_for_plain_passwords(make_pooler, monkeypatch):
    p = make_pooler(users={ALICE: ALICE_PW}, settings={"scram_iterations": 5000})
    seen = []
    real_final = rawpg._ScramClient.final

    def spy(self, server_first):
        seen.append(dict(kv.split("=", 1) for kv in server_first.decode().split(","))["i"])
        return real_final(self, server_first)
    monkeypatch.setattr(rawpg._ScramClient, "final", spy)
    rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW).terminate()
    assert seen == ["5000"]


def test_empty_check_query_keeps_the_server(make_pooler):
    """<empty> sends an empty query: were it sent as SQL the check would fail and the server
    would be closed, so the next transaction would get another backend."""
    p = make_pooler(settings={"pool_mode": "transaction", "server_check_query": "<empty>",
                              "server_check_delay": 0, "default_pool_size": 1})
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        pids = {conn.execute("select pg_backend_pid()").fetchone()[0] for _ in range(3)}
    assert len(pids) == 1
    assert "failed" not in p.log_text()


@pytest.mark.parametrize("on", [True, False])
def test_log_pooler_errors(make_pooler, on):
    p = make_pooler(settings={"log_pooler_errors": on})
    with pytest.raises(rawpg.PgError):
        rawpg.try_login("127.0.0.1", p.port, ALICE, "nosuchdb", ALICE_PW).close()
    text = p.wait_log("no such database: nosuchdb")
    line = [l for l in text.splitlines() if "no such database: nosuchdb" in l][0]
    assert (" WARNING " in line) == on, line


@pytest.mark.parametrize("curve", ["auto", "prime256v1", "secp384r1:prime256v1"])
def test_client_tls_ecdhcurve(make_pooler, certs, curve):
    p = make_pooler(settings=dict(client_tls(certs), client_tls_ecdhcurve=curve))
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, tls={})
    c.terminate()


@pytest.mark.parametrize("rr", [False, True])
def test_server_round_robin(make_pooler, rr):
    """Two idle servers: LIFO hands the most recent one out again and again; round-robin
    hands them out in turn."""
    p = make_pooler(settings={"pool_mode": "transaction", "default_pool_size": 2, "server_round_robin": rr})
    a = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)
    b = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)
    try:
        a.query_ok("begin")
        b.query_ok("begin")       # two servers in use at once
        a.query_ok("commit")
        b.query_ok("commit")
        pids = [a.query_ok("select pg_backend_pid()").rows[0][0] for _ in range(4)]
    finally:
        a.terminate()
        b.terminate()
    assert len(set(pids)) == (2 if rr else 1), pids


def test_disable_pqexec(make_pooler):
    p = make_pooler(settings={"disable_pqexec": True})
    with p.connect("appdb", ALICE, ALICE_PW) as conn:       # psycopg: extended protocol
        assert conn.execute("select %s::int", [7]).fetchone() == (7,)
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)
    try:
        r = c.query("select 1")
        assert r.errors and r.errors[0].code == "08P01" and r.errors[0].message == "PQexec disallowed"
    except rawpg.ConnectionClosed:
        pytest.fail("closed without PgBouncer's error")
    finally:
        c.close()


def test_application_name_add_host(make_pooler):
    p = make_pooler(settings={"application_name_add_host": True, "pool_mode": "transaction"})
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, application_name="billing")
    try:
        port = c.sock.getsockname()[1]
        assert c.query_ok("show application_name").rows == [("billing - 127.0.0.1:%d" % port,)]
    finally:
        c.terminate()
