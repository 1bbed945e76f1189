#!/usr/bin/python3
"""Stand-in for the Microsoft Entra ID v2 token endpoint (the client-credentials grant to the workload identity exchange, what the Azure SDKs were seen to do, the Entra token endpoint stand-in).

    POST /<tenant>/oauth2/v2.0/token                    client-credentials grant
    GET  /<tenant>/v2.0/.well-known/openid-configuration tenant metadata (for MSAL-based SDKs)
    GET  /<tenant>/discovery/v2.0/keys                   JWKS (empty: see "Token format")
    GET  /common/discovery/instance                      instance discovery (for MSAL-based SDKs)

Client authentication (exactly one per request):
  * client_secret in the body, or Authorization: Basic base64(urlenc(id):urlenc(secret))
  * client_assertion (jwt-bearer), certificate mode: JWS RS256 or PS256 verified with the
    registered certificate's public key; header x5t (SHA-1) or x5t#S256 must match it; aud must be
    the public token URL https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token or this
    stand-in's own token URL (configurable); iss == sub == client_id; exp in the future and at most
    1 h (+60 s) ahead; nbf (if any) not more than 5 min ahead; jti present
  * client_assertion, workload-identity mode: equals the federated token (given inline or read from
    a file on every request, surrounding whitespace ignored), or is a JWT whose iss/sub/aud match the
    configured federated credential (aud default api://AzureADTokenExchange); exp must be in the
    future. The federated JWT's signature is NOT verified (the stand-in has no issuer keys).

Token format: the access_token is a JWS signed HS256 with the shared stand-in test key
(standin_base.DEFAULT_SIGNING_KEY, header kid "tb-standin-hs256"), not RS256 like real Entra (the
gateway never verifies token signatures; pgfront does, with the same key). Payload = a v1 access token
for the database resource: aud, iss https://sts.windows.net/<tid>/, iat/nbf (backdated 300 s as Entra
does; configurable), exp = issue time + expires_in, tid, oid, sub, appid, appidacr, idp, idtyp, ver 1.0,
uti "tok-<n>" (the counter), plus per-client extra claims (upn, preferred_username, xms_mirid, ...).
"""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin_base import (DEFAULT_SIGNING_KEY, HttpStandIn, b64url,  # noqa: E402
                          base_arg_parser, json_response, jwt_decode, jwt_encode, run_main)

DEFAULT_TENANT = "0b9f7a3c-5d2e-4e1f-9a8b-7c6d5e4f3a21"
DEFAULT_CLIENT_ID = "a1b2c3d4-0000-4000-8000-00000000c11e"
DEFAULT_CLIENT_SECRET = "tb~Secret.Value_0123456789-abcdefghijkLMN"
DEFAULT_RESOURCE = "https://ossrdbms-aad.database.windows.net"
DEFAULT_SCOPE = DEFAULT_RESOURCE + "/.default"
PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
RESERVED_SCOPES = {"openid", "profile", "offline_access"}


def _guid_from(*parts):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "tb-standin:" + ":".join(parts)))


def mint_access_token(n, now, ttl, tenant, audience, claims, key=DEFAULT_SIGNING_KEY, backdate=300):
    """A v1-style Entra access token (JWS HS256 with the test key). claims override defaults."""
    now = int(now)
    payload = {
        "aud": audience,
        "iss": "https://sts.windows.net/%s/" % tenant,
        "iat": now - int(backdate),
        "nbf": now - int(backdate),
        "exp": now + int(ttl),
        "aio": b64url(hashlib.sha256(b"aio%d" % n).digest()[:24]),
        "idp": "https://sts.windows.net/%s/" % tenant,
        "rh": "0.tb-standin.%d" % n,
        "tid": tenant,
        "uti": "tok-%d" % n,
        "ver": "1.0",
    }
    payload.update(claims)
    return jwt_encode(payload, key, header={"x5t": "tb-standin", "kid": "tb-standin-hs256"})


def aad_error(status, error, code, text, req=None):
    """Entra's error JSON (the client-credentials grant)."""
    trace = str(uuid.uuid4())
    corr = (req.header("client-request-id") if req is not None else None) or str(uuid.uuid4())
    ts = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    body = {
        "error": error,
        "error_description": "AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s" % (
            code, text, trace, corr, ts),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": "https://login.microsoftonline.com/error?code=%d" % code,
    }
    return json_response(body, status)


class _Reject(Exception):
    def __init__(self, status, error, code, text):
        super().__init__(text)
        self.args4 = (status, error, code, text)


# ------------------------------------------------------------------------------ certificates
def _load_cert(pem):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    if isinstance(pem, str):
        if "-----BEGIN" not in pem and os.path.exists(pem):
            with open(pem, "rb") as f:
                pem = f.read()
        else:
            pem = pem.encode()
    cert = x509.load_pem_x509_certificate(pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    return {"cert": cert, "der": der, "public_key": cert.public_key(),
            "x5t": b64url(hashlib.sha1(der).digest()), "x5t#S256": b64url(hashlib.sha256(der).digest())}


def make_client_cert(directory, name="entra-client", days=2):
    """Self-signed RSA-2048 certificate + key for certificate-credential tests (openssl CLI).
    Returns (cert_path, key_path, combined_pem_path) — the combined file is what
    AZURE_CLIENT_CERTIFICATE_PATH expects (key + cert in one PEM)."""
    os.makedirs(directory, exist_ok=True)
    crt = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", str(days), "-subj", "/CN=" + name], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    both = os.path.join(directory, name + ".pem")
    with open(both, "wb") as out, open(key, "rb") as k, open(crt, "rb") as c:
        out.write(k.read() + c.read())
    os.chmod(key, 0o600)
    os.chmod(both, 0o600)
    return crt, key, both


def make_client_assertion(key_pem, cert_pem, client_id, audience, alg="RS256", thumbprint="auto", now=None,
                          lifetime=600, jti="auto", extra_claims=None, extra_header=None, x5c=False):
    """Build a client assertion like MSAL's JwtAssertionCreator (client certificate assertions), for tests.
    thumbprint: 'x5t', 'x5t#S256', 'both', 'none' or 'auto' (RS256 -> x5t, PS256 -> x5t#S256)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    if isinstance(key_pem, str) and os.path.exists(key_pem):
        with open(key_pem, "rb") as f:
            key_pem = f.read()
    info = _load_cert(cert_pem)
    key = serialization.load_pem_private_key(key_pem if isinstance(key_pem, bytes) else key_pem.encode(), None)
    now = int(time.time() if now is None else now)
    header = {"alg": alg, "typ": "JWT"}
    if thumbprint == "auto":
        thumbprint = "x5t" if alg == "RS256" else "x5t#S256"
    if thumbprint in ("x5t", "both"):
        header["x5t"] = info["x5t"]
    if thumbprint in ("x5t#S256", "both"):
        header["x5t#S256"] = info["x5t#S256"]
    if x5c:
        header["x5c"] = [base64.b64encode(info["der"]).decode()]
    header.update(extra_header or {})
    claims = {"aud": audience, "iss": client_id, "sub": client_id, "iat": now, "nbf": now, "exp": now + lifetime}
    if jti == "auto":
        claims["jti"] = str(uuid.uuid4())
    elif jti is not None:
        claims["jti"] = jti
    claims.update(extra_claims or {})
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    if alg == "RS256":
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "PS256":
        sig = key.sign(signing_input, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                       hashes.SHA256())
    else:
        raise ValueError(alg)
    return signing_input.decode() + "." + b64url(sig)


def make_federated_token(issuer="https://oidc.example.test/cluster", subject="system:serviceaccount:ns:sa",
                         audience=FEDERATED_AUDIENCE, lifetime=3600, now=None):
    """A Kubernetes-style service-account JWT for workload-identity tests (HS256 with the test key)."""
    now = int(time.time() if now is None else now)
    return jwt_encode({"iss": issuer, "sub": subject, "aud": [audience], "iat": now, "nbf": now,
                       "exp": now + lifetime, "kubernetes.io": {"namespace": "ns"}})


# ------------------------------------------------------------------------------ the stand-in
class EntraStandIn(HttpStandIn):
    """Constructor (all optional):
      clients       list of dicts {client_id, tenant, secret, cert (PEM text or path),
                    federated {token | token_file | issuer, subject, audience}, claims {..},
                    object_id, name, ttl}. Default: one client DEFAULT_CLIENT_ID/DEFAULT_CLIENT_SECRET.
      tenants       extra known tenant ids (clients' tenants are always known)
      scope         the accepted scope (default https://ossrdbms-aad.database.windows.net/.default);
                    the token's aud is the scope without /.default
      ttl           expires_in of issued tokens (default 3599)
      refresh_in    add refresh_in to responses (default None = omitted)
      extra_response extra JSON fields for the token response (e.g. {"expires_on": ...})
      signing_key   HS256 key for issued tokens (default standin_base.DEFAULT_SIGNING_KEY)
      public_authority  authority the assertion aud may name (default https://login.microsoftonline.com)
      assertion_audiences  explicit list of accepted assertion aud values; "{tenant}" and "{self}"
                    are substituted (default: public token URL and this stand-in's token URL)
      backdate      seconds iat/nbf lie in the past (default 300, like Entra)
    Runtime knobs (configure()/control "config"): see CONFIG_KEYS.
    """

    name = "entra"
    CONFIG_KEYS = ("scope", "ttl", "refresh_in", "extra_response", "backdate", "assertion_audiences",
                   "public_authority")

    def __init__(self, port=0, clients=None, tenants=(), scope=DEFAULT_SCOPE, ttl=3599, refresh_in=None,
                 extra_response=None, signing_key=DEFAULT_SIGNING_KEY, public_authority=PUBLIC_AUTHORITY,
                 assertion_audiences=None, backdate=300, **kw):
        super().__init__(port=port, **kw)
        self.scope = scope
        self.ttl = ttl
        self.refresh_in = refresh_in
        self.extra_response = dict(extra_response or {})
        self.signing_key = signing_key.encode() if isinstance(signing_key, str) else signing_key
        self.public_authority = public_authority.rstrip("/")
        self.assertion_audiences = assertion_audiences
        self.backdate = backdate
        self.tenants = set(tenants or ())
        self.clients = {}
        self.issued = []          # [{"n", "client_id", "tenant", "token", "exp", "method"}]
        self.seen_jti = []
        self._issue_lock = threading.Lock()
        if clients is None:
            clients = [{"client_id": DEFAULT_CLIENT_ID, "secret": DEFAULT_CLIENT_SECRET}]
        for c in clients:
            self.add_client(**c)
        if not self.tenants:
            self.tenants.add(DEFAULT_TENANT)

    def add_client(self, client_id, tenant=DEFAULT_TENANT, secret=None, cert=None, federated=None,
                   claims=None, object_id=None, name=None, ttl=None):
        c = {"client_id": client_id, "tenant": tenant, "secret": secret, "federated": federated,
             "claims": dict(claims or {}), "object_id": object_id or _guid_from("sp", tenant, client_id),
             "name": name or "app-" + client_id[:8], "ttl": ttl, "cert": None}
        if cert:
            c["cert"] = _load_cert(cert)
        self.clients[client_id] = c
        self.tenants.add(tenant)
        return c

    def token_url(self, tenant=DEFAULT_TENANT):
        return "%s/%s/oauth2/v2.0/token" % (self.url, tenant)

    def announce(self):
        return {"authority": self.url, "token_url": self.token_url()}

    def state(self):
        s = super().state()
        s["clients"] = sorted(self.clients)
        s["tenants"] = sorted(self.tenants)
        s["issued"] = [{k: v for k, v in i.items()} for i in self.issued]
        return s

    def is_issued(self, token):
        """True if token was issued by this stand-in (the 'check against the record' path)."""
        return any(i["token"] == token for i in self.issued)

    # ------------------------------------------------------------------ routing
    def handle(self, req):
        path = req["path"]
        m = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/token/?", path)
        if m:
            if req["method"] != "POST":
                return aad_error(400, "invalid_request", 900561,
                                 "The endpoint only accepts POST, OPTIONS requests. Received a %s request."
                                 % req["method"], req)
            try:
                return self._token(req, m.group(1))
            except _Reject as r:
                return aad_error(*r.args4, req=req)
        m = re.fullmatch(r"/([^/]+)/v2\.0/\.well-known/openid-configuration", path)
        if m:
            t = m.group(1)
            if t not in self.tenants and t not in ("common", "organizations"):
                return aad_error(400, "invalid_tenant", 90002, "Tenant '%s' not found." % t, req)
            return json_response({
                "token_endpoint": "%s/%s/oauth2/v2.0/token" % (self.url, t),
                "authorization_endpoint": "%s/%s/oauth2/v2.0/authorize" % (self.url, t),
                "issuer": "https://login.microsoftonline.com/%s/v2.0" % t,
                "jwks_uri": "%s/%s/discovery/v2.0/keys" % (self.url, t),
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "tenant_region_scope": "EU",
            })
        m = re.fullmatch(r"/([^/]+)/discovery/v2\.0/keys", path)
        if m:
            return json_response({"keys": []})
        if path == "/common/discovery/instance":
            host = "127.0.0.1:%d" % self.port
            return json_response({
                "tenant_discovery_endpoint": "%s/%s/v2.0/.well-known/openid-configuration" % (
                    self.url, DEFAULT_TENANT),
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}]})
        return None

    def error_response(self, status, code=None, message=None, req=None):
        if status == 429:
            return aad_error(429, code or "temporarily_unavailable", 50196,
                             message or "The server terminated an operation because it encountered a "
                             "client request loop.", req)
        if status >= 500:
            return aad_error(status, code or "server_error", 90033,
                             message or "A transient error has occurred. Please try again.", req)
        return aad_error(status, code or "invalid_request", 90014, message or "injected fault", req)

    # ------------------------------------------------------------------ the grant
    def _token(self, req, tenant):
        now = self.now()
        form = req.form
        if tenant not in self.tenants:
            raise _Reject(400, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you "
                          "have the correct tenant ID and are signing into the correct cloud." % tenant)
        ctype = (req.header("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise _Reject(400, "invalid_request", 900144, "The request body must contain the following "
                          "parameter: 'grant_type'. (Content-Type was %r)" % ctype)

        def one(name):
            v = form.get(name)
            if v and len(v) > 1:
                raise _Reject(400, "invalid_request", 90015, "Duplicate parameter '%s'." % name)
            return v[0] if v else None

        grant = one("grant_type")
        if grant is None:
            raise _Reject(400, "invalid_request", 900144,
                          "The request body must contain the following parameter: 'grant_type'.")
        if grant != "client_credentials":
            raise _Reject(400, "unsupported_grant_type", 70003,
                          "The app requested an unsupported grant type '%s'." % grant)
        scope = one("scope")
        wanted = [s for s in (scope or "").split() if s not in RESERVED_SCOPES]
        if wanted != [self.scope]:
            raise _Reject(400, "invalid_scope", 70011, "The provided request must include a 'scope' input "
                          "parameter. The provided value for the input parameter 'scope' is not valid. "
                          "The scope %s is not valid." % (scope,))
        basic = None
        auth = req.header("Authorization")
        if auth and auth.lower().startswith("basic "):
            try:
                raw = base64.b64decode(auth[6:].strip(), validate=True).decode()
                bid, bsec = raw.split(":", 1)
                basic = (urllib.parse.unquote_plus(bid), urllib.parse.unquote_plus(bsec))
            except (ValueError, UnicodeDecodeError):
                raise _Reject(401, "invalid_client", 7000215, "Invalid client secret provided "
                              "(malformed Basic authorization header).")
        client_id = one("client_id") or (basic[0] if basic else None)
        if basic and one("client_id") and basic[0] != one("client_id"):
            raise _Reject(401, "invalid_client", 700016, "client_id in the Basic header and in the body "
                          "differ.")
        if not client_id:
            raise _Reject(400, "invalid_request", 900144,
                          "The request body must contain the following parameter: 'client_id'.")
        client = self.clients.get(client_id)
        if client is None or client["tenant"] != tenant:
            raise _Reject(400, "unauthorized_client", 700016, "Application with identifier '%s' was not "
                          "found in the directory '%s'." % (client_id, tenant))
        secret = one("client_secret")
        assertion = one("client_assertion")
        methods = [m for m, present in (("client_secret", secret is not None), ("basic", basic is not None),
                                        ("client_assertion", assertion is not None)) if present]
        if not methods:
            raise _Reject(401, "invalid_client", 7000218, "The request body must contain the following "
                          "parameter: 'client_assertion' or 'client_secret'.")
        if len(methods) > 1:
            raise _Reject(400, "invalid_request", 90023, "More than one client authentication method was "
                          "presented: %s." % ", ".join(methods))
        method = methods[0]
        if method in ("client_secret", "basic"):
            presented = secret if method == "client_secret" else basic[1]
            if not client["secret"] or not hmac.compare_digest(presented.encode(), client["secret"].encode()):
                raise _Reject(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the "
                              "secret being sent in the request is the client secret value, not the client "
                              "secret ID, for a secret added to app '%s'." % client_id)
            acr = "1"
        else:
            if one("client_assertion_type") != JWT_BEARER:
                raise _Reject(400, "invalid_request", 90014, "The required field 'client_assertion_type' "
                              "is missing or invalid.")
            method = self._check_assertion(assertion, client, tenant, now)
            acr = "2"
        return self._issue(req, client, tenant, now, method, acr)

    def _assertion_audiences(self, tenant):
        auds = self.assertion_audiences or ["{public}/{tenant}/oauth2/v2.0/token", "{self}/{tenant}/oauth2/v2.0/token"]
        return [a.replace("{tenant}", tenant).replace("{self}", self.url)
                 .replace("{public}", self.public_authority) for a in auds]

    def _check_assertion(self, assertion, client, tenant, now):
        try:
            header, payload, signing_input, sig = jwt_decode(assertion)
        except ValueError:
            header = None
        uses_cert = header is not None and ("x5t" in header or "x5t#S256" in header or "x5c" in header)
        if client["cert"] and (uses_cert or not client["federated"]):
            if header is None:
                raise _Reject(401, "invalid_client", 700027, "Client assertion failed signature "
                              "validation (not a JWS).")
            self._check_cert_assertion(header, payload, signing_input, sig, client, tenant, now)
            return "certificate"
        if client["federated"]:
            self._check_federated(assertion, client, now)
            return "federated"
        raise _Reject(400, "invalid_request", 700211, "No matching federated identity record found for "
                      "presented assertion issuer (client has no certificate or federated credential).")

    def _check_cert_assertion(self, header, claims, signing_input, sig, client, tenant, now):
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        cert = client["cert"]
        bad = lambda text: _Reject(401, "invalid_client", 700027, text)  # noqa: E731
        alg = header.get("alg")
        if alg not in ("RS256", "PS256"):
            raise bad("Client assertion contains an unsupported algorithm %r." % alg)
        if "x5t#S256" in header:
            if header["x5t#S256"] != cert["x5t#S256"]:
                raise bad("The certificate with identifier used to sign the client assertion (x5t#S256) is "
                          "not registered on application.")
        elif "x5t" in header:
            if header["x5t"] != cert["x5t"]:
                raise bad("The certificate with identifier used to sign the client assertion (x5t) is not "
                          "registered on application.")
        else:
            raise bad("Client assertion has no x5t or x5t#S256 header.")
        if "x5c" in header:
            try:
                leaf = base64.b64decode(header["x5c"][0])
            except (ValueError, TypeError, IndexError):
                raise bad("Client assertion has a malformed x5c header.")
            if leaf != cert["der"]:
                raise bad("The x5c certificate is not the registered certificate.")
        try:
            if alg == "RS256":
                cert["public_key"].verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
            else:
                cert["public_key"].verify(sig, signing_input, padding.PSS(
                    mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        except InvalidSignature:
            raise bad("Client assertion failed signature validation.")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        accepted = self._assertion_audiences(tenant)
        if not any(a in accepted for a in auds):
            raise _Reject(401, "invalid_client", 700027, "The audience claim %r in the client assertion is "
                          "not one of %s." % (aud, accepted))
        if claims.get("iss") != client["client_id"] or claims.get("sub") != client["client_id"]:
            raise _Reject(401, "invalid_client", 700021, "Client assertion application identifier doesn't "
                          "match 'client_id' parameter (iss=%r sub=%r)." % (claims.get("iss"), claims.get("sub")))
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= now:
            raise _Reject(401, "invalid_client", 700024, "Client assertion is not within its valid time range "
                          "(exp=%r, now=%d)." % (exp, now))
        if exp > now + 3600 + 60:
            raise _Reject(401, "invalid_client", 700024, "Client assertion exp is more than 1 h in the "
                          "future (exp=%r, now=%d)." % (exp, now))
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, (int, float)) or nbf > now + 300):
            raise _Reject(401, "invalid_client", 700024, "Client assertion is not yet valid (nbf=%r)." % nbf)
        if not claims.get("jti"):
            raise _Reject(401, "invalid_client", 700027, "Client assertion has no jti claim.")
        self.seen_jti.append(claims["jti"])

    def _check_federated(self, assertion, client, now):
        fed = client["federated"]
        expected = fed.get("token")
        if fed.get("token_file"):
            try:
                with open(fed["token_file"]) as f:
                    expected = f.read()
            except OSError:
                expected = None
        try:
            _, claims, _, _ = jwt_decode(assertion)
        except ValueError:
            claims = None
        assertion_s = assertion.strip()
        if expected is not None and hmac.compare_digest(assertion_s.encode(), expected.strip().encode()):
            if claims is not None and isinstance(claims.get("exp"), (int, float)) and claims["exp"] <= now:
                raise _Reject(400, "invalid_client", 700024, "Client assertion is not within its valid time "
                              "range (federated token expired).")
            return
        if fed.get("issuer") and claims is not None:
            aud = claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if claims.get("iss") != fed["issuer"]:
                raise _Reject(400, "invalid_request", 700211, "No matching federated identity record found "
                              "for presented assertion issuer '%s'." % claims.get("iss"))
            if claims.get("sub") != fed.get("subject") or fed.get("audience", FEDERATED_AUDIENCE) not in auds:
                raise _Reject(400, "invalid_request", 70021, "No matching federated identity record found for "
                              "presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion "
                              "Audience: '%s'." % (claims.get("iss"), claims.get("sub"), aud))
            exp = claims.get("exp")
            if not isinstance(exp, (int, float)) or exp <= now:
                raise _Reject(400, "invalid_client", 700024, "Client assertion is not within its valid time "
                              "range.")
            return
        raise _Reject(400, "invalid_request", 700211, "No matching federated identity record found for "
                      "presented assertion issuer '%s'." % ((claims or {}).get("iss")))

    def _issue(self, req, client, tenant, now, method, acr):
        n = self.counter.next()
        ttl = int(client["ttl"] if client["ttl"] is not None else self.ttl)
        audience = self.scope[:-len("/.default")] if self.scope.endswith("/.default") else self.scope
        claims = {"appid": client["client_id"], "appidacr": acr, "idtyp": "app", "oid": client["object_id"],
                  "sub": client["object_id"], "app_displayname": client["name"]}
        claims.update(client["claims"])
        token = mint_access_token(n, now, ttl, tenant, audience, claims, self.signing_key, self.backdate)
        with self._issue_lock:
            self.issued.append({"n": n, "client_id": client["client_id"], "tenant": tenant, "token": token,
                                "exp": int(now) + ttl, "method": method})
        body = {"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": token}
        if self.refresh_in is not None:
            body["refresh_in"] = int(self.refresh_in)
        body.update(self.extra_response)
        headers = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
        if (req.header("return-client-request-id") or "").lower() == "true" and req.header("client-request-id"):
            headers["client-request-id"] = req.header("client-request-id")
        return json_response(body, 200, headers)


def main(argv=None):
    p = base_arg_parser("Microsoft Entra token endpoint stand-in (the Entra token endpoint stand-in)")
    p.add_argument("--tenant", default=DEFAULT_TENANT)
    p.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    p.add_argument("--client-secret", default=None, help="default: %s unless a cert/federated mode is "
                   "given" % DEFAULT_CLIENT_SECRET)
    p.add_argument("--client-cert", default=None, help="PEM certificate registered for the client")
    p.add_argument("--federated-token-file", default=None)
    p.add_argument("--federated-token", default=None)
    p.add_argument("--federated-issuer", default=None)
    p.add_argument("--federated-subject", default=None)
    p.add_argument("--federated-audience", default=FEDERATED_AUDIENCE)
    p.add_argument("--claim", action="append", default=[], metavar="NAME=VALUE", help="extra token claim")
    p.add_argument("--scope", default=DEFAULT_SCOPE)
    p.add_argument("--ttl", type=int, default=3599)
    p.add_argument("--refresh-in", type=int, default=None)
    p.add_argument("--signing-key", default=None)
    p.add_argument("--backdate", type=int, default=300)

    def make(args, cfg):
        kw = dict(cfg)
        if "clients" not in kw:
            c = {"client_id": args.client_id, "tenant": args.tenant,
                 "claims": dict(x.split("=", 1) for x in args.claim)}
            fed = None
            if args.federated_token_file or args.federated_token or args.federated_issuer:
                fed = {"token": args.federated_token, "token_file": args.federated_token_file,
                       "issuer": args.federated_issuer, "subject": args.federated_subject,
                       "audience": args.federated_audience}
            c["federated"] = fed
            c["cert"] = args.client_cert
            c["secret"] = args.client_secret or (None if (fed or args.client_cert) else DEFAULT_CLIENT_SECRET)
            kw["clients"] = [c]
        kw.setdefault("scope", args.scope)
        kw.setdefault("ttl", args.ttl)
        kw.setdefault("refresh_in", args.refresh_in)
        kw.setdefault("backdate", args.backdate)
        if args.signing_key:
            kw["signing_key"] = args.signing_key
        return EntraStandIn(port=args.port, clock_offset=args.clock_offset, frozen_time=args.frozen_time, **kw)
    return run_main(make, p, argv)


if __name__ == "__main__":
    sys.exit(main())
