"""TLS between clients and the pooler, and between the pooler and PostgreSQL."""
import socket
import time

import psycopg
import pytest

import rawpg
from conftest import ALICE, ALICE_PW, APP_USER, app_connstr
from test_basic import psql

SSL_QUERY = "select ssl from pg_stat_ssl where pid = pg_backend_pid()"


def client_tls(certs, mode):
    return {"client_tls_sslmode": mode, "client_tls_key_file": certs.server_key,
            "client_tls_cert_file": certs.server_crt, "client_tls_ca_file": certs.ca_crt}


# ------------------------------------------------------------------ client side
def test_client_sslmode_require(make_pooler, certs):
    p = make_pooler(settings=client_tls(certs, "require"))
    with p.connect("appdb", ALICE, ALICE_PW, sslmode="require") as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("select current_user").fetchone() == (APP_USER,)


def test_client_verify_full(make_pooler, certs):
    p = make_pooler(settings=client_tls(certs, "require"))
    kw = dict(sslmode="verify-full", sslrootcert=certs.ca_crt, host="localhost", hostaddr="127.0.0.1")
    with p.connect("appdb", ALICE, ALICE_PW, **kw) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("select 5").fetchone() == (5,)
    res = psql(p, "select 40+2", extra_env={"PGSSLMODE": "verify-full", "PGSSLROOTCERT": certs.ca_crt,
                                            "PGHOSTADDR": "127.0.0.1"})
    # psql -h 127.0.0.1 with verify-full: the certificate's IP SAN 127.0.0.1 must match
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "42"


def test_client_verify_full_wrong_ca_fails(make_pooler, certs):
    p = make_pooler(settings=client_tls(certs, "require"))
    with pytest.raises(psycopg.OperationalError) as ei:
        p.connect("appdb", ALICE, ALICE_PW, sslmode="verify-full", sslrootcert=certs.other_ca_crt,
                  host="localhost", hostaddr="127.0.0.1").close()
    assert "certificate verify failed" in str(ei.value)


def test_client_tls_required_refuses_plain(make_pooler, certs):
    p = make_pooler(settings=client_tls(certs, "require"))
    with rawpg.RawConn("127.0.0.1", p.port) as c:
        c.startup(ALICE, "appdb")
        fields = rawpg.expect_error(c)
        assert fields["S"] == "FATAL" and fields["C"][:2] in ("08", "28"), fields
    with pytest.raises(psycopg.OperationalError):
        p.connect("appdb", ALICE, ALICE_PW, sslmode="disable").close()


def test_sslrequest_answers(make_pooler, certs):
    # TLS disabled: 'N', and the same socket goes on with a plain StartupMessage
    p = make_pooler(settings={"client_tls_sslmode": "disable"})
    with rawpg.RawConn("127.0.0.1", p.port) as c:
        assert c.request_ssl() == "N"
        c.login(ALICE, "appdb", ALICE_PW)
        assert c.query_ok("select 1").rows == [("1",)]
    # TLS enabled: GSSENCRequest -> 'N', then SSLRequest -> 'S' on the same socket
    p2 = make_pooler(settings=client_tls(certs, "prefer"))
    with rawpg.RawConn("127.0.0.1", p2.port) as c:
        assert c.request_gssenc() == "N"
        assert c.request_ssl() == "S"
        c.start_tls(cafile=certs.ca_crt, server_hostname="localhost")
        c.login(ALICE, "appdb", ALICE_PW)
        assert c.query_ok("select 2").rows == [("2",)]


# ------------------------------------------------------------------ server side
def test_server_tls_verify_full(make_pooler, pg, certs):
    p = make_pooler(settings={"server_tls_sslmode": "verify-full", "server_tls_ca_file": certs.ca_crt})
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute(SSL_QUERY).fetchone() == (True,)


def test_server_tls_verify_full_by_hostname(make_pooler, pg, certs):
    p = make_pooler(settings={"server_tls_sslmode": "verify-full", "server_tls_ca_file": certs.ca_crt},
                    databases={"appdb": app_connstr(pg).replace("host=127.0.0.1", "host=localhost")})
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute(SSL_QUERY).fetchone() == (True,)


def test_server_tls_disable(make_pooler, pg, certs):
    p = make_pooler(settings={"server_tls_sslmode": "disable"})
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute(SSL_QUERY).fetchone() == (False,)


def test_server_tls_require_does_not_verify(make_pooler, pg, certs):
    p = make_pooler(settings={"server_tls_sslmode": "require", "server_tls_ca_file": certs.other_ca_crt})
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute(SSL_QUERY).fetchone() == (True,)


def upstream_failure(p, timeout=10):
    """Log in and query through the pooler when its upstream login must fail: returns the
    ErrorResponse fields and the seconds it took. Fails on a hang or a silent close."""
    start = time.monotonic()
    try:
        c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, timeout=timeout)
    except rawpg.PgError as e:
        return e.fields, time.monotonic() - start
    except rawpg.ConnectionClosed:
        pytest.fail("connection closed without an ErrorResponse")
    except socket.timeout:
        pytest.fail("no answer to the login within %ds (hang)" % timeout)
    with c:
        try:
            r = c.query("select 1")
        except rawpg.ConnectionClosed:
            pytest.fail("connection closed without an ErrorResponse")
        except socket.timeout:
            pytest.fail("no answer to the query within %ds (hang)" % timeout)
        assert r.errors, "query succeeded although the upstream login should have failed"
        return r.errors[0].fields, time.monotonic() - start


@pytest.mark.parametrize("mode", ["verify-full", "verify-ca"])
def test_server_tls_wrong_ca_gives_error(make_pooler, pg, certs, mode):
    p = make_pooler(settings={"server_tls_sslmode": mode, "server_tls_ca_file": certs.other_ca_crt})
    fields, elapsed = upstream_failure(p)
    assert fields["S"] in ("FATAL", "ERROR"), fields
    assert elapsed < 10, "took %.1fs" % elapsed


def test_server_tls_hostname_mismatch(make_pooler, pg, certs):
    """verify-full to 127.0.0.2 (the same PostgreSQL, but not a name in its certificate) is
    refused; verify-ca, which checks only the chain, accepts it."""
    alt = {"appdb": app_connstr(pg).replace("host=127.0.0.1", "host=127.0.0.2")}
    p = make_pooler(settings={"server_tls_sslmode": "verify-full", "server_tls_ca_file": certs.ca_crt},
                    databases=alt)
    fields, elapsed = upstream_failure(p)
    assert fields["S"] in ("FATAL", "ERROR"), fields
    assert elapsed < 10, "took %.1fs" % elapsed
    p2 = make_pooler(settings={"server_tls_sslmode": "verify-ca", "server_tls_ca_file": certs.ca_crt},
                     databases=alt)
    with p2.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute(SSL_QUERY).fetchone() == (True,)
