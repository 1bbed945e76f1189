"""Tests of the cloud-endpoint stand-ins themselves (run: /usr/bin/python3 -m pytest test/standins -q).

No sleeps for synchronisation: servers are started synchronously, and anything asynchronous is
awaited with bounded polls or blocking reads with timeouts.
"""
import base64
import concurrent.futures
import datetime as dt
import hashlib
import http.client as httpclient
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(os.path.dirname(HERE), "integration")
for p in (HERE, INTEGRATION):
    if p not in sys.path:
        sys.path.insert(0, p)

import standin_base as sb  # noqa: E402
import entra  # noqa: E402
import azure_imds  # noqa: E402
import aws_imds  # noqa: E402
import aws_container  # noqa: E402
import aws_sts  # noqa: E402
import sigv4_verify as sv  # noqa: E402
import azcli  # noqa: E402
import pgfront  # noqa: E402

RESOURCE = entra.DEFAULT_RESOURCE
STS_CT = "application/x-www-form-urlencoded; charset=utf-8"
ROLE_ARN = "arn:aws:iam::123456789012:role/my-role"


# ------------------------------------------------------------------------------------ helpers
class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def xml(self):
        return ET.fromstring(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


def hreq(method, url, headers=None, body=None, timeout=5.0):
    u = urllib.parse.urlsplit(url)
    c = httpclient.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        target = u.path + ("?" + u.query if u.query else "")
        if isinstance(body, dict):
            body = urllib.parse.urlencode(body)
        c.request(method, target, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        c.close()


def wait_until(cond, timeout=10.0, what="condition"):
    """Bounded poll (no fixed sleeps standing in for synchronisation)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.01)


def xml_text(root, path):
    ns = {"s": aws_sts.NS}
    el = root.find(path, ns)
    return None if el is None else el.text


def form_token_request(client_id=entra.DEFAULT_CLIENT_ID, **extra):
    f = {"client_id": client_id, "grant_type": "client_credentials", "client_info": "1",
         "scope": entra.DEFAULT_SCOPE}
    f.update(extra)
    return {k: v for k, v in f.items() if v is not None}


FORM = {"Content-Type": "application/x-www-form-urlencoded", "x-client-sku": "tb", "client-request-id": "req-1"}


def entra_post(srv, form, headers=None, tenant=entra.DEFAULT_TENANT):
    h = dict(FORM)
    h.update(headers or {})
    return hreq("POST", srv.token_url(tenant), h, form)


def imds_get(srv, headers=None, **q):
    params = {"api-version": "2018-02-01", "resource": RESOURCE}
    params.update(q)
    params = {k: v for k, v in params.items() if v is not None}
    h = {"Metadata": "true"} if headers is None else headers
    return hreq("GET", srv.url + "/metadata/identity/oauth2/token?" + urllib.parse.urlencode(params), h)


def appsvc_get(srv, headers=None, **q):
    params = {"api-version": "2019-08-01", "resource": RESOURCE}
    params.update(q)
    h = {"X-IDENTITY-HEADER": srv.secret} if headers is None else headers
    return hreq("GET", srv.endpoint + "?" + urllib.parse.urlencode(params), h)


def web_identity_form(token=aws_sts.DEFAULT_WEB_IDENTITY_TOKEN, **extra):
    f = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": ROLE_ARN,
         "RoleSessionName": "tb-session", "WebIdentityToken": token}
    f.update(extra)
    return urllib.parse.urlencode({k: v for k, v in f.items() if v is not None})


def assume_role(srv, akid=sv.EXAMPLE_AKID, secret=sv.EXAMPLE_SECRET, session_token=None, t=None, tamper=False,
                region="us-east-1", body=None):
    body = body or urllib.parse.urlencode({"Action": "AssumeRole", "Version": "2011-06-15", "RoleSessionName": "s1",
                                           "RoleArn": ROLE_ARN})
    host = "127.0.0.1:%d" % srv.port
    h = sv.sign_headers("POST", "/", "", {"Host": host, "Content-Type": STS_CT}, body, akid, secret, region, "sts",
                        time.time() if t is None else t, session_token)
    if tamper:
        h["Authorization"] = h["Authorization"][:-4] + ("0000" if not h["Authorization"].endswith("0000") else "1111")
    return hreq("POST", srv.url + "/", h, body)


def imds_v2_credentials(srv):
    tok = hreq("PUT", srv.url + "/latest/api/token", {"x-aws-ec2-metadata-token-ttl-seconds": "21600"}).body.decode()
    h = {"x-aws-ec2-metadata-token": tok}
    role = hreq("GET", srv.url + aws_imds.CREDS_PATH, h).body.decode()
    return hreq("GET", srv.url + aws_imds.CREDS_PATH + role, h).json()


# --------------------------------------------------------------------------------- fixtures
@pytest.fixture
def entra_srv():
    with entra.EntraStandIn(ttl=20) as s:
        yield s


@pytest.fixture
def imds_srv():
    with azure_imds.AzureImdsStandIn(ttl=20) as s:
        yield s


@pytest.fixture
def appsvc_srv():
    with azure_imds.AppServiceStandIn(ttl=20) as s:
        yield s


@pytest.fixture
def aws_imds_srv():
    with aws_imds.AwsImdsStandIn(ttl=20) as s:
        yield s


@pytest.fixture
def container_srv():
    with aws_container.AwsContainerStandIn(auth_token="tb-container-auth", ttl=20) as s:
        yield s


@pytest.fixture
def sts_srv():
    with aws_sts.AwsStsStandIn(ttl=20) as s:
        yield s


@pytest.fixture(scope="module")
def tmpdir_mod():
    d = tempfile.mkdtemp(prefix="tbstandin")
    os.chmod(d, 0o755)               # PostgreSQL (user postgres) reads the certificates below it
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def client_certs(tmpdir_mod):
    a = entra.make_client_cert(os.path.join(tmpdir_mod, "certs"), "entra-client")
    b = entra.make_client_cert(os.path.join(tmpdir_mod, "certs"), "other-client")
    return a, b


# =============================================================================== SigV4 (SigV4 query presigning to the published SigV4 test vectors)
@pytest.mark.parametrize("name,ok,detail", sv.self_check(), ids=lambda v: v if isinstance(v, str) else "")
def test_sigv4_self_check(name, ok, detail):
    """Worked examples A–D and the the published SigV4 test vectors vectors verify at frozen time 2015-08-30T12:36:00Z."""
    assert ok, "%s: %s" % (name, detail)


T0 = sb.parse_time(sv.EXAMPLE_TIME)
LONG = {sv.EXAMPLE_AKID: sv.EXAMPLE_SECRET}
RDS_EP = sv.RDS_HOST + ":5432"


def _rds_fail(token, **kw):
    args = dict(host=RDS_EP, keys=LONG, now=T0, flavor="rds", region="us-east-1", user="iam_user")
    args.update(kw)
    with pytest.raises(sv.SigV4Error) as ei:
        sv.verify_presigned(token, **args)
    return ei.value


def test_sigv4_verifier_rejections():
    a = sv.EXAMPLE_A
    assert "signature mismatch" in str(_rds_fail(a[:-1] + ("0" if a[-1] != "0" else "1")))
    assert "DBUser" in str(_rds_fail(a, user="other"))
    assert "expired" in str(_rds_fail(a, now=T0 + 901))
    sv.verify_presigned(a, RDS_EP, LONG, T0 + 900, "rds", "us-east-1", "iam_user")   # last valid second
    assert "future" in str(_rds_fail(a, now=T0 - 301))
    assert "not this endpoint" in str(_rds_fail(a, host=sv.RDS_HOST + ":5433"))
    assert "region" in str(_rds_fail(a, region="eu-west-1"))
    assert _rds_fail(a, keys={"AKIDOTHER": "x"}).code == "InvalidClientTokenId"
    assert "scheme" in str(_rds_fail("https://" + a))
    # an unencoded '+' in the session token is decoded as a space by the server -> bad token
    b_plus = sv.EXAMPLE_B.replace("%2Btoken", "+token")
    e = _rds_fail(b_plus, keys={sv.EXAMPLE_AKID: (sv.EXAMPLE_SECRET, sv.EXAMPLE_B_SESSION)}, user="iam user@x")
    assert e.code == "InvalidClientTokenId"
    # token with a session token presented for a long-term key
    assert _rds_fail(sv.EXAMPLE_B, user="iam user@x").code == "InvalidClientTokenId"
    # mixed-case host in the token text is fine (host is lower-cased in the canonical request)
    mixed = sv.rds_token("MyDB.123456789012.us-east-1.rds.amazonaws.com", 5432, "iam_user", "us-east-1",
                         sv.EXAMPLE_AKID, sv.EXAMPLE_SECRET, T0)
    sv.verify_presigned(mixed, RDS_EP, LONG, T0, "rds", "us-east-1", "iam_user")
    # RDS expiry cap 900
    long_rds = sv.presign(sv.EXAMPLE_AKID, sv.EXAMPLE_SECRET, "us-east-1", "rds-db", RDS_EP,
                          [("Action", "connect"), ("DBUser", "iam_user")], 901, T0)
    assert "X-Amz-Expires" in str(_rds_fail(long_rds))


def test_sigv4_dsql_rules():
    sv.verify_presigned(sv.EXAMPLE_C, sv.DSQL_HOST, LONG, T0, "dsql", "us-east-1", "admin")
    with pytest.raises(sv.SigV4Error, match="DbConnectAdmin"):
        sv.verify_presigned(sv.EXAMPLE_D, sv.DSQL_HOST, LONG, T0, "dsql", "us-east-1", "admin")
    with pytest.raises(sv.SigV4Error, match="DbConnect"):
        sv.verify_presigned(sv.EXAMPLE_C, sv.DSQL_HOST, LONG, T0, "dsql", "us-east-1", "reader")
    with pytest.raises(sv.SigV4Error, match="port"):
        sv.verify_presigned(sv.DSQL_HOST + ":5432" + sv.EXAMPLE_C[len(sv.DSQL_HOST):], sv.DSQL_HOST + ":5432",
                            LONG, T0, "dsql", "us-east-1", "admin")
    with_user = sv.presign(sv.EXAMPLE_AKID, sv.EXAMPLE_SECRET, "us-east-1", "dsql", sv.DSQL_HOST,
                           [("Action", "DbConnect"), ("DBUser", "x")], 900, T0)
    with pytest.raises(sv.SigV4Error, match="DBUser"):
        sv.verify_presigned(with_user, sv.DSQL_HOST, LONG, T0, "dsql", "us-east-1", "x")
    week = sv.dsql_token(sv.DSQL_HOST, "us-east-1", sv.EXAMPLE_AKID, sv.EXAMPLE_SECRET, T0, False, expires=604800)
    sv.verify_presigned(week, sv.DSQL_HOST, LONG, T0 + 604800, "dsql", "us-east-1", "r")
    over = sv.dsql_token(sv.DSQL_HOST, "us-east-1", sv.EXAMPLE_AKID, sv.EXAMPLE_SECRET, T0, False, expires=604801)
    with pytest.raises(sv.SigV4Error, match="X-Amz-Expires"):
        sv.verify_presigned(over, sv.DSQL_HOST, LONG, T0, "dsql", "us-east-1", "r")


def test_minted_credentials_keystore():
    now = time.time()
    c = sv.mint_credentials("IMDS", 7, now + 20)
    assert c["AccessKeyId"] == "ASIAIMDS000000000007" and len(c["SecretAccessKey"]) == 40
    assert sb.token_counter(c["Token"]) == 7
    ks = sv.KeyStore()
    tok = sv.rds_token("db.example", 5432, "u", "us-east-1", c["AccessKeyId"], c["SecretAccessKey"], now,
                       c["Token"])
    r = sv.verify_presigned(tok, "db.example:5432", ks, now, "rds", "us-east-1", "u")
    assert r["expires_at"] == int(now + 20)      # min(token expiry, credential expiry)
    with pytest.raises(sv.SigV4Error) as ei:
        sv.verify_presigned(tok, "db.example:5432", ks, now + 21, "rds", "us-east-1", "u")
    assert ei.value.code == "ExpiredToken"
    bad = sv.rds_token("db.example", 5432, "u", "us-east-1", c["AccessKeyId"], c["SecretAccessKey"], now,
                       c["Token"][:-2] + "xx")
    with pytest.raises(sv.SigV4Error) as ei:
        sv.verify_presigned(bad, "db.example:5432", ks, now, "rds", "us-east-1", "u")
    assert ei.value.code == "InvalidClientTokenId"
    with pytest.raises(sv.SigV4Error):   # another master key does not know the credentials
        sv.verify_presigned(tok, "db.example:5432", sv.KeyStore(master=b"other"), now, "rds", "us-east-1", "u")


# =================================================================================== Entra (the Entra token endpoint stand-in)
def test_entra_client_secret(entra_srv):
    t0 = time.time()
    r = entra_post(entra_srv, form_token_request(client_secret=entra.DEFAULT_CLIENT_SECRET, unknown_field="x"))
    assert r.status == 200, r.body
    d = r.json()
    assert d["token_type"] == "Bearer" and d["expires_in"] == 20 and d["ext_expires_in"] == 20
    assert "refresh_in" not in d
    hdr, claims, _, _ = sb.jwt_decode(d["access_token"])
    assert hdr["alg"] == "HS256"
    assert claims["aud"] == RESOURCE and claims["tid"] == entra.DEFAULT_TENANT
    assert claims["appid"] == entra.DEFAULT_CLIENT_ID and claims["oid"] and claims["appidacr"] == "1"
    assert abs(claims["exp"] - (t0 + 20)) <= 2
    assert sb.jwt_verify_hs256(d["access_token"])["uti"] == "tok-1"
    d2 = entra_post(entra_srv, form_token_request(client_secret=entra.DEFAULT_CLIENT_SECRET)).json()
    assert sb.token_counter(d2["access_token"]) == 2 and entra_srv.is_issued(d2["access_token"])
    rec = entra_srv.requests()[0]
    assert rec["method"] == "POST" and rec["path"] == "/%s/oauth2/v2.0/token" % entra.DEFAULT_TENANT
    assert rec.form1("client_secret") == entra.DEFAULT_CLIENT_SECRET and rec.header("x-client-sku") == "tb"


def test_entra_basic_auth_and_refresh_in(entra_srv):
    entra_srv.configure(refresh_in=10)
    basic = base64.b64encode(("%s:%s" % (urllib.parse.quote(entra.DEFAULT_CLIENT_ID, safe=""),
                                         urllib.parse.quote(entra.DEFAULT_CLIENT_SECRET, safe=""))).encode()).decode()
    r = entra_post(entra_srv, form_token_request(client_id=None), {"Authorization": "Basic " + basic})
    assert r.status == 200, r.body
    assert r.json()["refresh_in"] == 10
    bad = base64.b64encode(("%s:wrong" % entra.DEFAULT_CLIENT_ID).encode()).decode()
    r = entra_post(entra_srv, form_token_request(), {"Authorization": "Basic " + bad})
    assert r.status == 401 and r.json()["error_codes"] == [7000215]


@pytest.mark.parametrize("form,tenant,status,error,code", [
    (form_token_request(client_secret="wrong"), None, 401, "invalid_client", 7000215),
    (form_token_request(client_secret=entra.DEFAULT_CLIENT_SECRET), "no-such-tenant", 400, "invalid_request", 90002),
    (form_token_request(client_secret=entra.DEFAULT_CLIENT_SECRET, scope="https://management.azure.com/.default"),
     None, 400, "invalid_scope", 70011),
    (form_token_request(client_id="00000000-0000-0000-0000-000000000000", client_secret="x"), None, 400,
     "unauthorized_client", 700016),
    (form_token_request(), None, 401, "invalid_client", 7000218),
    (form_token_request(client_secret=entra.DEFAULT_CLIENT_SECRET, client_assertion="x",
                        client_assertion_type=entra.JWT_BEARER), None, 400, "invalid_request", 90023),
    (form_token_request(client_secret=entra.DEFAULT_CLIENT_SECRET, grant_type="password"), None, 400,
     "unsupported_grant_type", 70003),
], ids=["bad-secret", "unknown-tenant", "bad-scope", "unknown-client", "no-auth", "two-auths", "grant-type"])
def test_entra_errors(entra_srv, form, tenant, status, error, code):
    r = entra_post(entra_srv, form, tenant=tenant or entra.DEFAULT_TENANT)
    assert r.status == status, r.body
    d = r.json()
    assert d["error"] == error and d["error_codes"] == [code]
    assert d["error_description"].startswith("AADSTS%d:" % code)
    assert d["trace_id"] and d["correlation_id"] == "req-1" and d["timestamp"].endswith("Z")
    assert d["error_uri"].endswith("code=%d" % code)


@pytest.fixture
def cert_entra(client_certs):
    (crt, key, _), _ = client_certs
    with entra.EntraStandIn(ttl=20, clients=[{"client_id": entra.DEFAULT_CLIENT_ID, "cert": crt}]) as s:
        yield s


def _assert_form(assertion):
    return form_token_request(client_assertion=assertion, client_assertion_type=entra.JWT_BEARER)


@pytest.mark.parametrize("alg,thumb,aud", [("RS256", "x5t", "public"), ("PS256", "x5t#S256", "public"),
                                           ("RS256", "both", "self"), ("PS256", "x5t", "self")])
def test_entra_certificate_assertion_ok(cert_entra, client_certs, alg, thumb, aud):
    (crt, key, _), _ = client_certs
    audience = (entra.PUBLIC_AUTHORITY + "/%s/oauth2/v2.0/token" % entra.DEFAULT_TENANT if aud == "public"
                else cert_entra.token_url())
    a = entra.make_client_assertion(key, crt, entra.DEFAULT_CLIENT_ID, audience, alg=alg, thumbprint=thumb,
                                    x5c=(alg == "RS256"))
    r = entra_post(cert_entra, _assert_form(a))
    assert r.status == 200, r.body
    claims = sb.jwt_decode(r.json()["access_token"])[1]
    assert claims["appidacr"] == "2"
    assert cert_entra.issued[-1]["method"] == "certificate"


@pytest.mark.parametrize("case,code", [("wrong-key", 700027), ("wrong-aud", 700027), ("expired", 700024),
                                       ("too-long", 700024), ("no-jti", 700027), ("iss", 700021),
                                       ("no-thumbprint", 700027), ("bad-signature", 700027)])
def test_entra_certificate_assertion_rejected(cert_entra, client_certs, case, code):
    (crt, key, _), (ocrt, okey, _) = client_certs
    aud = cert_entra.token_url()
    kw = {}
    k, c = key, crt
    if case == "wrong-key":
        k = okey                                     # signed by another key, x5t of the registered cert
        a = entra.make_client_assertion(okey, ocrt, entra.DEFAULT_CLIENT_ID, aud,
                                        extra_header={"x5t": sb.b64url(hashlib.sha1(
                                            entra._load_cert(crt)["der"]).digest())})
    else:
        if case == "wrong-aud":
            aud = "https://login.microsoftonline.com/other/oauth2/v2.0/token"
        elif case == "expired":
            kw = dict(now=time.time() - 700, lifetime=600)
        elif case == "too-long":
            kw = dict(lifetime=7200)
        elif case == "no-jti":
            kw = dict(jti=None)
        elif case == "iss":
            kw = dict(extra_claims={"iss": "someone-else"})
        elif case == "no-thumbprint":
            kw = dict(thumbprint="none")
        a = entra.make_client_assertion(k, c, entra.DEFAULT_CLIENT_ID, aud, **kw)
        if case == "bad-signature":
            h, p, s = a.split(".")
            a = h + "." + sb.b64url(json.dumps(dict(sb.jwt_decode(a)[1], exp=int(time.time()) + 500))) + "." + s
    r = entra_post(cert_entra, _assert_form(a))
    assert r.status == 401, r.body
    assert r.json()["error"] == "invalid_client" and r.json()["error_codes"] == [code], r.body


def test_entra_workload_identity(tmpdir_mod):
    path = os.path.join(tmpdir_mod, "federated-token")
    tok = entra.make_federated_token()
    with open(path, "w") as f:
        f.write(tok + "\n")                                 # a trailing newline must not matter
    clients = [{"client_id": entra.DEFAULT_CLIENT_ID, "federated": {"token_file": path}},
               {"client_id": "fed-by-claims", "federated": {"issuer": "https://oidc.example.test/cluster",
                                                           "subject": "system:serviceaccount:ns:sa"}}]
    with entra.EntraStandIn(ttl=20, clients=clients) as s:
        r = entra_post(s, _assert_form(tok))
        assert r.status == 200, r.body
        assert s.issued[-1]["method"] == "federated"
        # rotated file: the old token no longer matches
        tok2 = entra.make_federated_token(subject="system:serviceaccount:ns:other")
        with open(path, "w") as f:
            f.write(tok2)
        r = entra_post(s, _assert_form(tok))
        assert r.status == 400 and r.json()["error_codes"] == [700211], r.body
        assert entra_post(s, _assert_form(tok2)).status == 200
        # claims-matched federated credential
        assert entra_post(s, form_token_request("fed-by-claims", client_assertion=tok,
                                                client_assertion_type=entra.JWT_BEARER)).status == 200
        wrong_iss = entra.make_federated_token(issuer="https://evil.example")
        r = entra_post(s, form_token_request("fed-by-claims", client_assertion=wrong_iss,
                                             client_assertion_type=entra.JWT_BEARER))
        assert r.status == 400 and r.json()["error_codes"] == [700211]
        expired = entra.make_federated_token(now=time.time() - 7200, lifetime=3600)
        r = entra_post(s, form_token_request("fed-by-claims", client_assertion=expired,
                                             client_assertion_type=entra.JWT_BEARER))
        assert r.status == 400 and r.json()["error_codes"] == [700024]


def test_entra_discovery(entra_srv):
    r = hreq("GET", entra_srv.url + "/%s/v2.0/.well-known/openid-configuration" % entra.DEFAULT_TENANT)
    d = r.json()
    assert d["token_endpoint"] == entra_srv.token_url() and d["issuer"].startswith("https://login.microsoftonline.com/")
    assert hreq("GET", entra_srv.url + "/nope/v2.0/.well-known/openid-configuration").status == 400
    assert "tenant_discovery_endpoint" in hreq("GET", entra_srv.url + "/common/discovery/instance").json()


def test_entra_clock_offset(entra_srv):
    entra_srv.clock.set(offset=-1000)
    d = entra_post(entra_srv, form_token_request(client_secret=entra.DEFAULT_CLIENT_SECRET)).json()
    assert abs(sb.jwt_decode(d["access_token"])[1]["exp"] - (time.time() - 1000 + 20)) <= 2


# ============================================================================ Azure IMDS (the Azure IMDS stand-in)
def test_imds_identities(imds_srv):
    t0 = time.time()
    r = imds_get(imds_srv)
    assert r.status == 200, r.body
    d = r.json()
    for k in ("access_token", "client_id", "expires_in", "expires_on", "ext_expires_in", "not_before", "resource",
              "token_type"):
        assert isinstance(d[k], str), k
    assert d["client_id"] == azure_imds.SYSTEM_IDENTITY["client_id"] and d["resource"] == RESOURCE
    assert d["expires_in"] == "20" and abs(int(d["expires_on"]) - (t0 + 20)) <= 2
    claims = sb.jwt_verify_hs256(d["access_token"])
    assert claims["aud"] == RESOURCE and claims["xms_mirid"].endswith("/virtualMachines/tb-vm")
    ua = azure_imds.USER_IDENTITY
    for sel in ({"client_id": ua["client_id"]}, {"object_id": ua["object_id"]},
                {"msi_res_id": ua["msi_res_id"].upper()}):
        d = imds_get(imds_srv, **sel).json()
        assert d["client_id"] == ua["client_id"], sel
    assert sb.token_counter(d["access_token"]) == 4
    # msal-node's trailing slash form
    r = hreq("GET", imds_srv.url + "/metadata/identity/oauth2/token/?api-version=2018-02-01&resource=" +
             urllib.parse.quote(RESOURCE, safe=""), {"Metadata": "true"})
    assert r.status == 200


@pytest.mark.parametrize("headers,q,error,desc", [
    ({}, {}, "bad_request_102", "Required metadata header not specified"),
    (None, {"api-version": "2017-09-01"}, "invalid_request", "api-version"),
    (None, {"api-version": None}, "invalid_request", "api-version"),
    (None, {"resource": "https://management.azure.com/"}, "invalid_resource", "AADSTS500011"),
    (None, {"client_id": "nobody"}, "invalid_request", "Identity not found"),
    (None, {"client_id": azure_imds.USER_IDENTITY["client_id"], "object_id": azure_imds.USER_IDENTITY["object_id"]},
     "invalid_request", "Multiple"),
], ids=["no-metadata", "bad-api-version", "no-api-version", "bad-resource", "unknown-identity", "two-selectors"])
def test_imds_errors(imds_srv, headers, q, error, desc):
    r = imds_get(imds_srv, headers, **q)
    assert r.status == 400
    assert r.json()["error"] == error and desc in r.json()["error_description"]


def test_imds_no_system_identity():
    with azure_imds.AzureImdsStandIn(identities=[azure_imds.USER_IDENTITY]) as s:
        r = imds_get(s)
        assert r.status == 400 and r.json()["error_description"] == "Identity not found"


def test_imds_cached_tokens_and_formats():
    with azure_imds.AzureImdsStandIn(ttl=100, cache_tokens=True, expires_fields="expires_on",
                                     expires_on_format="iso") as s:
        a, b = imds_get(s).json(), imds_get(s).json()
        assert a["access_token"] == b["access_token"] and "expires_in" not in a
        assert a["expires_on"].endswith("Z") and "T" in a["expires_on"]
        s.clock.advance(101)
        assert imds_get(s).json()["access_token"] != a["access_token"]


def test_imds_retryable_faults(imds_srv):
    for st in (404, 410, 500, 503):
        imds_srv.add_fault(status=st)
    imds_srv.add_fault(status=429, retry_after=3)
    got = [imds_get(imds_srv) for _ in range(6)]
    assert [r.status for r in got] == [404, 410, 500, 503, 429, 200]
    assert got[4].header("Retry-After") == "3" and "error" in got[4].json()
    assert [r["fault"] for r in imds_srv.requests()] == ["status"] * 5 + [None]


def test_imds_connection_refused_after_stop():
    s = azure_imds.AzureImdsStandIn().start()
    port = s.port
    s.stop()
    for p in (port, sb.refused_port()):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", p), timeout=1).close()


# ======================================================================= App Service (the other Azure managed identity stand-ins)
def test_appservice(appsvc_srv):
    r = appsvc_get(appsvc_srv)
    assert r.status == 200, r.body
    d = r.json()
    assert isinstance(d["expires_on"], str) and d["token_type"] == "Bearer" and d["resource"] == RESOURCE
    assert d["client_id"] == azure_imds.SYSTEM_IDENTITY["client_id"]
    ua = azure_imds.USER_IDENTITY
    for sel in ({"client_id": ua["client_id"]}, {"principal_id": ua["object_id"]},
                {"object_id": ua["object_id"]}, {"mi_res_id": ua["msi_res_id"]}):
        assert appsvc_get(appsvc_srv, **sel).json()["client_id"] == ua["client_id"], sel
    rec = appsvc_srv.requests()[0]
    assert rec.header("Metadata") is None and rec.q("api-version") == "2019-08-01"


def test_appservice_errors(appsvc_srv):
    for h in ({}, {"X-IDENTITY-HEADER": "wrong"}):
        r = appsvc_get(appsvc_srv, headers=h)
        assert r.status == 401 and r.json()["statusCode"] == 401
    r = appsvc_get(appsvc_srv, **{"api-version": "2018-02-01"})
    assert r.status == 400 and r.json()["statusCode"] == 400
    assert appsvc_get(appsvc_srv, client_id="nobody").status == 400


# ============================================================================== az CLI (the Azure CLI stub)
AZ_ARGS = ["account", "get-access-token", "--output", "json", "--resource", RESOURCE]


def run_az(stub, args=AZ_ARGS, timeout=10):
    return subprocess.run(["az"] + list(args), env=stub.env(), cwd="/bin", stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, text=True)


@pytest.fixture
def az_stub(tmpdir_mod):
    d = tempfile.mkdtemp(dir=tmpdir_mod)
    return azcli.AzCliStub(d, expires_in=20)


def test_az_ok(az_stub):
    t0 = time.time()
    r = run_az(az_stub, AZ_ARGS + ["--tenant", entra.DEFAULT_TENANT, "--subscription", "sub-1"])
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert abs(d["expires_on"] - (t0 + 20)) <= 2 and d["tokenType"] == "Bearer" and d["subscription"] == "sub-1"
    local = dt.datetime.strptime(d["expiresOn"], "%Y-%m-%d %H:%M:%S.%f")   # naive local time
    assert abs(local.timestamp() - d["expires_on"]) <= 1
    claims = sb.jwt_verify_hs256(d["accessToken"])
    assert claims["upn"] == azcli.DEFAULT_UPN and claims["aud"] == RESOURCE and claims["uti"] == "tok-1"
    d2 = json.loads(run_az(az_stub).stdout)
    assert sb.token_counter(d2["accessToken"]) == 2
    inv = az_stub.invocations()
    assert inv[0]["argv"][:2] == ["account", "get-access-token"] and inv[0]["cwd"] == os.path.realpath("/bin")
    assert inv[0]["stdin"] == "devnull"
    assert pgfront.AzureVerifier().verify(azcli.DEFAULT_UPN, "db", d2["accessToken"], time.time())


def test_az_old_cli_and_fixed_token(az_stub):
    az_stub.set(no_expires_on=True, token="fixed-token")
    d = json.loads(run_az(az_stub).stdout)
    assert "expires_on" not in d and d["accessToken"] == "fixed-token"


@pytest.mark.parametrize("mode,rc,stderr", [("not_logged_in", 1, "az login"), ("exit127", 127, ""),
                                            ("error", 1, "AADSTS700082")])
def test_az_failure_modes(az_stub, mode, rc, stderr):
    az_stub.set(mode=mode)
    r = run_az(az_stub)
    assert r.returncode == rc and stderr in r.stderr and r.stdout == ""


def test_az_malformed_and_bad_args(az_stub):
    az_stub.set(mode="malformed")
    r = run_az(az_stub)
    assert r.returncode == 0
    with pytest.raises(ValueError):
        json.loads(r.stdout)
    r = run_az(az_stub, ["account", "get-access-token", "--bogus"])
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr


def test_az_sleep_times_out(az_stub):
    az_stub.set(mode="sleep", sleep=30)
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_az(az_stub, timeout=0.5)
    assert time.monotonic() - t0 < 5


def test_az_fetches_from_entra(az_stub, entra_srv):
    az_stub.set(entra={"url": entra_srv.url, "tenant": entra.DEFAULT_TENANT, "client_id": entra.DEFAULT_CLIENT_ID,
                       "client_secret": entra.DEFAULT_CLIENT_SECRET})
    d = json.loads(run_az(az_stub).stdout)
    assert entra_srv.is_issued(d["accessToken"]) and len(entra_srv.requests()) == 1


# ============================================================================ AWS IMDS (the AWS IMDS stand-in)
def test_aws_imds_v2_flow(aws_imds_srv):
    s = aws_imds_srv
    r = hreq("PUT", s.url + "/latest/api/token", {"x-aws-ec2-metadata-token-ttl-seconds": "21600"})
    assert r.status == 200 and r.header("x-aws-ec2-metadata-token-ttl-seconds") == "21600"
    tok = r.body.decode()
    h = {"x-aws-ec2-metadata-token": tok}
    assert hreq("GET", s.url + aws_imds.CREDS_PATH, h).body == b"tb-instance-role"
    t0 = time.time()
    d = hreq("GET", s.url + aws_imds.CREDS_PATH + "tb-instance-role", h).json()
    assert d["Code"] == "Success" and d["Type"] == "AWS-HMAC" and d["AccessKeyId"].startswith("ASIA")
    exp = sb.parse_time(d["Expiration"])
    assert d["Expiration"].endswith("Z") and abs(exp - (t0 + 20)) <= 2
    assert sb.token_counter(d["Token"]) == 1
    assert sv.KeyStore().resolve(d["AccessKeyId"], d["Token"], time.time()).secret == d["SecretAccessKey"]
    assert hreq("GET", s.url + aws_imds.CREDS_PATH + "other-role", h).status == 404
    assert hreq("GET", s.url + aws_imds.CREDS_PATH, {"x-aws-ec2-metadata-token": "forged"}).status == 401
    assert hreq("GET", s.url + aws_imds.CREDS_PATH).status == 200            # v1 allowed by default
    s.configure(v1_allowed=False)
    assert hreq("GET", s.url + aws_imds.CREDS_PATH).status == 401
    s.clock.advance(21601)                                                    # session token expired
    assert hreq("GET", s.url + aws_imds.CREDS_PATH, h).status == 401
    assert hreq("GET", s.url + "/latest/meta-data/placement/region", {}).status == 401


@pytest.mark.parametrize("headers,status", [({}, 400), ({"x-aws-ec2-metadata-token-ttl-seconds": "0"}, 400),
                                            ({"x-aws-ec2-metadata-token-ttl-seconds": "21601"}, 400),
                                            ({"x-aws-ec2-metadata-token-ttl-seconds": "60",
                                              "X-Forwarded-For": "1.2.3.4"}, 403)])
def test_aws_imds_token_put_errors(aws_imds_srv, headers, status):
    assert hreq("PUT", aws_imds_srv.url + "/latest/api/token", headers).status == status


@pytest.mark.parametrize("st", [403, 404, 405])
def test_aws_imds_v1_fallback_modes(aws_imds_srv, st):
    s = aws_imds_srv
    s.add_fault(status=st, path="/latest/api/token", count=None)
    for _ in range(2):
        assert hreq("PUT", s.url + "/latest/api/token", {"x-aws-ec2-metadata-token-ttl-seconds": "21600"}).status == st
    assert hreq("GET", s.url + aws_imds.CREDS_PATH).body == b"tb-instance-role"
    assert hreq("GET", s.url + aws_imds.CREDS_PATH + "tb-instance-role").json()["Code"] == "Success"


def test_aws_imds_credential_body_modes(aws_imds_srv):
    s = aws_imds_srv
    p = aws_imds.CREDS_PATH + "tb-instance-role"
    s.add_fault(kind="empty", path=p)
    s.add_fault(kind="malformed", path=p)
    s.add_fault(kind="body", path=p, body=aws_imds.ERROR_REPORT, content_type="text/plain")
    assert hreq("GET", s.url + aws_imds.CREDS_PATH).status == 200        # role listing is not faulted
    assert hreq("GET", s.url + p).body == b""
    with pytest.raises(ValueError):
        json.loads(hreq("GET", s.url + p).body)
    d = hreq("GET", s.url + p).json()
    assert d["Code"] == "AssumeRoleUnauthorizedAccess" and "AccessKeyId" not in d
    assert hreq("GET", s.url + p).json()["Code"] == "Success"


# ================================================================= AWS container creds (the AWS container credentials stand-in)
def test_container(container_srv):
    s = container_srv
    r = hreq("GET", s.full_uri, {"Authorization": "tb-container-auth", "Accept": "application/json"})
    assert r.status == 200, r.body
    d = r.json()
    assert set(d) == {"RoleArn", "AccessKeyId", "SecretAccessKey", "Token", "Expiration", "AccountId"}
    assert d["AccessKeyId"].startswith("ASIAECSC") and sb.token_counter(d["Token"]) == 1
    assert hreq("GET", s.full_uri).status == 401
    assert hreq("GET", s.full_uri, {"Authorization": "Bearer tb-container-auth"}).status == 401
    assert hreq("GET", s.url + "/v2/credentials/other", {"Authorization": "tb-container-auth"}).status == 404
    s.add_fault(status=500, count=2)
    got = [hreq("GET", s.full_uri, {"Authorization": "tb-container-auth"}).status for _ in range(3)]
    assert got == [500, 500, 200]


# ================================================================================ AWS STS (the AWS STS stand-in)
def test_sts_web_identity(sts_srv):
    t0 = time.time()
    r = hreq("POST", sts_srv.url + "/", {"Content-Type": STS_CT}, web_identity_form())
    assert r.status == 200, r.body
    root = r.xml()
    base = "s:AssumeRoleWithWebIdentityResult/"
    assert xml_text(root, base + "s:AssumedRoleUser/s:Arn") == "arn:aws:sts::123456789012:assumed-role/my-role/tb-session"
    akid = xml_text(root, base + "s:Credentials/s:AccessKeyId")
    tok = xml_text(root, base + "s:Credentials/s:SessionToken")
    assert akid.startswith("ASIASTSW") and sb.token_counter(tok) == 1
    assert abs(sb.parse_time(xml_text(root, base + "s:Credentials/s:Expiration")) - (t0 + 20)) <= 2
    assert xml_text(root, base + "s:SubjectFromWebIdentityToken") and xml_text(root, "s:ResponseMetadata/s:RequestId")
    assert sts_srv.requests()[0].form1("WebIdentityToken") == aws_sts.DEFAULT_WEB_IDENTITY_TOKEN


@pytest.mark.parametrize("case,status,code", [
    ("wrong-token", 400, "InvalidIdentityToken"), ("signed", 400, "InvalidRequest"),
    ("no-version", 400, "InvalidAction"), ("no-action", 400, "MissingAction"), ("bad-arn", 400, "ValidationError"),
    ("no-session", 400, "ValidationError"), ("short-duration", 400, "ValidationError"),
    ("expired-jwt", 400, "ExpiredTokenException")])
def test_sts_web_identity_errors(tmpdir_mod, case, status, code):
    path = os.path.join(tmpdir_mod, "web-token-%s" % case)
    jwt = sb.jwt_encode({"sub": "system:serviceaccount:ns:sa", "exp": int(time.time()) - 10})
    with open(path, "w") as f:
        f.write(jwt if case == "expired-jwt" else "tok-from-file")
    with aws_sts.AwsStsStandIn(web_identity_token_file=path) as s:
        form = {"wrong-token": web_identity_form("other"), "signed": web_identity_form("tok-from-file"),
                "no-version": web_identity_form("tok-from-file", Version=None),
                "no-action": "Version=2011-06-15",
                "bad-arn": web_identity_form("tok-from-file", RoleArn="arn:aws:iam::1:role/x"),
                "no-session": web_identity_form("tok-from-file", RoleSessionName=None),
                "short-duration": web_identity_form("tok-from-file", DurationSeconds="899"),
                "expired-jwt": web_identity_form(jwt)}[case]
        h = {"Content-Type": STS_CT}
        if case == "signed":
            h["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20300101/us-east-1/sts/aws4_request, " \
                                 "SignedHeaders=host, Signature=" + "0" * 64
        r = hreq("POST", s.url + "/", h, form)
        assert r.status == status, r.body
        root = r.xml()
        assert root.tag == "{%s}ErrorResponse" % aws_sts.NS
        assert xml_text(root, "s:Error/s:Code") == code and xml_text(root, "s:Error/s:Type") == "Sender"
        if case == "wrong-token":
            assert hreq("POST", s.url + "/", h, web_identity_form("tok-from-file\n")).status == 200


def test_sts_assume_role(sts_srv, aws_imds_srv):
    sts_srv.configure(required_signed=("content-type", "host", "x-amz-date"))
    r = assume_role(sts_srv)
    assert r.status == 200, r.body
    root = r.xml()
    assert xml_text(root, "s:AssumeRoleResult/s:Credentials/s:AccessKeyId").startswith("ASIASTSA")
    assert sts_srv.verified[-1]["signed_headers"] == ["content-type", "host", "x-amz-date"]
    # chained: source credentials minted by the IMDS stand-in, session token signed
    c = imds_v2_credentials(aws_imds_srv)
    r = assume_role(sts_srv, c["AccessKeyId"], c["SecretAccessKey"], c["Token"])
    assert r.status == 200, r.body
    assert sts_srv.verified[-1]["signed_headers"][-1] == "x-amz-security-token"
    assert sts_srv.requests()[-1].header("X-Amz-Security-Token") == c["Token"]


@pytest.mark.parametrize("case,status,code", [("tampered", 403, "SignatureDoesNotMatch"),
                                              ("unknown-key", 403, "InvalidClientTokenId"),
                                              ("skew", 403, "SignatureDoesNotMatch"),
                                              ("missing-session-token", 403, "InvalidClientTokenId"),
                                              ("wrong-service", 403, "SignatureDoesNotMatch"),
                                              ("unsigned", 403, "MissingAuthenticationToken")])
def test_sts_assume_role_rejected(sts_srv, case, status, code):
    if case == "tampered":
        r = assume_role(sts_srv, tamper=True)
    elif case == "unknown-key":
        r = assume_role(sts_srv, akid="AKIDUNKNOWN")
    elif case == "skew":
        r = assume_role(sts_srv, t=time.time() - 600)
    elif case == "missing-session-token":
        c = sv.mint_credentials("IMDS", 3, time.time() + 100)
        r = assume_role(sts_srv, c["AccessKeyId"], c["SecretAccessKey"])
    elif case == "wrong-service":
        body = "Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1&RoleArn=" + urllib.parse.quote(ROLE_ARN)
        h = sv.sign_headers("POST", "/", "", {"Host": "127.0.0.1:%d" % sts_srv.port, "Content-Type": STS_CT}, body,
                            sv.EXAMPLE_AKID, sv.EXAMPLE_SECRET, "us-east-1", "iam", time.time())
        r = hreq("POST", sts_srv.url + "/", h, body)
    else:
        r = hreq("POST", sts_srv.url + "/", {"Content-Type": STS_CT},
                 "Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1&RoleArn=" + urllib.parse.quote(ROLE_ARN))
    assert r.status == status, r.body
    assert xml_text(r.xml(), "s:Error/s:Code") == code


def test_sts_error_faults(sts_srv):
    sts_srv.add_fault(status=400, code="Throttling")
    sts_srv.add_fault(status=400, code="IDPCommunicationError")
    sts_srv.add_fault(status=503)
    sts_srv.add_fault(kind="malformed")
    got = [hreq("POST", sts_srv.url + "/", {"Content-Type": STS_CT}, web_identity_form()) for _ in range(5)]
    assert [r.status for r in got] == [400, 400, 503, 200, 200]
    assert [xml_text(r.xml(), "s:Error/s:Code") for r in got[:3]] == ["Throttling", "IDPCommunicationError",
                                                                      "ServiceUnavailable"]
    assert xml_text(got[2].xml(), "s:Error/s:Type") == "Receiver"
    with pytest.raises(ET.ParseError):
        got[3].xml()


# ======================================================== generic fault modes, every HTTP stand-in
def _req_entra(s):
    return "POST", s.token_url(), FORM, urllib.parse.urlencode(form_token_request(
        client_secret=entra.DEFAULT_CLIENT_SECRET))


def _req_imds(s):
    return "GET", s.url + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + \
        urllib.parse.quote(RESOURCE, safe=""), {"Metadata": "true"}, None


def _req_appsvc(s):
    return "GET", s.endpoint + "?api-version=2019-08-01&resource=" + urllib.parse.quote(RESOURCE, safe=""), \
        {"X-IDENTITY-HEADER": s.secret}, None


def _req_aws_imds(s):
    return "GET", s.url + aws_imds.CREDS_PATH + "tb-instance-role", {}, None


def _req_container(s):
    return "GET", s.full_uri, {"Authorization": "tb-container-auth"}, None


def _req_sts(s):
    return "POST", s.url + "/", {"Content-Type": STS_CT}, web_identity_form()


STANDINS = {
    "entra": (lambda: entra.EntraStandIn(), _req_entra),
    "azure-imds": (lambda: azure_imds.AzureImdsStandIn(), _req_imds),
    "appservice": (lambda: azure_imds.AppServiceStandIn(), _req_appsvc),
    "aws-imds": (lambda: aws_imds.AwsImdsStandIn(), _req_aws_imds),
    "aws-container": (lambda: aws_container.AwsContainerStandIn(auth_token="tb-container-auth"), _req_container),
    "aws-sts": (lambda: aws_sts.AwsStsStandIn(), _req_sts),
}
FAULTS = ["status", "delay", "close", "reset", "malformed", "oversized", "oversized-chunked", "empty", "hang"]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", sorted(STANDINS))
def test_fault_modes(name, fault):
    make, req = STANDINS[name]
    with make() as s:
        method, url, headers, body = req(s)
        ok = hreq(method, url, headers, body)
        assert ok.status == 200, ok.body
        if fault == "status":
            s.add_fault(status=503, count=2, retry_after=7)
            r1, r2 = hreq(method, url, headers, body), hreq(method, url, headers, body)
            assert (r1.status, r2.status) == (503, 503) and r1.header("Retry-After") == "7" and r1.body
        elif fault == "delay":
            s.add_fault(kind="delay", delay=0.3)
            t0 = time.monotonic()
            assert hreq(method, url, headers, body).status == 200
            assert time.monotonic() - t0 >= 0.3
        elif fault in ("close", "reset"):
            s.add_fault(kind=fault)
            with pytest.raises((httpclient.RemoteDisconnected, ConnectionResetError, httpclient.BadStatusLine)):
                hreq(method, url, headers, body)
        elif fault == "malformed":
            s.add_fault(kind="malformed")
            r = hreq(method, url, headers, body)
            assert r.status == 200
            with pytest.raises((ValueError, ET.ParseError)):
                (r.xml() if name == "aws-sts" else r.json())
        elif fault.startswith("oversized"):
            s.add_fault(kind="oversized", chunked=fault.endswith("chunked"))
            r = hreq(method, url, headers, body, timeout=20)
            assert r.status == 200 and len(r.body) == sb.OVERSIZED_DEFAULT
            if fault.endswith("chunked"):
                assert r.header("Transfer-Encoding") == "chunked"
            else:
                assert r.header("Content-Length") == str(sb.OVERSIZED_DEFAULT)
        elif fault == "empty":
            s.add_fault(kind="empty")
            r = hreq(method, url, headers, body)
            assert r.status == 200 and r.body == b""
        elif fault == "hang":
            s.add_fault(kind="hang")
            t0 = time.monotonic()
            with pytest.raises(socket.timeout):
                hreq(method, url, headers, body, timeout=0.4)
            assert time.monotonic() - t0 < 3
        # the fault is consumed: next request is normal again, and every request was recorded
        assert hreq(method, url, headers, body).status == 200
        recs = s.requests()
        assert recs[0]["method"] == method and recs[0]["fault"] is None and recs[1]["fault"] == (
            "status" if fault == "status" else fault.split("-")[0])
        assert all("headers" in r and "body" in r and "query" in r for r in recs)


def test_fault_path_filter_and_unlimited_count(aws_imds_srv):
    s = aws_imds_srv
    s.add_fault(status=500, path="/latest/api/", method="PUT", count=None)
    for _ in range(3):
        assert hreq("PUT", s.url + "/latest/api/token", {"x-aws-ec2-metadata-token-ttl-seconds": "60"}).status == 500
    assert hreq("GET", s.url + aws_imds.CREDS_PATH).status == 200
    assert len(s.faults()) == 1
    s.clear_faults()
    assert hreq("PUT", s.url + "/latest/api/token", {"x-aws-ec2-metadata-token-ttl-seconds": "60"}).status == 200


def test_http_control_endpoints(entra_srv):
    c = sb.ControlClient(entra_srv.url)
    c.fault(status=429, retry_after=1)
    c.configure(ttl=5)
    c.set_clock(offset=100)
    method, url, headers, body = _req_entra(entra_srv)
    assert hreq(method, url, headers, body).status == 429
    d = hreq(method, url, headers, body).json()
    assert d["expires_in"] == 5
    assert abs(sb.jwt_decode(d["access_token"])[1]["exp"] - (time.time() + 105)) <= 2
    recs = c.requests()
    assert [r["status"] for r in recs] == [429, 200] and recs[0].form1("grant_type") == "client_credentials"
    st = c.state()
    assert st["counter"] == 1 and st["config"]["ttl"] == 5
    c.clear_requests()
    assert c.requests() == []
    r = hreq("POST", entra_srv.url + "/__control", {"Content-Type": "application/json"}, '{"fault": {"kind": "nope"}}')
    assert r.status == 400


# ==================================================================== subprocess form (all servers)
@pytest.mark.parametrize("script,args,req", [
    ("entra.py", ["--ttl", "20"], lambda p: ("POST", "http://127.0.0.1:%d/%s/oauth2/v2.0/token" % (
        p, entra.DEFAULT_TENANT), FORM, urllib.parse.urlencode(form_token_request(
            client_secret=entra.DEFAULT_CLIENT_SECRET)))),
    ("azure_imds.py", [], lambda p: ("GET", "http://127.0.0.1:%d/metadata/identity/oauth2/token?api-version="
                                     "2018-02-01&resource=%s" % (p, urllib.parse.quote(RESOURCE, safe="")),
                                     {"Metadata": "true"}, None)),
    ("azure_imds.py", ["--kind", "appservice", "--secret", "s3"], lambda p: (
        "GET", "http://127.0.0.1:%d/msi/token?api-version=2019-08-01&resource=%s" % (
            p, urllib.parse.quote(RESOURCE, safe="")), {"X-IDENTITY-HEADER": "s3"}, None)),
    ("aws_imds.py", ["--v2-only"], lambda p: ("PUT", "http://127.0.0.1:%d/latest/api/token" % p,
                                              {"x-aws-ec2-metadata-token-ttl-seconds": "60"}, None)),
    ("aws_container.py", ["--auth-token", "a"], lambda p: ("GET", "http://127.0.0.1:%d/v2/credentials/tb-task" % p,
                                                           {"Authorization": "a"}, None)),
    ("aws_sts.py", ["--ttl", "20"], lambda p: ("POST", "http://127.0.0.1:%d/" % p, {"Content-Type": STS_CT},
                                               web_identity_form())),
], ids=["entra", "azure-imds", "appservice", "aws-imds", "aws-container", "aws-sts"])
def test_subprocess_form(script, args, req):
    from util import free_port
    port = free_port()
    proc = sb.spawn(script, "--port", port, *args)
    try:
        assert proc.port == port
        method, url, headers, body = req(port)
        c = proc.control()
        c.fault(status=503)
        assert hreq(method, url, headers, body).status == 503
        assert hreq(method, url, headers, body).status == 200
        recs = c.requests()
        assert [r["status"] for r in recs] == [503, 200] and recs[0]["method"] == method
    finally:
        rc = proc.stop()
    assert rc == 0


# ================================================================================ pgfront (the RDS login front, the Azure PostgreSQL login front)
RELAY_ROLE = "relay_target"
RELAY_PW = "Relay-Pw-4f1a9c"
MD5_ROLE = "relay_md5"
MD5_PW = "Relay-Md5-Pw-77b1"


@pytest.fixture(scope="module")
def certs(tmpdir_mod):
    import certs as certs_mod
    return certs_mod.make_certs(os.path.join(tmpdir_mod, "pgcerts"))


@pytest.fixture(scope="module")
def pg(certs):
    from pg import PgServer
    server = PgServer(certs=certs).init()
    with open(os.path.join(server.datadir, "postgresql.conf"), "a") as f:
        f.write("max_connections = 300\n")       # 200 concurrent relayed sessions + the tests' own
    server.start()
    try:
        server.create_role(RELAY_ROLE, RELAY_PW)
        server.create_role(MD5_ROLE, MD5_PW, md5=True)
        server.create_database("app", RELAY_ROLE)
        yield server
    finally:
        server.destroy()


def make_front(pg, certs, **kw):
    args = dict(upstream_port=pg.port, upstream_user=RELAY_ROLE, upstream_password=RELAY_PW,
                upstream_database="app")
    args.update(kw)
    return pgfront.PgFront(certs.server_crt, certs.server_key, **args)


def pgconnect(front, user, password, **kw):
    import psycopg
    args = dict(host="127.0.0.1", port=front.port, user=user, password=password, dbname="app", sslmode="require",
                connect_timeout=10, autocommit=True)
    args.update(kw)
    return psycopg.connect(**args)


def raw_login(front, user, password, ssl_first=True):
    """Log in with the raw frontend; returns (conn, error fields or None)."""
    import rawpg
    c = rawpg.RawConn("127.0.0.1", front.port, timeout=10)
    if ssl_first:
        c.ssl()
    try:
        c.login(user, "app", password=password)
        return c, None
    except rawpg.PgError as e:
        c.close()
        return None, e.fields


@pytest.fixture
def entra_sp():
    with entra.EntraStandIn(ttl=20) as s:
        yield s


def entra_token(s):
    return entra_post(s, form_token_request(client_secret=entra.DEFAULT_CLIENT_SECRET)).json()["access_token"]


def test_pgfront_azure_login_and_relay(pg, certs, entra_sp):
    oid = entra_sp.clients[entra.DEFAULT_CLIENT_ID]["object_id"]
    with make_front(pg, certs, roles={oid: "orders-app"}, issued_check=entra_sp.is_issued, control_port=0) as front:
        tok = entra_token(entra_sp)
        with pgconnect(front, "orders-app", tok, sslmode="verify-full", sslrootcert=certs.ca_crt) as conn:
            assert conn.execute("select current_user, 40 + 2").fetchone() == (RELAY_ROLE, 42)
            assert conn.info.parameter_status("server_version").startswith("15")
            rows = conn.execute("select g from generate_series(1, 50000) g").fetchall()
            assert len(rows) == 50000 and rows[-1] == (50000,)
            assert front.stats()["open_relays"] == 1
        st = json.loads(hreq("GET", "http://127.0.0.1:%d/stats" % front.control_port).body)
        assert st["accepted_logins"] == 1 and st["rejected_logins"] == 0
        sb.ControlClient("http://127.0.0.1:%d" % front.control_port).configure(max_age=123)
        assert front.max_age == 123


def test_pgfront_azure_rejections(pg, certs, entra_sp):
    import psycopg
    oid = entra_sp.clients[entra.DEFAULT_CLIENT_ID]["object_id"]
    with make_front(pg, certs, roles={oid: "orders-app"}) as front:
        tok = entra_token(entra_sp)
        h, p, sig = tok.split(".")
        forged = h + "." + sb.b64url(json.dumps(dict(sb.jwt_decode(tok)[1], oid="x"))) + "." + sig
        cases = {"wrong user": ("someone-else", tok), "forged": ("orders-app", forged),
                 "garbage": ("orders-app", "not-a-token")}
        for what, (user, pw) in cases.items():
            with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "%s"' % user):
                pgconnect(front, user, pw)
        _, fields = raw_login(front, "orders-app", forged)
        assert fields["C"] == "28P01" and fields["S"] == "FATAL"
        front.clock.set(offset=21)                                 # the 20-second token is now expired
        _, fields = raw_login(front, "orders-app", tok)
        assert fields["C"] == "28P01" and "expired" in front.rejections[-1]["reason"]
        front.clock.set(offset=0)
        entra_sp.configure(scope="api://other-db/.default")        # wrong audience
        r = entra_post(entra_sp, form_token_request(client_secret=entra.DEFAULT_CLIENT_SECRET,
                                                    scope="api://other-db/.default"))
        _, fields = raw_login(front, "orders-app", r.json()["access_token"])
        assert fields["C"] == "28P01" and "aud" in front.rejections[-1]["reason"]
        st = front.stats()
        assert st["rejected_logins"] == 6 and st["accepted_logins"] == 0 and st["upstream_failures"] == 0


def test_pgfront_azure_imds_and_cli_tokens(pg, certs, imds_srv, az_stub):
    with make_front(pg, certs) as front:        # default role derivation (the database user taken from an Entra token)
        d = imds_get(imds_srv, client_id=azure_imds.USER_IDENTITY["client_id"]).json()
        with pgconnect(front, "orders-mi", d["access_token"]) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        cli = json.loads(run_az(az_stub).stdout)
        with pgconnect(front, azcli.DEFAULT_UPN, cli["accessToken"]) as conn:
            assert conn.execute("select 2").fetchone() == (2,)
        sys_tok = imds_get(imds_srv).json()["access_token"]
        with pgconnect(front, "tb-vm", sys_tok) as conn:
            assert conn.execute("select 3").fetchone() == (3,)


def test_pgfront_wire_details(pg, certs, entra_sp):
    import rawpg
    with make_front(pg, certs, roles={entra_sp.clients[entra.DEFAULT_CLIENT_ID]["object_id"]: "app"}) as front:
        tok = entra_token(entra_sp)
        # plaintext StartupMessage -> FATAL 28000
        _, fields = raw_login(front, "app", tok, ssl_first=False)
        assert fields["C"] == "28000" and "no encryption" in fields["M"]
        # GSSENCRequest -> 'N', then SSL and a normal login
        c = rawpg.RawConn("127.0.0.1", front.port, timeout=10)
        assert c.request_gssenc() == "N"
        c.ssl()
        c.login("app", "app", password=tok)
        assert c.query("select 'relayed'").rows == [("relayed",)]
        c.close()
        assert front.stats()["plaintext_rejected"] == 1


def test_pgfront_cancel_is_forwarded(pg, certs, entra_sp):
    import psycopg
    with make_front(pg, certs, roles={entra_sp.clients[entra.DEFAULT_CLIENT_ID]["object_id"]: "app"}) as front:
        with pgconnect(front, "app", entra_token(entra_sp)) as conn:
            pid = conn.info.backend_pid
            err = []

            def run():
                try:
                    conn.execute("select pg_sleep(30)")
                except psycopg.Error as e:
                    err.append(e)
            t = threading.Thread(target=run)
            t.start()
            wait_until(lambda: pg.scalar("select count(*) from pg_stat_activity where pid = %s and query like "
                                         "'select pg_sleep%%' and state = 'active'", (pid,)) > 0, 10, "query start")
            conn.cancel()
            t.join(10)
            assert err and isinstance(err[0], psycopg.errors.QueryCanceled)
        assert front.stats()["cancel_requests"] == 1


def test_pgfront_upstream_md5_and_failure(pg, certs, entra_sp):
    import psycopg
    oid = entra_sp.clients[entra.DEFAULT_CLIENT_ID]["object_id"]
    with make_front(pg, certs, roles={oid: "app"}, upstream_user=MD5_ROLE, upstream_password=MD5_PW,
                    upstream_database="postgres") as front:
        with pgconnect(front, "app", entra_token(entra_sp)) as conn:
            assert conn.execute("select current_user").fetchone() == (MD5_ROLE,)
    with make_front(pg, certs, roles={oid: "app"}, upstream_password="wrong") as front:
        with pytest.raises(psycopg.OperationalError, match="password authentication failed for user \"%s\""
                           % RELAY_ROLE):
            pgconnect(front, "app", entra_token(entra_sp))
        assert front.stats()["upstream_failures"] == 1 and front.stats()["accepted_logins"] == 0


def test_pgfront_rds(pg, certs, aws_imds_srv):
    import psycopg
    host = "mydb.123456789012.us-east-1.rds.amazonaws.com"
    with make_front(pg, certs, mode="rds", endpoint_host=host, endpoint_port=5432, region="us-east-1",
                    aws_keys={sv.EXAMPLE_AKID: sv.EXAMPLE_SECRET}) as front:
        now = time.time()
        tok = sv.rds_token(host, 5432, "iam_user", "us-east-1", sv.EXAMPLE_AKID, sv.EXAMPLE_SECRET, now)
        with pgconnect(front, "iam_user", tok) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        c = imds_v2_credentials(aws_imds_srv)                      # temporary credentials from the stand-in
        tok2 = sv.rds_token(host, 5432, "iam_user", "us-east-1", c["AccessKeyId"], c["SecretAccessKey"], now,
                            c["Token"])
        assert len(tok2) > 400
        with pgconnect(front, "iam_user", tok2) as conn:
            assert conn.execute("select 2").fetchone() == (2,)
        for user, pw in (("other_user", tok), ("iam_user", tok.replace("us-east-1", "us-west-2")),
                         ("iam_user", sv.rds_token(host, 5433, "iam_user", "us-east-1", sv.EXAMPLE_AKID,
                                                   sv.EXAMPLE_SECRET, now))):
            with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "%s"' % user):
                pgconnect(front, user, pw)
        front.clock.set(offset=901)
        _, fields = raw_login(front, "iam_user", tok)
        assert fields["C"] == "28P01" and "expired" in front.rejections[-1]["reason"]


def test_pgfront_rds_frozen_clock_example_a(pg, certs):
    with make_front(pg, certs, mode="rds", endpoint_host=sv.RDS_HOST, endpoint_port=5432, region="us-east-1",
                    aws_keys={sv.EXAMPLE_AKID: sv.EXAMPLE_SECRET}, frozen_time=sv.EXAMPLE_TIME) as front:
        with pgconnect(front, "iam_user", sv.EXAMPLE_A) as conn:
            assert conn.execute("select 1").fetchone() == (1,)


def test_pgfront_dsql(pg, certs):
    import psycopg
    host = sv.DSQL_HOST
    with make_front(pg, certs, mode="dsql", endpoint_host=host, region="us-east-1",
                    aws_keys={sv.EXAMPLE_AKID: sv.EXAMPLE_SECRET}) as front:
        now = time.time()
        admin = sv.dsql_token(host, "us-east-1", sv.EXAMPLE_AKID, sv.EXAMPLE_SECRET, now, admin=True)
        reader = sv.dsql_token(host, "us-east-1", sv.EXAMPLE_AKID, sv.EXAMPLE_SECRET, now, admin=False,
                               expires=604800)
        with pgconnect(front, "admin", admin) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        with pgconnect(front, "app_reader", reader) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        for user, pw in (("admin", reader), ("app_reader", admin)):
            with pytest.raises(psycopg.OperationalError, match='PAM authentication failed for user "%s"' % user):
                pgconnect(front, user, pw)
        assert front.stats()["accepted_logins"] == 2 and front.stats()["rejected_logins"] == 2


def test_pgfront_max_age_idle(pg, certs, entra_sp):
    import rawpg
    with make_front(pg, certs, roles={entra_sp.clients[entra.DEFAULT_CLIENT_ID]["object_id"]: "app"},
                    max_age=1.0) as front:
        c, err = raw_login(front, "app", entra_token(entra_sp))
        assert err is None
        t0 = time.monotonic()
        assert c.query("select 1").rows == [("1",)]
        t, payload = c.read_message_within(10)                    # blocks until the front ends the session
        assert t == "E"
        fields = rawpg.parse_error_fields(payload)
        assert fields["C"] == "57P01" and fields["S"] == "FATAL" and "maximum connection lifetime" in fields["M"]
        assert c.wait_closed(5)
        c.close()
        assert 0.5 <= time.monotonic() - t0 < 8
        wait_until(lambda: front.stats()["open_relays"] == 0, 5, "relay bookkeeping")
        st = front.stats()
        assert st["closed_by_max_age"] == 1 and st["max_age_observed"] >= 1.0


def test_pgfront_max_age_mid_stream_keeps_framing(pg, certs, entra_sp):
    """Expiry while rows stream: the FATAL is injected at a message boundary, never inside one."""
    import rawpg
    with make_front(pg, certs, roles={entra_sp.clients[entra.DEFAULT_CLIENT_ID]["object_id"]: "app"},
                    max_age=0.6) as front:
        c, err = raw_login(front, "app", entra_token(entra_sp))
        assert err is None
        c.send(rawpg.query_message("select pg_sleep(0.005), repeat('x', 20000) from generate_series(1, 600)"))
        kinds = []
        while True:
            t, payload = c.read_message_within(20)
            kinds.append(t)
            if t == "D":
                assert len(payload) > 20000                        # a whole, well-formed DataRow
            if t == "E":
                break
            assert t != "Z", "query finished before max_age; make it longer"
        assert kinds[0] == "T" and kinds.count("D") >= 1
        assert rawpg.parse_error_fields(payload)["C"] == "57P01"
        assert c.wait_closed(5)
        c.close()
        assert front.stats()["closed_by_max_age"] == 1


def test_pgfront_200_concurrent(pg, certs, entra_sp):
    with make_front(pg, certs, roles={entra_sp.clients[entra.DEFAULT_CLIENT_ID]["object_id"]: "app"}) as front:
        tok = entra_token(entra_sp)
        with concurrent.futures.ThreadPoolExecutor(64) as ex:
            conns = list(ex.map(lambda _: pgconnect(front, "app", tok), range(200)))
        try:
            st = front.stats()
            assert st["open_relays"] == 200 and st["accepted_logins"] == 200
            with concurrent.futures.ThreadPoolExecutor(64) as ex:
                res = list(ex.map(lambda c: c.execute("select pg_backend_pid()").fetchone()[0], conns))
            assert len(set(res)) == 200
        finally:
            for c in conns:
                c.close()
        wait_until(lambda: front.stats()["open_relays"] == 0 and front.stats()["open_connections"] == 0, 10,
                   "all relays to end")
        assert all(c.closed for c in conns)


def test_pgfront_subprocess(pg, certs, entra_sp):
    oid = entra_sp.clients[entra.DEFAULT_CLIENT_ID]["object_id"]
    proc = sb.spawn("pgfront.py", "--cert", certs.server_crt, "--key", certs.server_key, "--mode", "azure",
                    "--upstream-port", pg.port, "--upstream-user", RELAY_ROLE, "--upstream-password", RELAY_PW,
                    "--upstream-database", "app", "--role-map", "%s=svc" % oid, "--max-age", "60")
    try:
        class F:
            port = proc.port
        with pgconnect(F, "svc", entra_token(entra_sp)) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        st = json.loads(hreq("GET", "http://127.0.0.1:%d/stats" % proc.info["control_port"]).body)
        assert st["accepted_logins"] == 1
    finally:
        rc = proc.stop()
    assert rc == 0
