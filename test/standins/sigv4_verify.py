#!/usr/bin/python3
"""SigV4 for the stand-ins (the SigV4 host text rule, SigV4 query presigning to the published SigV4 test vectors, the AWS STS stand-in, the RDS login front). Standard library only.

* presign(), rds_token(), dsql_token()      reference query-string presigner, botocore parameter order
* verify_presigned()                        RDS / DSQL IAM-token verifier as the servers would run it
* sign_headers(), verify_header_signature() header-signed requests (STS AssumeRole)
* KeyStore, mint_credentials()              credentials the AWS stand-ins hand out, and their lookup:
    minted secrets and session tokens are derived from the AccessKeyId with an HMAC master key, so
    every stand-in and pgfront sharing the master key can check them without talking to each other;
    the session token carries its expiry ("tok-<n>/<expires epoch>/<mac>").
* self_check()                              worked examples A–D (the RDS IAM token/the Aurora DSQL token) and the published SigV4 test vectors vectors at frozen time
    2015-08-30T12:36:00Z; `python3 sigv4_verify.py` runs it and exits non-zero on failure.
"""
import base64
import calendar
import hashlib
import hmac
import re
import sys
import time
import urllib.parse

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ALGORITHM = "AWS4-HMAC-SHA256"
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
DEFAULT_AWS_MASTER = b"tokenbouncer-standin-aws-master-key-v1"

# The AWS documentation example key pair (the RDS IAM token, the published SigV4 test vectors).
EXAMPLE_AKID = "AKIDEXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
EXAMPLE_TIME = "2015-08-30T12:36:00Z"


class SigV4Error(Exception):
    """Verification failed. .code is an AWS-style error code, str(e) the reason."""

    def __init__(self, reason, code="SignatureDoesNotMatch"):
        super().__init__(reason)
        self.code = code


# ------------------------------------------------------------------------------------ primitives
def uri_encode(s, keep_slash=False):
    """SigV4 query presigning step 4: bytes in A-Z a-z 0-9 - _ . ~ unchanged, every other UTF-8 byte %XX uppercase."""
    if isinstance(s, str):
        s = s.encode("utf-8")
    out = []
    for b in s:
        if b in UNRESERVED or (keep_slash and b == 0x2F):
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8") if isinstance(msg, str) else msg, hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def amz_date(t):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def parse_amz_date(s):
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z", s or "")
    if not m:
        raise SigV4Error("X-Amz-Date %r is not YYYYMMDDTHHMMSSZ" % s, "IncompleteSignature")
    return calendar.timegm(tuple(int(x) for x in m.groups()) + (0, 0, 0))


def _to_epoch(t):
    if isinstance(t, (int, float)):
        return float(t)
    from standin_base import parse_time
    return parse_time(t)


def canonical_query(pairs):
    """SigV4 query presigning step 5 from decoded (key, value) pairs."""
    enc = sorted((uri_encode(k), uri_encode(v)) for k, v in pairs)
    return "&".join("%s=%s" % kv for kv in enc)


def string_to_sign(amzdate, scope, canonical_request):
    return "\n".join([ALGORITHM, amzdate, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])


# ---------------------------------------------------------------------------------- presigning
def presign(akid, secret, region, service, host, params, expires, t, session_token=None, path="/",
            explain=None):
    """Query-string presign (SigV4 query presigning). params: ordered [(key, value)] operation parameters.
    Returns the token text 'host/?query&X-Amz-Signature=sig' (path '/' only; other paths give
    'host<path>?...'). explain: optional dict filled with canonical_request, string_to_sign, signature."""
    t = _to_epoch(t)
    ad = amz_date(t)
    scope = "%s/%s/%s/aws4_request" % (ad[:8], region, service)
    auth = [("X-Amz-Algorithm", ALGORITHM), ("X-Amz-Credential", "%s/%s" % (akid, scope)),
            ("X-Amz-Date", ad), ("X-Amz-Expires", str(int(expires))), ("X-Amz-SignedHeaders", "host")]
    if session_token:
        auth.append(("X-Amz-Security-Token", session_token))
    allp = list(params) + auth
    creq = "\n".join(["GET", uri_encode(path, keep_slash=True), canonical_query(allp),
                      "host:" + host.lower(), "", "host", EMPTY_SHA256])
    sts = string_to_sign(ad, scope, creq)
    sig = hmac.new(signing_key(secret, ad[:8], region, service), sts.encode(), hashlib.sha256).hexdigest()
    if explain is not None:
        explain.update(canonical_request=creq, string_to_sign=sts, signature=sig,
                       creq_hash=hashlib.sha256(creq.encode()).hexdigest())
    query = "&".join("%s=%s" % (uri_encode(k), uri_encode(v)) for k, v in allp)
    return "%s%s?%s&X-Amz-Signature=%s" % (host, path, query, sig)


def rds_token(host, port, user, region, akid, secret, t, session_token=None, expires=900):
    """generate_db_auth_token (the RDS IAM token): host lower-cased, port always present."""
    return presign(akid, secret, region, "rds-db", "%s:%d" % (host.lower(), int(port)),
                   [("Action", "connect"), ("DBUser", user)], expires, t, session_token)


def dsql_token(host, region, akid, secret, t, admin=True, session_token=None, expires=900):
    """generate_db_connect[_admin]_auth_token (the Aurora DSQL token): host without port, no DBUser."""
    return presign(akid, secret, region, "dsql", host,
                   [("Action", "DbConnectAdmin" if admin else "DbConnect")], expires, t, session_token)


# --------------------------------------------------------------------------------- credentials
class Key:
    def __init__(self, akid, secret, session_token=None, expires_at=None):
        self.akid, self.secret, self.session_token, self.expires_at = akid, secret, session_token, expires_at


def _derive_secret(master, akid):
    return base64.b64encode(hmac.new(master, b"secret:" + akid.encode(), hashlib.sha256).digest()).decode()[:40]


def _token_mac(master, akid, n, exp):
    raw = hmac.new(master, ("token:%s|%d|%d" % (akid, n, exp)).encode(), hashlib.sha256).digest()
    return base64.b64encode(raw + raw[:9]).decode()   # 56 chars with '+', '/' possible


def mint_credentials(source, n, expires_at, master=DEFAULT_AWS_MASTER):
    """Temporary credentials #n for a stand-in (source: 4 chars, e.g. 'IMDS', 'ECSC', 'STSA').
    AccessKeyId 'ASIA' + source + 12-digit n; SecretAccessKey and SessionToken derived with master."""
    if isinstance(master, str):
        master = master.encode()
    source = (source.upper() + "XXXX")[:4]
    akid = "ASIA%s%012d" % (source, n)
    exp = int(expires_at)
    token = "tok-%d/%d/%s" % (n, exp, _token_mac(master, akid, n, exp))
    return {"AccessKeyId": akid, "SecretAccessKey": _derive_secret(master, akid), "Token": token,
            "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)), "expires_at": exp}


class KeyStore:
    """Resolves an AccessKeyId (+ presented session token) to its secret, like STS/RDS do.
    static: {akid: secret | (secret, session_token) | (secret, session_token, expires_at)}.
    Minted keys (mint_credentials) are recognised via the master key when derive=True."""

    def __init__(self, static=None, master=DEFAULT_AWS_MASTER, derive=True):
        self.master = master.encode() if isinstance(master, str) else master
        self.derive = derive
        self.static = {}
        for akid, v in (static or {}).items():
            if isinstance(v, str):
                v = (v,)
            self.add(akid, *v)

    def add(self, akid, secret, session_token=None, expires_at=None):
        self.static[akid] = Key(akid, secret, session_token, expires_at)

    def resolve(self, akid, session_token, now):
        """Return the Key, or raise SigV4Error (InvalidClientTokenId / ExpiredToken)."""
        k = self.static.get(akid)
        if k is not None:
            if k.session_token is not None and not hmac.compare_digest(
                    (session_token or "").encode(), k.session_token.encode()):
                raise SigV4Error("The security token included in the request is invalid.", "InvalidClientTokenId")
            if k.session_token is None and session_token:
                raise SigV4Error("A security token was presented for long-term key %s." % akid,
                                 "InvalidClientTokenId")
            if k.expires_at is not None and now > k.expires_at:
                raise SigV4Error("The security token included in the request is expired", "ExpiredToken")
            return k
        m = re.fullmatch(r"ASIA([A-Z0-9]{4})(\d{12})", akid or "")
        if not (self.derive and m):
            raise SigV4Error("The security token included in the request is invalid (unknown access key %r)."
                             % akid, "InvalidClientTokenId")
        n = int(m.group(2))
        tm = re.fullmatch(r"tok-(\d+)/(\d+)/(.+)", session_token or "")
        if not tm or int(tm.group(1)) != n or not hmac.compare_digest(
                tm.group(3).encode(), _token_mac(self.master, akid, n, int(tm.group(2))).encode()):
            raise SigV4Error("The security token included in the request is invalid.", "InvalidClientTokenId")
        exp = int(tm.group(2))
        if now > exp:
            raise SigV4Error("The security token included in the request is expired", "ExpiredToken")
        return Key(akid, _derive_secret(self.master, akid), session_token, exp)


# ------------------------------------------------------------------------- presigned verifying
def parse_presigned(token):
    """Split 'host[:port]/?query' into (host_text, [(key, value)] decoded). Servers decode '+' as a
    space (the SigV4 host text rule), so an unencoded '+' changes the value and breaks the signature, as in reality."""
    if isinstance(token, bytes):
        token = token.decode("utf-8")
    if "://" in token.split("/?", 1)[0]:
        raise SigV4Error("token must not contain a URL scheme", "IncompleteSignature")
    if "/?" not in token:
        raise SigV4Error("token is not of the form host/?query", "IncompleteSignature")
    host, query = token.split("/?", 1)
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        k, sep, v = part.partition("=")
        pairs.append((urllib.parse.unquote_plus(k), urllib.parse.unquote_plus(v)))
    return host, pairs


def verify_presigned(token, host, keys, now, flavor="rds", region=None, user=None, skew=300, max_expires=None):
    """Verify an RDS ('rds') or DSQL ('dsql') IAM token as the database would (the RDS login front).
      host    the endpoint the server knows: 'name:port' for rds, 'name' for dsql
      keys    KeyStore (or dict for KeyStore(static=...))
      now     epoch seconds (the verifier's clock)
      region  expected signing region (None: any)
      user    the StartupMessage user (rds: must equal DBUser; dsql: admin <-> DbConnectAdmin)
    Returns a dict (akid, region, signed_at, expires_at, action, dbuser); raises SigV4Error."""
    if isinstance(keys, dict):
        keys = KeyStore(static=keys)
    service = {"rds": "rds-db", "dsql": "dsql"}[flavor]
    if max_expires is None:
        max_expires = 900 if flavor == "rds" else 604800
    thost, pairs = parse_presigned(token)
    if thost.lower() != host.lower():
        raise SigV4Error("token host %r is not this endpoint %r" % (thost, host))
    if flavor == "rds" and not re.fullmatch(r".+:\d+", thost):
        raise SigV4Error("RDS token host must include the port")
    if flavor == "dsql" and ":" in thost:
        raise SigV4Error("DSQL token host must not include a port")
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise SigV4Error("duplicate query parameter %r" % k)
        seen[k] = v
    need = ["Action", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
            "X-Amz-SignedHeaders", "X-Amz-Signature"]
    for k in need:
        if k not in seen:
            raise SigV4Error("missing query parameter %s" % k, "IncompleteSignature")
    if seen["X-Amz-Algorithm"] != ALGORITHM:
        raise SigV4Error("X-Amz-Algorithm must be AWS4-HMAC-SHA256")
    if seen["X-Amz-SignedHeaders"] != "host":
        raise SigV4Error("X-Amz-SignedHeaders must be exactly 'host'")
    action = seen["Action"]
    if flavor == "rds":
        if action != "connect":
            raise SigV4Error("Action must be connect, not %r" % action)
        if "DBUser" not in seen:
            raise SigV4Error("missing DBUser")
        if user is not None and seen["DBUser"] != user:
            raise SigV4Error("DBUser %r does not match the login user %r" % (seen["DBUser"], user))
    else:
        if "DBUser" in seen:
            raise SigV4Error("DSQL tokens carry no DBUser")
        if action not in ("DbConnect", "DbConnectAdmin"):
            raise SigV4Error("Action must be DbConnect or DbConnectAdmin, not %r" % action)
        if user is not None:
            want = "DbConnectAdmin" if user == "admin" else "DbConnect"
            if action != want:
                raise SigV4Error("user %r needs Action=%s, token has %s" % (user, want, action))
    cred = seen["X-Amz-Credential"].split("/")
    if len(cred) != 5 or cred[4] != "aws4_request":
        raise SigV4Error("malformed X-Amz-Credential %r" % seen["X-Amz-Credential"], "IncompleteSignature")
    akid, cdate, cregion, cservice = cred[:4]
    if cservice != service:
        raise SigV4Error("credential scope service %r, expected %r" % (cservice, service))
    if region is not None and cregion != region:
        raise SigV4Error("credential scope region %r, expected %r" % (cregion, region))
    ad = seen["X-Amz-Date"]
    signed_at = parse_amz_date(ad)
    if ad[:8] != cdate:
        raise SigV4Error("credential scope date %s does not match X-Amz-Date %s" % (cdate, ad))
    if not re.fullmatch(r"\d+", seen["X-Amz-Expires"]):
        raise SigV4Error("X-Amz-Expires must be a positive integer")
    expires = int(seen["X-Amz-Expires"])
    if expires < 1 or expires > max_expires:
        raise SigV4Error("X-Amz-Expires %d outside 1..%d" % (expires, max_expires))
    if signed_at > now + skew:
        raise SigV4Error("X-Amz-Date %s is more than %d s in the future" % (ad, skew))
    if now > signed_at + expires:
        raise SigV4Error("token expired at %s (X-Amz-Date + X-Amz-Expires)" % time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(signed_at + expires)))
    key = keys.resolve(akid, seen.get("X-Amz-Security-Token"), now)
    sig = seen["X-Amz-Signature"]
    creq = "\n".join(["GET", "/", canonical_query([(k, v) for k, v in pairs if k != "X-Amz-Signature"]),
                      "host:" + host.lower(), "", "host", EMPTY_SHA256])
    sts = string_to_sign(ad, "%s/%s/%s/aws4_request" % (cdate, cregion, cservice), creq)
    want = hmac.new(signing_key(key.secret, cdate, cregion, cservice), sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want.encode(), sig.encode()):
        raise SigV4Error("signature mismatch")
    exp = signed_at + expires
    if key.expires_at is not None:
        exp = min(exp, key.expires_at)
    return {"akid": akid, "region": cregion, "signed_at": signed_at, "expires_at": exp, "action": action,
            "dbuser": seen.get("DBUser")}


# ------------------------------------------------------------------------ header-signed requests
def _trim(v):
    return re.sub(r"\s+", " ", v.strip())


def _canonical_uri(path):
    return uri_encode(urllib.parse.unquote(path or "/"), keep_slash=True) or "/"


def _canonical_query_raw(raw_query):
    pairs = [(urllib.parse.unquote(k), urllib.parse.unquote(v))
             for k, _, v in (p.partition("=") for p in raw_query.split("&") if p)]
    return canonical_query(pairs)


def sign_headers(method, path, raw_query, headers, body, akid, secret, region, service, t, session_token=None):
    """Header-sign a request like botocore (for tests driving the STS stand-in). headers: dict incl.
    Host. Returns a new dict with X-Amz-Date, [X-Amz-Security-Token], Authorization added; every
    given header is signed."""
    t = _to_epoch(t)
    ad = amz_date(t)
    h = dict(headers)
    h["X-Amz-Date"] = ad
    if session_token:
        h["X-Amz-Security-Token"] = session_token
    names = sorted({k.lower() for k in h})
    lower = {}
    for k, v in h.items():
        lower.setdefault(k.lower(), []).append(_trim(str(v)))
    body = body.encode() if isinstance(body, str) else (body or b"")
    creq = "\n".join([method, _canonical_uri(path), _canonical_query_raw(raw_query or "")]
                     + ["%s:%s" % (n, ",".join(lower[n])) for n in names]
                     + ["", ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (ad[:8], region, service)
    sig = hmac.new(signing_key(secret, ad[:8], region, service), string_to_sign(ad, scope, creq).encode(),
                   hashlib.sha256).hexdigest()
    h["Authorization"] = "%s Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        ALGORITHM, akid, scope, ";".join(names), sig)
    return h


_AUTH_RE = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,"
                      r"\s*Signature=([0-9a-fA-F]+)\s*$")


def verify_header_signature(method, path, raw_query, headers, body, keys, now, service, regions=None,
                            required_signed=("host", "x-amz-date"), skew=300, check_signature=True):
    """Verify a SigV4 header-signed request (assume-role profiles / the AWS STS stand-in AssumeRole).
    headers: [(name, value)] as received. check_signature=False skips only the final HMAC comparison
    (key id, scope, date and session token are still checked). Returns dict(akid, region, session_token, signed_headers);
    raises SigV4Error with an STS-like code."""
    if isinstance(keys, dict):
        keys = KeyStore(static=keys)
    hl = {}
    for k, v in headers:
        hl.setdefault(k.lower(), []).append(v)
    auth = (hl.get("authorization") or [None])[0]
    if not auth:
        raise SigV4Error("Request is missing Authentication Token", "MissingAuthenticationToken")
    m = _AUTH_RE.match(auth.strip())
    if not m:
        raise SigV4Error("Authorization header is not a valid AWS4-HMAC-SHA256 header", "IncompleteSignature")
    cred, signed, sig = m.groups()
    parts = cred.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise SigV4Error("Credential should be scoped to a valid region and service.", "IncompleteSignature")
    akid, cdate, cregion, cservice = parts[:4]
    if cservice != service:
        raise SigV4Error("Credential should be scoped to correct service: '%s'." % service, "SignatureDoesNotMatch")
    if regions is not None and cregion not in regions:
        raise SigV4Error("Credential should be scoped to a valid region (%s not in %s)." % (cregion, regions),
                         "SignatureDoesNotMatch")
    names = signed.split(";")
    if names != sorted(names) or any(n != n.lower() for n in names):
        raise SigV4Error("SignedHeaders must be lower-case and sorted", "IncompleteSignature")
    for r in required_signed:
        if r not in names:
            raise SigV4Error("Header %s must be signed" % r, "IncompleteSignature")
    for n in names:
        if n not in hl:
            raise SigV4Error("Signed header %s is missing from the request" % n, "IncompleteSignature")
    ad = (hl.get("x-amz-date") or [None])[0]
    t = parse_amz_date(ad)
    if ad[:8] != cdate:
        raise SigV4Error("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                         "from HTTP", "SignatureDoesNotMatch")
    if abs(t - now) > skew:
        raise SigV4Error("Signature expired: %s is now earlier or later than the allowed %d s window"
                         % (ad, skew), "SignatureDoesNotMatch")
    token = (hl.get("x-amz-security-token") or [None])[0]
    if token is not None and "x-amz-security-token" not in names:
        raise SigV4Error("X-Amz-Security-Token must be signed", "IncompleteSignature")
    key = keys.resolve(akid, token, now)
    body = body.encode() if isinstance(body, str) else (body or b"")
    payload_hash = (hl.get("x-amz-content-sha256") or [hashlib.sha256(body).hexdigest()])[0]
    creq = "\n".join([method, _canonical_uri(path), _canonical_query_raw(raw_query or "")]
                     + ["%s:%s" % (n, ",".join(_trim(v) for v in hl[n])) for n in names]
                     + ["", signed, payload_hash])
    sts = string_to_sign(ad, "%s/%s/%s/aws4_request" % (cdate, cregion, cservice), creq)
    want = hmac.new(signing_key(key.secret, cdate, cregion, cservice), sts.encode(), hashlib.sha256).hexdigest()
    if check_signature and not hmac.compare_digest(want.encode(), sig.lower().encode()):
        raise SigV4Error("The request signature we calculated does not match the signature you provided. "
                         "Check your AWS Secret Access Key and signing method.", "SignatureDoesNotMatch")
    return {"akid": akid, "region": cregion, "session_token": token, "signed_headers": names,
            "expires_at": key.expires_at}


# ----------------------------------------------------------------------------------- self-check
RDS_HOST = "mydb.123456789012.us-east-1.rds.amazonaws.com"
DSQL_HOST = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"

EXAMPLE_A = (RDS_HOST + ":5432/?Action=connect&DBUser=iam_user&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
             "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires="
             "900&X-Amz-SignedHeaders=host&X-Amz-Signature="
             "93205406f95a81a2f41be70b83c64cffdbf019c054e14baeabe3213cc9a9036e")
EXAMPLE_B_SESSION = "AQoDYXdzEJr//session+token="
EXAMPLE_B = (RDS_HOST + ":5432/?Action=connect&DBUser=iam%20user%40x&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
             "X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date="
             "20150830T123600Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token="
             "AQoDYXdzEJr%2F%2Fsession%2Btoken%3D&X-Amz-Signature="
             "315a729c3c6601785ea4ae2e11c039f5379e5601cdbd9cd48323c5f8d05c733c")
EXAMPLE_C = (DSQL_HOST + "/?Action=DbConnectAdmin&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F"
             "20150830%2Fus-east-1%2Fdsql%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&"
             "X-Amz-SignedHeaders=host&X-Amz-Signature="
             "3efa539c4d1a7fb2d9c58013762d8ef892d26f721841801a4fd6122e0b0a8262")
EXAMPLE_D = (DSQL_HOST + "/?Action=DbConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F"
             "20150830%2Fus-east-1%2Fdsql%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&"
             "X-Amz-SignedHeaders=host&X-Amz-Signature="
             "9ba66dbc2584121c8caeb4a7589112848d23116f5e89845d4dbd43484a68e998")

# the published SigV4 test vectors (a) aws-c-auth presign vectors: (name, path, params, session token, expected signature)
PRESIGN_VECTORS = [
    ("get-vanilla", "/", [], None, "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d"),
    ("get-vanilla-with-session-token", "/", [],
     "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
     "7ff2b50b376cb4d151970630573d6291dc128cc5c2a12ffb237f73cc53f67b6c"),
    ("get-vanilla-query-unreserved", "/",
     [("-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
       "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")], None,
     "8e76a88a7433637b12778d5592799b29ad21ecd6cf6325051c21d86f0acda2bf"),
    ("get-vanilla-utf8-query", "/", [("\u1234", "bar")], None,
     "0bdd809b1519ac4f0c1dc3540e2cc46bd0c7f778eda408b2ebf3b913d21ff600"),
    ("get-utf8", "/\u1234", [], None, "10eae3f14a260bd3911cc6d008d3c576d143b05b62f09782a7a4b37f52178e44"),
]


def self_check():
    """Return a list of (name, ok, detail). All must be ok."""
    now = _to_epoch(EXAMPLE_TIME)
    results = []

    def check(name, fn):
        try:
            detail = fn()
            results.append((name, True, detail or ""))
        except (SigV4Error, AssertionError, ValueError, KeyError) as e:
            results.append((name, False, "%s: %s" % (type(e).__name__, e)))

    long_term = KeyStore(static={EXAMPLE_AKID: EXAMPLE_SECRET}, derive=False)
    with_token = KeyStore(static={EXAMPLE_AKID: (EXAMPLE_SECRET, EXAMPLE_B_SESSION)}, derive=False)

    def ex_a():
        ex = {}
        presign(EXAMPLE_AKID, EXAMPLE_SECRET, "us-east-1", "rds-db", RDS_HOST + ":5432",
                [("Action", "connect"), ("DBUser", "iam_user")], 900, now, explain=ex)
        tok = rds_token(RDS_HOST, 5432, "iam_user", "us-east-1", EXAMPLE_AKID, EXAMPLE_SECRET, now)
        assert ex["creq_hash"] == "ec3893497dbe56890004e69ad074fac1561082be60738d78c54e9e30b5cd068c", ex["creq_hash"]
        assert tok == EXAMPLE_A, tok
        r = verify_presigned(EXAMPLE_A, RDS_HOST + ":5432", long_term, now, "rds", "us-east-1", "iam_user")
        return "akid=%s" % r["akid"]

    def ex_b():
        ex = {}
        tok = presign(EXAMPLE_AKID, EXAMPLE_SECRET, "us-east-1", "rds-db", RDS_HOST + ":5432",
                      [("Action", "connect"), ("DBUser", "iam user@x")], 900, now, EXAMPLE_B_SESSION, explain=ex)
        assert ex["creq_hash"] == "1208ac1a77c2638ec1e84004e45905853210102003b2b5fbec3654a8adbcfe88", ex["creq_hash"]
        assert tok == EXAMPLE_B, tok
        verify_presigned(EXAMPLE_B, RDS_HOST + ":5432", with_token, now, "rds", "us-east-1", "iam user@x")

    def ex_c():
        ex = {}
        tok = dsql_token(DSQL_HOST, "us-east-1", EXAMPLE_AKID, EXAMPLE_SECRET, now, admin=True)
        presign(EXAMPLE_AKID, EXAMPLE_SECRET, "us-east-1", "dsql", DSQL_HOST, [("Action", "DbConnectAdmin")],
                900, now, explain=ex)
        assert ex["creq_hash"] == "02581f608ee2dfc530e36eca2022872ed8de853a59119f9f9a1a43362ebdf38e", ex["creq_hash"]
        assert tok == EXAMPLE_C, tok
        verify_presigned(EXAMPLE_C, DSQL_HOST, long_term, now, "dsql", "us-east-1", "admin")

    def ex_d():
        ex = {}
        tok = dsql_token(DSQL_HOST, "us-east-1", EXAMPLE_AKID, EXAMPLE_SECRET, now, admin=False, expires=3600)
        presign(EXAMPLE_AKID, EXAMPLE_SECRET, "us-east-1", "dsql", DSQL_HOST, [("Action", "DbConnect")],
                3600, now, explain=ex)
        assert ex["creq_hash"] == "d5f658317c4289784a503fb9050dd80d93879bb6a939f95c3eeec99fa0836c88", ex["creq_hash"]
        assert tok == EXAMPLE_D, tok
        verify_presigned(EXAMPLE_D, DSQL_HOST, long_term, now, "dsql", "us-east-1", "someone")

    check("example A (RDS)", ex_a)
    check("example B (RDS, session token, encoding)", ex_b)
    check("example C (DSQL admin)", ex_c)
    check("example D (DSQL non-admin, 3600 s)", ex_d)

    for name, path, params, tok, want in PRESIGN_VECTORS:
        def vec(path=path, params=params, tok=tok, want=want):
            ex = {}
            presign(EXAMPLE_AKID, EXAMPLE_SECRET, "us-east-1", "service", "example.amazonaws.com", params, 3600,
                    now, tok, path=path, explain=ex)
            assert ex["signature"] == want, ex["signature"]
        check("aws-c-auth presign " + name, vec)

    def gv_sts_hash():
        # The "string-to-sign hash" of the worked examples is the last line of the string to sign, i.e. the hex
        # SHA-256 of the canonical request (not a hash of the string to sign itself).
        ex = {}
        presign(EXAMPLE_AKID, EXAMPLE_SECRET, "us-east-1", "service", "example.amazonaws.com", [], 3600, now,
                explain=ex)
        assert ex["creq_hash"] == "bb7705b4aa3cb8e8f5e1e0b3d4c0b64030797a313c8ceee43e33117cc43eadc5", ex["creq_hash"]
        assert ex["string_to_sign"].endswith("\n" + ex["creq_hash"])
    check("aws-c-auth get-vanilla canonical-request hash", gv_sts_hash)

    def header_vanilla():
        h = sign_headers("GET", "/", "", {"Host": "example.amazonaws.com"}, b"", EXAMPLE_AKID, EXAMPLE_SECRET,
                         "us-east-1", "service", now)
        assert h["Authorization"].endswith("Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"), \
            h["Authorization"]
        verify_header_signature("GET", "/", "", list(h.items()), b"", long_term, now, "service")
    check("botocore header get-vanilla", header_vanilla)
    return results


if __name__ == "__main__":
    bad = 0
    for name, ok, detail in self_check():
        print("%-4s %s %s" % ("ok" if ok else "FAIL", name, detail))
        bad += not ok
    sys.exit(1 if bad else 0)
