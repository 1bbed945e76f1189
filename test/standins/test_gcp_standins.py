"""Tests of the Google stand-ins (gcp_identity.py, spec §5.10-§5.12) and of the manual-IAM verifier.

Run: /usr/bin/python3 -m pytest test/standins/test_gcp_standins.py -q
"""
import json
import os
import sys
import tempfile
import time
import urllib.parse

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gcp_identity as google  # noqa: E402
import standin_base as sb  # noqa: E402
from test_standins import hreq  # noqa: E402


def make_assertion(key_pem, email, scope, aud=google.JWT_AUDIENCE, iat=None, life=3600, alg="RS256", header=None):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    iat = int(time.time()) if iat is None else iat
    h = dict({"typ": "JWT", "alg": alg, "kid": "tb-key-1"}, **(header or {}))
    claims = {"iat": iat, "exp": iat + life, "iss": email, "aud": aud, "scope": scope}
    si = sb.b64url(json.dumps(h)) + "." + sb.b64url(json.dumps(claims))
    return si + "." + sb.b64url(key.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256()))


@pytest.fixture(scope="module")
def sa():
    d = tempfile.mkdtemp(prefix="tbgsa")
    return google.make_service_account_file(os.path.join(d, "key.json"))


@pytest.fixture()
def issuer():
    return google.GoogleIssuer()


@pytest.fixture()
def tok_srv(sa, issuer):
    with google.GoogleTokenStandIn(service_accounts={sa["client_email"]: sa}, issuer=issuer, ttl=30) as s:
        yield s


def post_token(srv, form):
    return hreq("POST", srv.token_url, {"Content-Type": "application/x-www-form-urlencoded"},
                urllib.parse.urlencode(form))


def jwt_form(assertion):
    return {"grant_type": google.JWT_BEARER, "assertion": assertion}


def test_jwt_bearer_grant(tok_srv, sa, issuer):
    r = post_token(tok_srv, jwt_form(make_assertion(sa["private_key"], sa["client_email"], google.SQL_LOGIN)))
    assert r.status == 200, r.body
    d = r.json()
    assert d["token_type"] == "Bearer" and d["expires_in"] == 30 and d["access_token"].startswith("ya29.c.tok-1.")
    t = issuer.lookup(d["access_token"])
    assert t["principal"] == sa["client_email"] and t["scopes"] == [google.SQL_LOGIN]
    assert sb.token_counter(d["access_token"]) == 1
    # the audience is the constant, never the stand-in's own URL (§3.3.1)
    r = post_token(tok_srv, jwt_form(make_assertion(sa["private_key"], sa["client_email"], google.SQL_LOGIN,
                                                    aud=tok_srv.token_url)))
    assert r.status == 400 and r.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("change,error", [
    ({"life": 3601}, "invalid_grant"),
    ({"iat_from_now": 600}, "invalid_grant"),
    ({"iat_from_now": -7200}, "invalid_grant"),
    ({"scope": ""}, "invalid_scope"),
    ({"scope": "https://www.googleapis.com/auth/drive"}, "invalid_scope"),
    ({"email": "other@p.iam.gserviceaccount.com"}, "invalid_grant"),
])
def test_jwt_bearer_rejections(tok_srv, sa, change, error):
    kw = dict(scope=google.SQL_LOGIN, email=sa["client_email"])
    kw.update(change)
    if "iat_from_now" in kw:            # relative to when the test runs, not to when it was collected
        kw["iat"] = int(time.time()) + kw.pop("iat_from_now")
    a = make_assertion(sa["private_key"], kw.pop("email"), kw.pop("scope"), **kw)
    r = post_token(tok_srv, jwt_form(a))
    assert r.status == 400 and r.json()["error"] == error, r.body


def test_jwt_bearer_bad_signature(tok_srv, sa):
    other = google.make_service_account_file(os.path.join(tempfile.mkdtemp(), "k.json"))
    r = post_token(tok_srv, jwt_form(make_assertion(other["private_key"], sa["client_email"], google.SQL_LOGIN)))
    assert r.status == 400 and r.json()["error_description"] == "Invalid JWT Signature."
    a = make_assertion(sa["private_key"], sa["client_email"], google.SQL_LOGIN)
    assert post_token(tok_srv, jwt_form(a[:-4] + "AAAA")).status == 400


def test_refresh_grant_and_rotation(tok_srv, issuer):
    u = google.DEFAULT_USER
    form = {"grant_type": "refresh_token", "client_id": u["client_id"], "client_secret": u["client_secret"],
            "refresh_token": u["refresh_token"], "scope": google.ALLOYDB_LOGIN}
    d = post_token(tok_srv, form).json()
    assert issuer.lookup(d["access_token"])["principal"] == "alice@example.com" and d["scope"] == google.ALLOYDB_LOGIN
    assert post_token(tok_srv, dict(form, client_secret="x")).status == 401
    r = post_token(tok_srv, dict(form, refresh_token="old"))
    assert r.status == 400 and r.json()["error_description"] == "Token has been expired or revoked."
    tok_srv.configure(rotate_refresh=True)
    d = post_token(tok_srv, form).json()
    assert d["refresh_token"] != u["refresh_token"]
    assert post_token(tok_srv, form).status == 400              # the old one is gone
    assert post_token(tok_srv, dict(form, refresh_token=d["refresh_token"])).status == 200


def test_token_faults(tok_srv, sa):
    tok_srv.add_fault(status=503, count=1)
    r = post_token(tok_srv, jwt_form(make_assertion(sa["private_key"], sa["client_email"], google.SQL_LOGIN)))
    assert r.status == 503 and r.json()["error"] == "internal_failure"
    tok_srv.configure(expires_in_as_string=True)
    r = post_token(tok_srv, jwt_form(make_assertion(sa["private_key"], sa["client_email"], google.SQL_LOGIN)))
    assert r.json()["expires_in"] == "30"


def test_metadata_server(issuer):
    with google.GceMetadataStandIn(issuer=issuer, ttl=100) as md:
        assert hreq("GET", md.url + "/").status == 403
        r = hreq("GET", md.url + "/", {"Metadata-Flavor": "Google"})
        assert r.status == 200 and r.header("Metadata-Flavor") == "Google"
        base = md.url + "/computeMetadata/v1/"
        h = {"Metadata-Flavor": "Google"}
        assert hreq("GET", base + "project/project-id", h).body == b"tb-project"
        info = hreq("GET", base + "instance/service-accounts/default/?recursive=true", h).json()
        assert info["email"] == google.DEFAULT_GCE_SA
        url = base + "instance/service-accounts/default/token?scopes=" + urllib.parse.quote(
            google.SQL_LOGIN + "," + google.CLOUD_PLATFORM, safe="")
        d1 = hreq("GET", url, h).json()
        d2 = hreq("GET", url, h).json()
        assert d1["access_token"] == d2["access_token"]          # cached per scope set
        assert d2["expires_in"] <= 100
        assert issuer.lookup(d1["access_token"])["scopes"] == [google.SQL_LOGIN, google.CLOUD_PLATFORM]
        assert md.scope_requests[-1] == [google.SQL_LOGIN, google.CLOUD_PLATFORM]
        d3 = hreq("GET", base + "instance/service-accounts/default/token", h).json()
        assert d3["access_token"] != d1["access_token"]
        md.add_fault(status=503, count=1)
        r = hreq("GET", url, h)
        assert r.status == 503 and r.header("Metadata-Flavor") == "Google"
        assert hreq("GET", base + "nothing", h).status == 404


def test_iam_credentials(tok_srv, sa, issuer):
    target = "target@tb-project.iam.gserviceaccount.com"
    with google.IamCredentialsStandIn(issuer=issuer, grants={target: [sa["client_email"]]}) as iam:
        url = iam.url + "/v1/projects/-/serviceAccounts/%s:generateAccessToken" % target
        src = post_token(tok_srv, jwt_form(make_assertion(sa["private_key"], sa["client_email"],
                                                          google.CLOUD_PLATFORM))).json()["access_token"]
        body = json.dumps({"delegates": [], "scope": [google.SQL_LOGIN], "lifetime": "600s"})
        r = hreq("POST", url, {"Authorization": "Bearer " + src, "Content-Type": "application/json"}, body)
        assert r.status == 200, r.body
        d = r.json()
        assert d["accessToken"].startswith("ya29.") and d["expireTime"].endswith("Z") and "." not in d["expireTime"]
        t = issuer.lookup(d["accessToken"])
        assert t["principal"] == target and t["via"] == "impersonation"
        assert abs(sb.parse_time(d["expireTime"]) - (time.time() + 600)) < 5
        bad_life = json.dumps({"scope": [google.SQL_LOGIN], "lifetime": "3601s"})
        assert hreq("POST", url, {"Authorization": "Bearer " + src}, bad_life).json()["error"]["status"] == "INVALID_ARGUMENT"
        assert hreq("POST", url, {"Authorization": "Bearer nope"}, body).status == 401
        login_only = post_token(tok_srv, jwt_form(make_assertion(sa["private_key"], sa["client_email"],
                                                                 google.SQL_LOGIN))).json()["access_token"]
        r = hreq("POST", url, {"Authorization": "Bearer " + login_only}, body)
        assert r.status == 403                                   # §3.10: the source needs cloud-platform
        other = url.replace(target, "nobody@p.iam.gserviceaccount.com")
        r = hreq("POST", other, {"Authorization": "Bearer " + src}, body)
        assert r.status == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"


def test_iam_verifier(issuer):
    from pgfront import AuthFailure
    v = google.GoogleIamVerifier(issuer)
    now = time.time()
    tok, _ = issuer.issue("tb-sa@p.iam.gserviceaccount.com", [google.SQL_LOGIN], 60, "test")
    assert v.verify("tb-sa@p.iam", "db", tok, now)["n"] == 1
    with pytest.raises(AuthFailure, match="IAM user"):
        v.verify("tb-sa@p.iam.gserviceaccount.com", "db", tok, now)
    with pytest.raises(AuthFailure, match="expired"):
        v.verify("tb-sa@p.iam", "db", tok, now + 61)
    wrong, _ = issuer.issue("a@example.com", [google.ALLOYDB_LOGIN], 60, "test")
    with pytest.raises(AuthFailure, match="scope"):
        v.verify("a@example.com", "db", wrong, now)
    assert google.GoogleIamVerifier(issuer, google.ALLOYDB_LOGIN).verify("a@example.com", "db", wrong, now)
    with pytest.raises(AuthFailure, match="not a token"):
        v.verify("a@example.com", "db", "ya29.forged", now)
    assert google.db_user("x@y.iam.gserviceaccount.com") == "x@y.iam" and google.db_user("a@b.com") == "a@b.com"


def test_subprocess_form():
    p = sb.spawn("gcp_identity.py", "--kind", "metadata", "--ttl", "50")
    try:
        r = hreq("GET", "http://127.0.0.1:%d/computeMetadata/v1/instance/service-accounts/default/token" % p.port,
                 {"Metadata-Flavor": "Google"})
        assert r.status == 200 and 45 <= r.json()["expires_in"] <= 50
    finally:
        assert p.stop() == 0


# ------------------------------------------------------------------ Cloud SQL (§5.13)
import ssl  # noqa: E402
import socket  # noqa: E402

import cloudsql  # noqa: E402


def _client_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    pkcs1 = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return key, spki, pkcs1, pem


@pytest.fixture(scope="module")
def instance():
    return cloudsql.CloudSqlInstance(cert_ttl=120)


def test_sqladmin_connect_settings_and_certificates(instance, issuer):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID
    with cloudsql.SqlAdminStandIn(instances=[instance], issuer=issuer) as adm:
        base = adm.url + "/sql/v1beta4/projects/tb-project/instances/orders"
        assert hreq("GET", base + "/connectSettings").status == 401
        login, _ = issuer.issue("sa@p.iam.gserviceaccount.com", [google.SQL_LOGIN], 60, "test")
        assert hreq("GET", base + "/connectSettings", {"Authorization": "Bearer " + login}).status == 403
        admin, _ = issuer.issue("sa@p.iam.gserviceaccount.com", [google.SQL_ADMIN], 600, "test")
        h = {"Authorization": "Bearer " + admin, "Content-Type": "application/json"}
        d = hreq("GET", base + "/connectSettings", h).json()
        assert d["region"] == "us-central1" and d["databaseVersion"] == "POSTGRES_16"
        assert {i["type"]: i["ipAddress"] for i in d["ipAddresses"]}["PRIMARY"] == "127.0.0.1"
        ca = x509.load_pem_x509_certificate(d["serverCaCert"]["cert"].encode())
        key, spki, pkcs1, _ = _client_key()
        for pub in (spki, pkcs1):
            r = hreq("POST", base + ":generateEphemeralCert", h, json.dumps({"public_key": pub}))
            assert r.status == 200, r.body
            cert = x509.load_pem_x509_certificate(r.json()["ephemeralCert"]["cert"].encode())
            assert cert.issuer == ca.subject and cert.public_key().public_numbers() == key.public_key().public_numbers()
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
            assert abs(cert.not_valid_after.timestamp() - (time.time() + 120)) < 5
        # an embedded login token caps the lifetime and binds the token to the serial
        r = hreq("POST", base + ":generateEphemeralCert", h, json.dumps({"public_key": spki, "access_token": login}))
        cert = x509.load_pem_x509_certificate(r.json()["ephemeralCert"]["cert"].encode())
        assert cert.not_valid_after.timestamp() <= time.time() + 61
        assert instance.bound[cert.serial_number] == login
        r = hreq("POST", base + ":generateEphemeralCert", h, json.dumps({"public_key": spki, "access_token": admin}))
        assert r.status == 400
        assert hreq("GET", adm.url + "/sql/v1beta4/projects/tb-project/instances/nope/connectSettings", h).status == 404
        adm.configure(region="europe-west1", version="MYSQL_8_0")
        d = hreq("GET", base + "/connectSettings", h).json()
        assert d["region"] == "europe-west1" and d["databaseVersion"] == "MYSQL_8_0"
        adm.add_fault(status=500, count=1)
        assert hreq("GET", base + "/connectSettings", h).json()["error"]["code"] == 500
        # a quota project to bill: every call must name it
        adm.configure(quota_project="tb-quota")
        r = hreq("GET", base + "/connectSettings", h)
        assert r.status == 403 and "x-goog-user-project" in r.json()["error"]["message"]
        assert hreq("GET", base + "/connectSettings", dict(h, **{"x-goog-user-project": "other"})).status == 403
        assert hreq("GET", base + "/connectSettings", dict(h, **{"x-goog-user-project": "tb-quota"})).status == 200


def _proxy(instance, verifier, **kw):
    import pgfront
    return pgfront.PgFront(instance.server_cert, instance.server_key, upstream_port=1, upstream_user="x",
                           upstream_password="x", mode=verifier, direct_tls=cloudsql.proxy_context(instance, **kw))


def _tls_client(instance, port, cert_pem=None, key_pem=None, version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=cloudsql._pem(instance.ca))
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if cert_pem:
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "c.pem"), "w") as f:
            f.write(key_pem + cert_pem)
        ctx.load_cert_chain(os.path.join(d, "c.pem"))
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(s)


def test_proxy_tls13_only_and_client_certificate_required(instance, issuer):
    v = cloudsql.CloudSqlVerifier(instance, issuer, {"u": "pw"})
    key, spki, _, pem = _client_key()
    cert, _ = instance.issue_client_cert(spki, time.time())
    with _proxy(instance, v) as front:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            _tls_client(instance, front.port, cert, pem, version=ssl.TLSVersion.TLSv1_2).recv(1)
        try:                                               # no client certificate: the server hangs up
            c = _tls_client(instance, front.port)
            c.sendall(b"\0\0\0\x08\0\x03\0\0")
            assert c.recv(1) == b""
        except (ssl.SSLError, ConnectionError, OSError):
            pass
        c = _tls_client(instance, front.port, cert, pem)
        assert c.version() == "TLSv1.3"
        user = b"user\0u\0database\0d\0\0"
        c.sendall(len(user).to_bytes(4, "big")[:0] + (8 + len(user)).to_bytes(4, "big") + b"\0\x03\0\0" + user)
        assert c.recv(9)[:1] == b"R"                       # a certificate without a token: password asked
        c.close()
    # TLS 1.2 only (the fault): a TLS 1.3 client is refused
    with _proxy(instance, v, tls12_only=True) as front:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            _tls_client(instance, front.port, cert, pem, version=ssl.TLSVersion.TLSv1_3).recv(1)


def test_proxy_verifier_auto_iam(instance, issuer):
    from cryptography import x509
    from pgfront import AuthFailure
    v = cloudsql.CloudSqlVerifier(instance, issuer, {"u": "pw"})
    key, spki, _, _ = _client_key()
    login, exp = issuer.issue("sa@p.iam.gserviceaccount.com", [google.SQL_LOGIN], 60, "test")
    pem, _ = instance.issue_client_cert(spki, time.time(), login, exp)
    from cryptography.hazmat.primitives import serialization
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    assert v.auto_login("sa@p.iam", "d", der, time.time()) is True
    with pytest.raises(AuthFailure, match="IAM user"):
        v.auto_login("other", "d", der, time.time())
    with pytest.raises(AuthFailure, match="expired"):
        v.auto_login("sa@p.iam", "d", der, time.time() + 61)
    plain, _ = instance.issue_client_cert(spki, time.time())
    der2 = x509.load_pem_x509_certificate(plain.encode()).public_bytes(serialization.Encoding.DER)
    assert v.auto_login("u", "d", der2, time.time()) is False
    assert v.verify("u", "d", "pw", time.time())
    with pytest.raises(AuthFailure):
        v.verify("u", "d", "nope", time.time())


# ------------------------------------------------------------------ AlloyDB (§5.14)
import alloydb  # noqa: E402

WORKED_MDX = bytes.fromhex("0000002c0a1a616c6c6f7964622d676f2d636f6e6e6563746f722f312e302e30100"
                           "21a0c796132392e632e544f4b454e")


def test_mdx_bytes_match_the_spec():
    req = alloydb.parse_mdx_request(WORKED_MDX[4:])
    assert req == {"user_agent": "alloydb-go-connector/1.0.0", "auth_type": 2, "oauth2_token": "ya29.c.TOKEN"}
    assert alloydb.mdx_response(True) == bytes.fromhex("000000020801")
    assert alloydb.mdx_response(False, "IAM auth failed") == bytes.fromhex(
        "000000130802120f49414d2061757468206661696c6564")


def test_alloydb_admin_api_and_chain(issuer):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import padding
    inst = alloydb.AlloyDbInstance()
    with alloydb.AlloyDbAdminStandIn(instances=[inst], issuer=issuer) as adm:
        base = adm.url + "/v1beta/projects/tb-project/locations/us-central1/clusters/tb-cluster"
        login, _ = issuer.issue("sa@p.iam.gserviceaccount.com", [google.ALLOYDB_LOGIN], 60, "test")
        assert hreq("GET", base + "/instances/orders/connectionInfo", {"Authorization": "Bearer " + login}).status == 403
        tok, _ = issuer.issue("sa@p.iam.gserviceaccount.com", [google.CLOUD_PLATFORM], 60, "test")
        h = {"Authorization": "Bearer " + tok}
        for v in ("v1", "v1beta", "v1alpha"):
            d = hreq("GET", base.replace("/v1beta/", "/%s/" % v) + "/instances/orders/connectionInfo", h).json()
            assert d["ipAddress"] == "127.0.0.2" and d["publicIpAddress"] == "127.0.0.1" and "pscDnsName" not in d
        _, spki, pkcs1, _ = _client_key()
        for pub in (spki, pkcs1):
            r = hreq("POST", base + ":generateClientCertificate", h,
                     json.dumps({"publicKey": pub, "certDuration": "600s", "useMetadataExchange": True}))
            assert r.status == 200, r.body
            chain = [x509.load_pem_x509_certificate(p.encode()) for p in r.json()["pemCertificateChain"]]
            assert r.json()["caCert"] == r.json()["pemCertificateChain"][-1] and len(chain) == 3
            for child, parent in zip(chain, chain[1:]):
                parent.public_key().verify(child.signature, child.tbs_certificate_bytes, padding.PKCS1v15(),
                                           child.signature_hash_algorithm)
            assert abs(chain[0].not_valid_after.timestamp() - (time.time() + 600)) < 5
            assert inst.certs[chain[0].serial_number]["mdx"] is True
        assert hreq("GET", adm.url + "/v2/whatever", h).status == 501
        adm.configure(quota_project="tb-quota")
        info = base + "/instances/orders/connectionInfo"
        assert hreq("GET", info, h).status == 403
        assert hreq("GET", info, dict(h, **{"x-goog-user-project": "tb-quota"})).status == 200


def test_alloydb_proxy_metadata_exchange(issuer):
    from cryptography import x509
    inst = alloydb.AlloyDbInstance()
    v = alloydb.AlloyDbVerifier(inst, issuer, {"u": "pw"})
    key, spki, _, pem = _client_key()
    chain = inst.issue(spki, time.time(), 300, True)
    login, _ = issuer.issue("sa@p.iam.gserviceaccount.com", [google.ALLOYDB_LOGIN], 60, "test")
    import pgfront
    with pgfront.PgFront(inst.server_cert, inst.server_key, upstream_port=1, upstream_user="x", upstream_password="x",
                         mode=v, direct_tls=alloydb.proxy_context(inst)) as front:
        def session(token, auth_type):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(cadata=chain[-1])
            d = tempfile.mkdtemp()
            with open(os.path.join(d, "c.pem"), "w") as f:
                f.write(pem + chain[0] + chain[1])
            ctx.load_cert_chain(os.path.join(d, "c.pem"))
            c = ctx.wrap_socket(socket.create_connection(("127.0.0.1", front.port), timeout=5), server_hostname="127.0.0.1")
            ua = b"test/1"
            msg = b"\x0a" + bytes([len(ua)]) + ua + b"\x10" + bytes([auth_type]) + b"\x1a" + bytes([len(token)]) + token.encode()
            c.sendall(len(msg).to_bytes(4, "big") + msg)
            return c, c.recv(64)
        c, answer = session(login, 1)
        assert answer == bytes.fromhex("000000020801") and c.version() == "TLSv1.3"
        user = b"user\0u\0database\0d\0\0"
        c.sendall((8 + len(user)).to_bytes(4, "big") + b"\0\x03\0\0" + user)
        assert c.recv(9) == b"R\0\0\0\x08\0\0\0\x03"           # DB_NATIVE: the password is asked for
        c.close()
        c, answer = session("ya29.forged", 2)
        assert answer[4:6] == b"\x08\x02" and b"invalid or expired" in answer
        assert [e["auth_type"] for e in v.exchanges] == [1]
        assert x509.load_pem_x509_certificate(chain[0].encode()).serial_number == v.exchanges[0]["serial"]
        # the "hang" fault reads the request and never answers
        v.mdx_fault = "hang"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=chain[-1])
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "c.pem"), "w") as f:
            f.write(pem + chain[0] + chain[1])
        ctx.load_cert_chain(os.path.join(d, "c.pem"))
        c = ctx.wrap_socket(socket.create_connection(("127.0.0.1", front.port), timeout=1), server_hostname="127.0.0.1")
        msg = b"\x10\x01\x1a" + bytes([len(login)]) + login.encode()
        c.sendall(len(msg).to_bytes(4, "big") + msg)
        with pytest.raises(socket.timeout):
            c.recv(64)
        c.close()
