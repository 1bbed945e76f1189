"""Checks of the test harness itself against PostgreSQL directly (no tokenbouncer needed):
if these fail, the other tests' verdicts mean nothing."""
import ssl
import subprocess

import psycopg
import pytest

import rawpg
from certs import describe
from conftest import APP_DB, APP_PW, APP_USER
from pg import PG_BIN


def test_certs_have_expected_names(certs):
    text = describe(certs.server_crt)
    assert "CN = localhost" in text or "CN=localhost" in text
    assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text
    ok = subprocess.run(["openssl", "verify", "-CAfile", certs.ca_crt, certs.server_crt],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(["openssl", "verify", "-CAfile", certs.other_ca_crt, certs.server_crt],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0


def test_rawpg_scram_login_and_query(pg):
    with rawpg.try_login("127.0.0.1", pg.port, APP_USER, APP_DB, APP_PW) as c:
        assert c.auth_codes == [rawpg.AUTH_SASL, rawpg.AUTH_SASL_CONTINUE, rawpg.AUTH_SASL_FINAL,
                                rawpg.AUTH_OK]
        assert c.backend_pid and c.params["server_version"].startswith("15")
        r = c.query_ok("select 6*7 as answer, null::text as n, current_user")
        assert r.columns == ["answer", "n", "current_user"]
        assert r.rows == [("42", None, APP_USER)]
        assert r.tags == ["SELECT 1"]
        r = c.query("select 1/0")
        assert r.error.code == "22012"
        assert c.query_ok("select 2").rows == [("2",)]


def test_rawpg_wrong_password_gives_28P01(pg):
    with pytest.raises(rawpg.PgError) as ei:
        rawpg.try_login("127.0.0.1", pg.port, APP_USER, APP_DB, "wrong")
    assert ei.value.code == "28P01"
    assert ei.value.severity == "FATAL"


def test_rawpg_md5_login(pg, new_role):
    name = new_role("md5r", password="Md5-Pw-1", md5=True)
    with rawpg.try_login("127.0.0.1", pg.port, name, APP_DB, "Md5-Pw-1") as c:
        assert c.auth_codes == [rawpg.AUTH_MD5, rawpg.AUTH_OK]


def test_scram_secret_format_accepted_by_postgres(pg, new_role):
    """A role whose password is our computed SCRAM secret logs in with the plain password."""
    name = new_role("scr")
    pg.set_password(name, rawpg.scram_secret("Computed-Pw-9"))
    with rawpg.try_login("127.0.0.1", pg.port, name, APP_DB, "Computed-Pw-9") as c:
        assert c.query_ok("select current_user").rows == [(name,)]
    assert rawpg.md5_secret("u", "p") == "md5" + __import__("hashlib").md5(b"pu").hexdigest()


def test_rawpg_tls_to_postgres_verified(pg, certs):
    c = rawpg.RawConn("127.0.0.1", pg.port)
    try:
        c.ssl(cafile=certs.ca_crt, server_hostname="localhost")
        c.login(APP_USER, APP_DB, APP_PW)
        assert c.query_ok("select ssl from pg_stat_ssl where pid = pg_backend_pid()").rows == [("t",)]
    finally:
        c.close()
    c = rawpg.RawConn("127.0.0.1", pg.port)
    try:
        assert c.request_ssl() == "S"
        with pytest.raises(ssl.SSLCertVerificationError):
            c.start_tls(cafile=certs.other_ca_crt, server_hostname="localhost")
    finally:
        c.close()


def test_rawpg_protocol_edge_cases_on_postgres(pg):
    """The same raw probes the pooler tests use, against PostgreSQL as the reference."""
    with rawpg.RawConn("127.0.0.1", pg.port) as c:
        # Debian's PostgreSQL is built with GSSAPI and says 'G'; a pooler without it says 'N'.
        assert c.request_gssenc() in ("G", "N")
    with rawpg.RawConn("127.0.0.1", pg.port) as c:
        assert c.request_ssl() == "S"
        c.start_tls()
        c.login(APP_USER, APP_DB, APP_PW)
        assert c.query_ok("select 1").rows == [("1",)]
    with rawpg.RawConn("127.0.0.1", pg.port) as c:
        c.startup(APP_USER, APP_DB, version=(2 << 16))
        got, _ = c.wait_closed(5)  # PostgreSQL answers a 2.0 client in the 2.0 error format
        assert got.startswith(b"E") and b"unsupported frontend protocol 2.0" in got
    with rawpg.RawConn("127.0.0.1", pg.port) as c:
        c.login(APP_USER, APP_DB, APP_PW, version=(3 << 16) | 1)
        assert c.negotiate["minor"] == 0 and c.negotiate["unsupported"] == []
    with rawpg.RawConn("127.0.0.1", pg.port) as c:
        c.send(b"\x00\x00\x00\x04")
        got, _ = c.wait_closed(5)  # PostgreSQL just closes on an invalid length
        assert got == b"" or got[:1] == b"E"


def test_psql_binary_reaches_postgres(pg):
    res = subprocess.run([PG_BIN + "/psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(pg.port), "-U",
                          APP_USER, "-d", APP_DB, "-c", "select 40+2"],
                         env={"PGPASSWORD": APP_PW, "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "42"


def test_libpq_program(pg, libpq_query):
    conninfo = "host=127.0.0.1 port=%d dbname=%s user=%s password=%s" % (pg.port, APP_DB, APP_USER, APP_PW)
    res = subprocess.run([libpq_query, conninfo, "select 6*7, current_user"], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "42|" + APP_USER


def test_private_pg_restart_keeps_port(private_pg):
    port = private_pg.port
    pid1 = private_pg.pid
    private_pg.stop()
    with pytest.raises(psycopg.OperationalError):
        private_pg.connect(connect_timeout=2)
    private_pg.start()
    assert private_pg.port == port and private_pg.pid != pid1
    assert private_pg.scalar("select 1") == 1
