#!/usr/bin/python3
"""Stand-ins for Google's identity endpoints (spec/cloud-tokens.md §3.3-§3.6, §5.10-§5.12) and a
PostgreSQL-side verifier for Cloud SQL / AlloyDB manual IAM login (§3.7).

    GoogleTokenStandIn    POST /token                        JWT-bearer and refresh-token grants (§5.10)
    GceMetadataStandIn    GET  /                             ping (Metadata-Flavor: Google)
                          GET  /computeMetadata/v1/...        project-id, service account, token (§5.11)
    IamCredentialsStandIn POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken (§5.12)
    GoogleIamVerifier     pgfront verifier: the password is a token this family issued, unexpired,
                          with the login scope (or cloud-platform), for the user of §3.6

All token-issuing stand-ins share one GoogleIssuer (pass issuer=...), which records every token with
its principal, scopes and expiry: IAM Credentials checks the source token there, and the database
verifier checks the password there. Tokens look like 'ya29.c.tok-<n>.<random>' (standin_base.
token_counter finds n).

Helpers: make_service_account_file(path, email, token_uri) writes a key file (RSA-2048, PKCS#8) and
returns its dict; make_authorized_user_file(path, ...) writes a gcloud user file; db_user(email)
is the §3.6 name.
"""
import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin_base import (HttpStandIn, Clock, base_arg_parser, b64url_decode, iso_utc,  # noqa: E402
                          json_response, run_main, text_response)

JWT_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE_PREFIX = "https://www.googleapis.com/auth/"
CLOUD_PLATFORM = SCOPE_PREFIX + "cloud-platform"
SQL_LOGIN = SCOPE_PREFIX + "sqlservice.login"
SQL_ADMIN = SCOPE_PREFIX + "sqlservice.admin"
ALLOYDB_LOGIN = SCOPE_PREFIX + "alloydb.login"
IAM_SCOPE = SCOPE_PREFIX + "iam"
DEFAULT_SCOPES = (CLOUD_PLATFORM, SQL_LOGIN, SQL_ADMIN, ALLOYDB_LOGIN, IAM_SCOPE, SCOPE_PREFIX + "userinfo.email")
DEFAULT_SA = "tb-sa@tb-project.iam.gserviceaccount.com"
DEFAULT_GCE_SA = "123456-compute@developer.gserviceaccount.com"
DEFAULT_USER = {"client_id": "tb-client.apps.googleusercontent.com", "client_secret": "tb-client-secret",
                "refresh_token": "1//tb-refresh-token", "account": "alice@example.com"}


def db_user(email):
    """§3.6: a service account's e-mail without .gserviceaccount.com; other names unchanged."""
    suffix = ".gserviceaccount.com"
    return email[:-len(suffix)] if email.endswith(suffix) else email


class GoogleIssuer:
    """The record of every token issued by the Google stand-ins sharing it."""

    def __init__(self, clock=None):
        self.clock = clock or Clock()
        self._lock = threading.Lock()
        self._n = 0
        self.tokens = {}          # token -> {"n", "principal", "scopes", "exp", "via"}

    def issue(self, principal, scopes, ttl, via):
        with self._lock:
            self._n += 1
            n = self._n
            tok = "ya29.c.tok-%d.%s" % (n, secrets.token_urlsafe(24))
            exp = self.clock.now() + ttl
            self.tokens[tok] = {"n": n, "principal": principal, "scopes": list(scopes), "exp": exp, "via": via}
        return tok, exp

    def lookup(self, token):
        with self._lock:
            return self.tokens.get(token)

    def issued(self, via=None):
        with self._lock:
            return [dict(v, token=k) for k, v in self.tokens.items() if via is None or v["via"] == via]


def google_error(status, error, description):
    return json_response({"error": error, "error_description": description}, status)


def api_error(status, message, state):
    """The error shape of Google's JSON APIs (IAM Credentials, SQL Admin)."""
    return json_response({"error": {"code": status, "message": message, "status": state}}, status)


def quota_check(req, quota_project):
    """An Admin API that bills quota_project (when set) requires it in x-goog-user-project, as
    Google's APIs refuse a caller that names no project it may use; None when the call may go on."""
    if quota_project is None or req.header("x-goog-user-project") == quota_project:
        return None
    return api_error(403, "Caller does not have required permission to use project %s; the request must "
                     "name it in x-goog-user-project." % quota_project, "PERMISSION_DENIED")


# --------------------------------------------------------------------------- key files
def make_service_account_file(path, email=DEFAULT_SA, token_uri=JWT_AUDIENCE, project="tb-project",
                              key_id="tb-key-1"):
    """Writes a service-account key file with a fresh RSA-2048 key; returns its dict."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    d = {"type": "service_account", "project_id": project, "private_key_id": key_id, "private_key": pem,
         "client_email": email, "client_id": "1234567890", "token_uri": token_uri,
         "auth_uri": "https://accounts.google.com/o/oauth2/auth", "universe_domain": "googleapis.com"}
    write_json(path, d)
    return d


def make_authorized_user_file(path, user=None):
    d = dict(DEFAULT_USER if user is None else user)
    d["type"] = "authorized_user"
    write_json(path, d)
    return d


def write_json(path, d):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(d, f)


# --------------------------------------------------------------------------- token endpoint
class GoogleTokenStandIn(HttpStandIn):
    """§5.10. Constructor (all optional):
      service_accounts  {email: key-file dict or public key PEM}; JWT signatures are verified with it
      users             list of authorized_user dicts (client_id, client_secret, refresh_token, account)
      allowed_scopes    scopes a grant may ask for (default: cloud-platform, sqlservice.*, alloydb.login, iam)
      ttl               expires_in of issued tokens (default 3599)
      rotate_refresh    hand out a new refresh_token with every refresh grant (default False)
      issuer            the shared GoogleIssuer
    """

    name = "google-token"
    CONFIG_KEYS = ("ttl", "rotate_refresh", "allowed_scopes", "expires_in_as_string")

    def __init__(self, port=0, service_accounts=None, users=None, allowed_scopes=DEFAULT_SCOPES, ttl=3599,
                 rotate_refresh=False, issuer=None, expires_in_as_string=False, **kw):
        super().__init__(port=port, **kw)
        self.issuer = issuer or GoogleIssuer(self.clock)
        self.keys = {}
        for email, key in (service_accounts or {}).items():
            self.add_service_account(email, key)
        self.users = [dict(u) for u in (users if users is not None else [DEFAULT_USER])]
        self.allowed_scopes = list(allowed_scopes)
        self.ttl = ttl
        self.rotate_refresh = rotate_refresh
        self.expires_in_as_string = expires_in_as_string
        self.assertions = []      # decoded (header, claims) of accepted assertions

    def add_service_account(self, email, key):
        from cryptography.hazmat.primitives import serialization
        pem = key["private_key"] if isinstance(key, dict) else key
        if "PRIVATE KEY" in pem:
            pub = serialization.load_pem_private_key(pem.encode(), None).public_key()
        else:
            pub = serialization.load_pem_public_key(pem.encode())
        self.keys[email] = pub

    @property
    def token_url(self):
        return self.url + "/token"

    def announce(self):
        return {"token_uri": self.token_url}

    def error_response(self, status, code=None, message=None, req=None):
        if status >= 500 or status == 429:
            return google_error(status, code or "internal_failure", message or "injected fault")
        return google_error(status, code or "invalid_request", message or "injected fault")

    def handle(self, req):
        if req["path"] != "/token":
            return None
        if req["method"] != "POST":
            return google_error(405, "invalid_request", "POST only")
        form = {k: v[0] for k, v in req.form.items()}
        grant = form.get("grant_type")
        if grant == JWT_BEARER:
            return self._jwt_grant(form)
        if grant == "refresh_token":
            return self._refresh_grant(form)
        return google_error(400, "unsupported_grant_type", "Invalid grant_type: %s" % grant)

    def _scopes_ok(self, scopes):
        return bool(scopes) and all(s in self.allowed_scopes for s in scopes)

    def _answer(self, principal, scopes, via, extra=None):
        tok, _ = self.issuer.issue(principal, scopes, self.ttl, via)
        body = {"access_token": tok, "expires_in": str(self.ttl) if self.expires_in_as_string else self.ttl,
                "token_type": "Bearer"}
        body.update(extra or {})
        return json_response(body)

    def _jwt_grant(self, form):
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        bad = google_error(400, "invalid_grant", "Invalid JWT Signature.")
        parts = (form.get("assertion") or "").split(".")
        if len(parts) != 3:
            return bad
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except ValueError:
            return bad
        key = self.keys.get(claims.get("iss"))
        if header.get("alg") != "RS256" or key is None:
            return bad
        try:
            key.verify(sig, (parts[0] + "." + parts[1]).encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return bad
        now = self.now()
        iat, exp = claims.get("iat"), claims.get("exp")
        if claims.get("aud") != JWT_AUDIENCE:
            return google_error(400, "invalid_grant", "Invalid JWT: aud must be %s" % JWT_AUDIENCE)
        if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + 60 or exp - iat > 3600 or exp <= now:
            return google_error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) "
                                "and in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
        scopes = (claims.get("scope") or "").split()
        if not self._scopes_ok(scopes):
            return google_error(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        self.assertions.append((header, claims))
        return self._answer(claims["iss"], scopes, "jwt-bearer")

    def _refresh_grant(self, form):
        user = next((u for u in self.users if u["client_id"] == form.get("client_id")), None)
        if user is None or user["client_secret"] != form.get("client_secret"):
            return google_error(401, "invalid_client", "The OAuth client was not found.")
        if user["refresh_token"] != form.get("refresh_token"):
            return google_error(400, "invalid_grant", "Token has been expired or revoked.")
        scopes = (form.get("scope") or CLOUD_PLATFORM).split()
        if not self._scopes_ok(scopes):
            return google_error(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        extra = {"scope": " ".join(scopes)}
        if self.rotate_refresh:
            user["refresh_token"] = "1//tb-rotated-%s" % secrets.token_urlsafe(12)
            extra["refresh_token"] = user["refresh_token"]
        return self._answer(user["account"], scopes, "refresh-token", extra)


# --------------------------------------------------------------------------- metadata server
class GceMetadataStandIn(HttpStandIn):
    """§5.11. email/project/scopes of the VM's service account; ttl of its tokens. One cached token
    per scope set; expires_in is its remaining lifetime, as on a real VM."""

    name = "gce-metadata"
    CONFIG_KEYS = ("ttl", "email", "project")

    def __init__(self, port=0, email=DEFAULT_GCE_SA, project="tb-project", scopes=(CLOUD_PLATFORM,), ttl=3599,
                 issuer=None, **kw):
        super().__init__(port=port, **kw)
        self.issuer = issuer or GoogleIssuer(self.clock)
        self.email, self.project, self.scopes, self.ttl = email, project, list(scopes), ttl
        self._cache = {}
        self.scope_requests = []

    @property
    def hostport(self):
        """What GCE_METADATA_HOST / GCE_METADATA_IP are set to."""
        return "127.0.0.1:%d" % self.port

    def announce(self):
        return {"host": self.hostport}

    def _flavored(self, resp):
        resp.headers.append(("Metadata-Flavor", "Google"))
        return resp

    def error_response(self, status, code=None, message=None, req=None):
        return self._flavored(text_response(message or "injected fault", status))

    def handle(self, req):
        if req.header("Metadata-Flavor") != "Google":
            return self._flavored(text_response("Missing required header: Metadata-Flavor", 403))
        path = req["path"]
        base = "/computeMetadata/v1/"
        if path == "/":
            return self._flavored(text_response("computeMetadata/\n"))
        if path == base + "instance" or path == base + "instance/":
            return self._flavored(text_response("service-accounts/\n"))
        if path == base + "project/project-id":
            return self._flavored(text_response(self.project))
        sa = base + "instance/service-accounts/default/"
        if path == sa and req.q("recursive") == "true":
            return self._flavored(json_response({"aliases": ["default"], "email": self.email, "scopes": self.scopes}))
        if path == sa + "email":
            return self._flavored(text_response(self.email))
        if path == sa + "token":
            return self._flavored(self._token(req))
        return self._flavored(text_response("not found", 404))

    def _token(self, req):
        raw = req.q("scopes")
        scopes = tuple(s for s in urllib.parse.unquote(raw).split(",") if s) if raw else tuple(self.scopes)
        self.scope_requests.append(list(scopes))
        now = self.now()
        cached = self._cache.get(scopes)
        if cached is None or cached[1] - now < 60:
            cached = self.issuer.issue(self.email, scopes, self.ttl, "metadata")
            self._cache[scopes] = cached
        return json_response({"access_token": cached[0], "expires_in": int(cached[1] - now), "token_type": "Bearer"})


# --------------------------------------------------------------------------- IAM Credentials
class IamCredentialsStandIn(HttpStandIn):
    """§5.12. grants: {target e-mail: list of principals allowed to impersonate it, or None = any
    principal holding a token from the issuer}."""

    name = "iam-credentials"
    CONFIG_KEYS = ("grants",)
    PATH = re.compile(r"/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken")

    def __init__(self, port=0, grants=None, issuer=None, **kw):
        super().__init__(port=port, **kw)
        self.issuer = issuer or GoogleIssuer(self.clock)
        self.grants = dict(grants or {})

    def error_response(self, status, code=None, message=None, req=None):
        return api_error(status, message or "injected fault", code or ("UNAVAILABLE" if status >= 500 else "FAILED_PRECONDITION"))

    def handle(self, req):
        m = self.PATH.fullmatch(req["path"])
        if not m or req["method"] != "POST":
            return None
        target = urllib.parse.unquote(m.group(1))
        auth = req.header("Authorization") or ""
        src = self.issuer.lookup(auth[7:]) if auth.startswith("Bearer ") else None
        if src is None or src["exp"] <= self.now():
            return api_error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        if not ({CLOUD_PLATFORM, IAM_SCOPE} & set(src["scopes"])):
            return api_error(403, "Request had insufficient authentication scopes.", "PERMISSION_DENIED")
        try:
            body = req.json()
        except ValueError:
            return api_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        life = body.get("lifetime", "3600s")
        if not isinstance(life, str) or not re.fullmatch(r"\d+s", life) or int(life[:-1]) > 3600:
            return api_error(400, "Invalid lifetime %r" % (life,), "INVALID_ARGUMENT")
        allowed = self.grants.get(target, ())
        if target not in self.grants or (allowed is not None and src["principal"] not in allowed):
            return api_error(403, "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may "
                             "not exist).", "PERMISSION_DENIED")
        scopes = body.get("scope") or []
        if not scopes:
            return api_error(400, "Scope required.", "INVALID_ARGUMENT")
        tok, exp = self.issuer.issue(target, scopes, int(life[:-1]), "impersonation")
        return json_response({"accessToken": tok, "expireTime": iso_utc(int(exp))})


# --------------------------------------------------------------------------- database side
class GoogleIamVerifier:
    """pgfront verifier for manual IAM login (§3.7): the cleartext password must be an unexpired token
    from the issuer carrying login_scope (or cloud-platform), and the StartupMessage user must be the
    §3.6 name of the token's principal."""

    failure_message = 'Cloud SQL IAM user authentication failed for user "%s"'

    def __init__(self, issuer, login_scope=SQL_LOGIN):
        self.issuer = issuer
        self.login_scope = login_scope
        self.accepted = []

    def verify(self, user, database, password, now):
        from pgfront import AuthFailure
        t = self.issuer.lookup(password)
        if t is None:
            raise AuthFailure("not a token issued by the stand-in")
        if t["exp"] <= now:
            raise AuthFailure("token expired")
        if not ({self.login_scope, CLOUD_PLATFORM} & set(t["scopes"])):
            raise AuthFailure("token lacks the %s scope (has %s)" % (self.login_scope, t["scopes"]))
        if user != db_user(t["principal"]):
            raise AuthFailure("user %r is not the IAM user %r of the token" % (user, db_user(t["principal"])))
        self.accepted.append({"user": user, "n": t["n"], "time": time.time()})
        return t


def main(argv=None):
    p = base_arg_parser("Google token endpoint / metadata server / IAM Credentials stand-in (§5.10-§5.12)")
    p.add_argument("--kind", choices=("token", "metadata", "iam"), default="token")
    p.add_argument("--ttl", type=int, default=3599)

    def make(args, cfg):
        kw = dict(cfg)
        kw.setdefault("ttl", args.ttl) if args.kind != "iam" else None
        cls = {"token": GoogleTokenStandIn, "metadata": GceMetadataStandIn, "iam": IamCredentialsStandIn}[args.kind]
        return cls(port=args.port, clock_offset=args.clock_offset, frozen_time=args.frozen_time, **kw)
    return run_main(make, p, argv)


if __name__ == "__main__":
    sys.exit(main())
