#!/usr/bin/python3
"""Stand-in for AWS STS, AWS Query protocol (assume-role profiles, web identity federation, the STS wire format, the AWS STS stand-in).
Point the gateway at it with AWS_ENDPOINT_URL_STS=<.url>

    POST /  Content-Type: application/x-www-form-urlencoded; charset=utf-8   (Action from body or query)
    * AssumeRoleWithWebIdentity  unsigned (an Authorization header is rejected); Version=2011-06-15,
      RoleArn, RoleSessionName, WebIdentityToken == the configured token (inline, or the current
      content of web_identity_token_file; surrounding whitespace ignored) else 400 InvalidIdentityToken;
      a JWT token whose exp has passed -> 400 ExpiredTokenException
    * AssumeRole  SigV4 header-signed with a known source key (source_keys, or credentials minted by
      the other AWS stand-ins with the same master key); signature verified against the received
      headers and SHA-256 of the body (verify_signature=False skips only the HMAC comparison)
    -> 200 text/xml <...Response><...Result> with AssumedRoleUser and Credentials (ASIASTSW/ASIASTSA
       <12-digit n>, SessionToken "tok-<n>/<exp>/<mac>"), Expiration = now + duration
    Errors: <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>.
Faults: add_fault(status=400, code="Throttling"), (status=400, code="IDPCommunicationError"),
status=500/503, kind="malformed" (broken XML), "close", "hang", "oversized", ...
Duration: ttl=None -> DurationSeconds or 3600; ttl=N -> always N seconds (short test lifetimes).
"""
import os
import re
import sys
import uuid
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin_base import HttpStandIn, Response, base_arg_parser, iso_utc, jwt_decode, run_main  # noqa: E402
from sigv4_verify import (DEFAULT_AWS_MASTER, KeyStore, SigV4Error, mint_credentials,  # noqa: E402
                          verify_header_signature)

NS = "https://sts.amazonaws.com/doc/2011-06-15/"
ROLE_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})")
SESSION_RE = re.compile(r"[\w+=,.@-]{2,64}")
DEFAULT_WEB_IDENTITY_TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bnM6c2EifQ.tb-web-identity"


def sts_error(status, code, message, sender=None):
    if sender is None:
        sender = status < 500
    body = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n    <Code>%s</Code>\n'
            '    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n</ErrorResponse>\n' % (
                NS, "Sender" if sender else "Receiver", escape(code), escape(message), uuid.uuid4()))
    return Response(status, body, "text/xml", {"x-amzn-RequestId": str(uuid.uuid4())})


class _Fail(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class AwsStsStandIn(HttpStandIn):
    """Constructor: web_identity_token (default DEFAULT_WEB_IDENTITY_TOKEN) or web_identity_token_file,
    role_arns (None = any well-formed role ARN), source_keys {akid: secret | (secret, session_token)}
    (default {AKIDEXAMPLE: example secret}), source_akids (restrict AssumeRole callers), regions
    (accepted signing regions, None = any), external_id, ttl (None = DurationSeconds or 3600),
    verify_signature (True), fractional_expiration (False), required_signed (header names that must
    be signed; default host, x-amz-date — botocore also signs content-type), master."""

    name = "aws-sts"
    default_content_type = "text/xml"
    CONFIG_KEYS = ("web_identity_token", "web_identity_token_file", "role_arns", "source_akids", "regions",
                   "external_id", "ttl", "verify_signature", "fractional_expiration", "provider", "audience",
                   "required_signed")

    def __init__(self, port=0, web_identity_token=DEFAULT_WEB_IDENTITY_TOKEN, web_identity_token_file=None,
                 role_arns=None, source_keys=None, source_akids=None, regions=None, external_id=None, ttl=None,
                 verify_signature=True, fractional_expiration=False, master=DEFAULT_AWS_MASTER,
                 provider="oidc.example.test", audience="sts.amazonaws.com",
                 required_signed=("host", "x-amz-date"), **kw):
        super().__init__(port=port, **kw)
        self.required_signed = tuple(required_signed)
        self.web_identity_token = web_identity_token
        self.web_identity_token_file = web_identity_token_file
        self.role_arns = role_arns
        if source_keys is None:
            source_keys = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
        self.keys = KeyStore(static=source_keys, master=master)
        self.source_akids = source_akids
        self.regions = regions
        self.external_id = external_id
        self.ttl = ttl
        self.verify_signature = verify_signature
        self.fractional_expiration = fractional_expiration
        self.master = master
        self.provider = provider
        self.audience = audience
        self.issued = []
        self.verified = []   # details of verified AssumeRole signatures

    def announce(self):
        return {"endpoint": self.url}

    def state(self):
        s = super().state()
        s["issued"] = self.issued
        return s

    def error_response(self, status, code=None, message=None, req=None):
        default = {400: "Throttling", 403: "AccessDenied", 429: "Throttling", 500: "InternalFailure",
                   503: "ServiceUnavailable"}.get(status, "InternalFailure" if status >= 500 else "InvalidRequest")
        code = code or default
        return sts_error(status, code, message or ("Rate exceeded" if code == "Throttling" else "injected fault"))

    def malformed_body(self, req):
        return ('<AssumeRoleWithWebIdentityResponse xmlns="%s"><AssumeRoleWithWebIdentityResult><Credentials>'
                '<AccessKeyId>ASIA' % NS).encode()

    def oversized_parts(self):
        return (('<AssumeRoleResponse xmlns="%s"><!-- ' % NS).encode(), b"x", b" --></AssumeRoleResponse>")

    # ------------------------------------------------------------------
    def handle(self, req):
        if req["path"] != "/":
            return sts_error(404, "UnknownOperation", "No such path %s" % req["path"])
        params = {}
        for k, v in req["query"].items():
            params[k] = v[0]
        if req["method"] == "POST":
            ctype = (req.header("Content-Type") or "").split(";")[0].strip().lower()
            if req.body_bytes and ctype != "application/x-www-form-urlencoded":
                return sts_error(400, "InvalidParameterValue", "Content-Type must be "
                                 "application/x-www-form-urlencoded (got %r)" % ctype)
            for k, v in req.form.items():
                params[k] = v[0]
        elif req["method"] != "GET":
            return sts_error(405, "InvalidAction", "Method %s not allowed" % req["method"])
        action = params.get("Action")
        try:
            if action is None:
                raise _Fail(400, "MissingAction", "Missing Action")
            if action not in ("AssumeRole", "AssumeRoleWithWebIdentity"):
                raise _Fail(400, "InvalidAction", "Could not find operation %s for version %s" % (
                    action, params.get("Version")))
            if params.get("Version") != "2011-06-15":
                raise _Fail(400, "InvalidAction", "Could not find operation %s for version %s" % (
                    action, params.get("Version")))
            if action == "AssumeRoleWithWebIdentity":
                return self._web_identity(req, params)
            return self._assume_role(req, params)
        except _Fail as f:
            return sts_error(f.status, f.code, f.message)

    def _common(self, params, action):
        arn = params.get("RoleArn")
        if not arn:
            raise _Fail(400, "ValidationError", "1 validation error detected: Value null at 'roleArn' failed to "
                        "satisfy constraint: Member must not be null")
        m = ROLE_ARN_RE.fullmatch(arn)
        if not m:
            raise _Fail(400, "ValidationError", "%s is invalid" % arn)
        if self.role_arns is not None and arn not in self.role_arns:
            raise _Fail(403, "AccessDenied", "Not authorized to perform sts:%s on %s" % (action, arn))
        session = params.get("RoleSessionName")
        if not session:
            raise _Fail(400, "ValidationError", "1 validation error detected: Value null at 'roleSessionName' "
                        "failed to satisfy constraint: Member must not be null")
        if not SESSION_RE.fullmatch(session):
            raise _Fail(400, "ValidationError", "1 validation error detected: Value '%s' at 'roleSessionName' "
                        "failed to satisfy constraint: Member must satisfy regular expression pattern: "
                        "[\\w+=,.@-]*" % session)
        duration = params.get("DurationSeconds")
        if duration is not None:
            if not re.fullmatch(r"\d+", duration) or not 900 <= int(duration) <= 43200:
                raise _Fail(400, "ValidationError", "1 validation error detected: Value '%s' at "
                            "'durationSeconds' failed to satisfy constraint: Member must have value greater "
                            "than or equal to 900" % duration)
        life = int(self.ttl) if self.ttl is not None else int(duration or 3600)
        return arn, m.group(1), m.group(3), session, life

    def _expected_web_token(self):
        if self.web_identity_token_file:
            with open(self.web_identity_token_file) as f:
                return f.read()
        return self.web_identity_token

    def _web_identity(self, req, params):
        if req.header("Authorization") is not None:
            raise _Fail(400, "InvalidRequest", "AssumeRoleWithWebIdentity is an unsigned call; the stand-in "
                        "rejects a request carrying an Authorization header")
        arn, account, role, session, life = self._common(params, "AssumeRoleWithWebIdentity")
        tok = params.get("WebIdentityToken")
        if not tok:
            raise _Fail(400, "ValidationError", "1 validation error detected: Value null at 'webIdentityToken' "
                        "failed to satisfy constraint: Member must not be null")
        expected = self._expected_web_token()
        if expected is None or tok.strip() != expected.strip():
            raise _Fail(400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity "
                        "provider, please reference AssumeRoleWithWebIdentity documentation for requirements")
        now = self.now()
        sub = "system:serviceaccount:ns:sa"
        try:
            _, claims, _, _ = jwt_decode(tok)
            sub = claims.get("sub", sub)
            if isinstance(claims.get("exp"), (int, float)) and claims["exp"] <= now:
                raise _Fail(400, "ExpiredTokenException", "Token expired: current date/time %s must be before "
                            "the expiration date/time %s" % (iso_utc(now), iso_utc(claims["exp"])))
        except ValueError:
            pass
        extra = ("    <SubjectFromWebIdentityToken>%s</SubjectFromWebIdentityToken>\n"
                 "    <Audience>%s</Audience>\n" % (escape(str(sub)), escape(self.audience)))
        tail = "    <Provider>%s</Provider>\n" % escape(self.provider)
        return self._success("AssumeRoleWithWebIdentity", "STSW", account, role, session, life, now, extra, tail)

    def _assume_role(self, req, params):
        now = self.now()
        if req.header("Authorization") is None:
            raise _Fail(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
        try:
            info = verify_header_signature(req["method"], req["path"], req["raw_query"], req["headers"],
                                           req.body_bytes, self.keys, now, "sts", regions=self.regions,
                                           required_signed=self.required_signed,
                                           check_signature=self.verify_signature)
        except SigV4Error as e:
            status = 400 if e.code in ("IncompleteSignature", "ExpiredToken") else 403
            raise _Fail(status, e.code, str(e))
        if self.source_akids is not None and info["akid"] not in self.source_akids:
            raise _Fail(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        self.verified.append(info)
        arn, account, role, session, life = self._common(params, "AssumeRole")
        if self.external_id is not None and params.get("ExternalId") != self.external_id:
            raise _Fail(403, "AccessDenied", "User is not authorized to perform: sts:AssumeRole on resource: %s "
                        "(ExternalId mismatch)" % arn)
        return self._success("AssumeRole", "STSA", account, role, session, life, now, "", "")

    def _success(self, action, source, account, role, session, life, now, extra, tail):
        n = self.counter.next()
        c = mint_credentials(source, n, now + life, self.master)
        exp = iso_utc(c["expires_at"], frac=self.fractional_expiration)
        self.issued.append({"n": n, "action": action, "AccessKeyId": c["AccessKeyId"], "expires_at": c["expires_at"],
                            "session": session})
        role_id = "AROA%s" % ("%017d" % n)
        body = ('<%sResponse xmlns="%s">\n  <%sResult>\n%s'
                '    <AssumedRoleUser>\n      <Arn>arn:aws:sts::%s:assumed-role/%s/%s</Arn>\n'
                '      <AssumedRoleId>%s:%s</AssumedRoleId>\n    </AssumedRoleUser>\n'
                '    <Credentials>\n      <AccessKeyId>%s</AccessKeyId>\n      <SecretAccessKey>%s</SecretAccessKey>\n'
                '      <SessionToken>%s</SessionToken>\n      <Expiration>%s</Expiration>\n    </Credentials>\n'
                '%s  </%sResult>\n  <ResponseMetadata>\n    <RequestId>%s</RequestId>\n  </ResponseMetadata>\n'
                '</%sResponse>\n') % (
            action, NS, action, extra, account, escape(role), escape(session), role_id, escape(session),
            c["AccessKeyId"], escape(c["SecretAccessKey"]), escape(c["Token"]), exp, tail, action, uuid.uuid4(),
            action)
        return Response(200, body, "text/xml", {"x-amzn-RequestId": str(uuid.uuid4())})


def main(argv=None):
    p = base_arg_parser("AWS STS stand-in (the AWS STS stand-in)")
    p.add_argument("--web-identity-token", default=DEFAULT_WEB_IDENTITY_TOKEN)
    p.add_argument("--web-identity-token-file", default=None)
    p.add_argument("--role-arn", action="append", default=None, help="accepted role ARN (repeatable; default any)")
    p.add_argument("--source-key", action="append", default=[], metavar="AKID:SECRET[:SESSION_TOKEN]")
    p.add_argument("--ttl", type=int, default=None)
    p.add_argument("--no-verify-signature", action="store_true")

    def make(args, cfg):
        kw = dict(cfg)
        kw.setdefault("web_identity_token", args.web_identity_token)
        kw.setdefault("web_identity_token_file", args.web_identity_token_file)
        kw.setdefault("role_arns", args.role_arn)
        kw.setdefault("ttl", args.ttl)
        kw.setdefault("verify_signature", not args.no_verify_signature)
        if args.source_key:
            sk = {}
            for s in args.source_key:
                parts = s.split(":", 2)
                sk[parts[0]] = tuple(parts[1:])
            kw.setdefault("source_keys", sk)
        return AwsStsStandIn(port=args.port, clock_offset=args.clock_offset, frozen_time=args.frozen_time, **kw)
    return run_main(make, p, argv)


if __name__ == "__main__":
    sys.exit(main())
