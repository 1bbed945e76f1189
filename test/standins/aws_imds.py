#!/usr/bin/python3
"""Stand-in for the EC2 instance metadata service, IMDSv2 with v1 fallback (EC2 instance metadata, the AWS IMDS stand-in).
Point the gateway at it with AWS_EC2_METADATA_SERVICE_ENDPOINT=<.url>/

    PUT /latest/api/token                        x-aws-ec2-metadata-token-ttl-seconds: 1..21600
                                                 -> 200 text/plain session token (header echoed);
                                                 missing/invalid ttl -> 400; X-Forwarded-For -> 403
    GET /latest/meta-data/iam/security-credentials/        -> role name (text/plain)
    GET /latest/meta-data/iam/security-credentials/<role>  -> credentials JSON; unknown role -> 404
    GET /latest/meta-data/placement/region | availability-zone
Session-token rule for the GETs: a present x-aws-ec2-metadata-token must be an issued, unexpired
token (else 401); an absent one is allowed only while v1_allowed is true (else 401).

Credentials are minted per request (cache_seconds=None) or reused for cache_seconds:
AccessKeyId ASIAIMDS<12-digit n>, SessionToken "tok-<n>/<exp>/<mac>", secret derived from the key id
(sigv4_verify.mint_credentials), Expiration = now + ttl (YYYY-MM-DDTHH:MM:SSZ).

IMDSv1-fallback modes: add_fault(status=403|404|405, path="/latest/api/token") (client falls back),
status=400 (hard error), kind="hang" (timeout). Credential body modes: kind="empty", "malformed",
or kind="body" with body=ERROR_REPORT (a {"Code": "AssumeRoleUnauthorizedAccess", ...} report).
"""
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin_base import (Counter, HttpStandIn, base_arg_parser, iso_utc, json_response,  # noqa: E402
                          run_main, text_response)
from sigv4_verify import DEFAULT_AWS_MASTER, mint_credentials  # noqa: E402

CREDS_PATH = "/latest/meta-data/iam/security-credentials/"
ERROR_REPORT = {"Code": "AssumeRoleUnauthorizedAccess",
                "Message": "EC2 cannot assume the role tb-instance-role.",
                "LastUpdated": "2030-01-01T00:00:00Z"}


class AwsImdsStandIn(HttpStandIn):
    """Constructor: role (default "tb-instance-role"), ttl (credential lifetime, default 21600),
    v1_allowed (default True), region ("us-east-1"), cache_seconds (None = new credentials per
    request), static_credentials (dict AccessKeyId/SecretAccessKey/Token/Expiration served as-is),
    master (HMAC key for minted credentials)."""

    name = "aws-imds"
    default_content_type = "text/plain"
    CONFIG_KEYS = ("role", "ttl", "v1_allowed", "region", "cache_seconds", "static_credentials")

    def __init__(self, port=0, role="tb-instance-role", ttl=21600, v1_allowed=True, region="us-east-1",
                 cache_seconds=None, static_credentials=None, master=DEFAULT_AWS_MASTER, **kw):
        super().__init__(port=port, **kw)
        self.role = role
        self.ttl = ttl
        self.v1_allowed = v1_allowed
        self.region = region
        self.cache_seconds = cache_seconds
        self.static_credentials = static_credentials
        self.master = master
        self.session_tokens = {}      # token -> expires (clock)
        self.session_counter = Counter()
        self.issued = []
        self._cached = None
        self._ilock = threading.Lock()

    def announce(self):
        return {"endpoint": self.url + "/"}

    def state(self):
        s = super().state()
        s["issued"] = self.issued
        s["session_tokens"] = len(self.session_tokens)
        return s

    def error_response(self, status, code=None, message=None, req=None):
        reason = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                  405: "Method Not Allowed", 500: "Internal Server Error", 503: "Service Unavailable"}
        return text_response(message or "%d - %s" % (status, reason.get(status, "Error")), status)

    def malformed_body(self, req):
        return b'{"Code":"Success","AccessKeyId":"ASIA'

    def _err(self, status):
        return self.error_response(status)

    def _token_ok(self, req):
        tok = req.header("x-aws-ec2-metadata-token")
        if tok is None:
            return self.v1_allowed
        exp = self.session_tokens.get(tok)
        return exp is not None and exp > self.now()

    def handle(self, req):
        path = req["path"]
        now = self.now()
        if path == "/latest/api/token":
            if req["method"] != "PUT":
                return self._err(405)
            if req.header("X-Forwarded-For") is not None:
                return self._err(403)
            ttl = req.header("x-aws-ec2-metadata-token-ttl-seconds")
            if ttl is None or not re.fullmatch(r"\d+", ttl.strip()) or not 1 <= int(ttl) <= 21600:
                return self._err(400)
            n = self.session_counter.next()
            token = "AQAEA-imdsv2-session-%d-%s" % (n, os.urandom(6).hex())
            self.session_tokens[token] = now + int(ttl)
            return text_response(token, 200, {"x-aws-ec2-metadata-token-ttl-seconds": ttl.strip()})
        if not path.startswith("/latest/"):
            return None
        if req["method"] not in ("GET", "HEAD"):
            return self._err(405)
        if not self._token_ok(req):
            return self._err(401)
        if path == CREDS_PATH:
            return text_response(self.role)
        if path.startswith(CREDS_PATH):
            role = path[len(CREDS_PATH):]
            if role != self.role:
                return self._err(404)
            return json_response(self._credentials(now))
        if path == "/latest/meta-data/placement/region":
            return text_response(self.region)
        if path == "/latest/meta-data/placement/availability-zone":
            return text_response(self.region + "a")
        return self._err(404)

    def _credentials(self, now):
        if self.static_credentials:
            c = dict(self.static_credentials)
        else:
            with self._ilock:
                if (self.cache_seconds is not None and self._cached is not None
                        and now - self._cached[0] < self.cache_seconds):
                    c = self._cached[1]
                else:
                    n = self.counter.next()
                    c = mint_credentials("IMDS", n, now + self.ttl, self.master)
                    c["n"] = n
                    self._cached = (now, c)
                    self.issued.append({"n": n, "AccessKeyId": c["AccessKeyId"], "expires_at": c["expires_at"]})
        body = {"Code": "Success", "LastUpdated": iso_utc(now), "Type": "AWS-HMAC",
                "AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"], "Token": c["Token"],
                "Expiration": c["Expiration"]}
        return body


def main(argv=None):
    p = base_arg_parser("AWS EC2 IMDS stand-in (the AWS IMDS stand-in)")
    p.add_argument("--role", default="tb-instance-role")
    p.add_argument("--ttl", type=int, default=21600, help="credential lifetime in seconds")
    p.add_argument("--v2-only", action="store_true", help="reject requests without a session token")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--cache-seconds", type=float, default=None)

    def make(args, cfg):
        kw = dict(cfg)
        kw.setdefault("role", args.role)
        kw.setdefault("ttl", args.ttl)
        kw.setdefault("v1_allowed", not args.v2_only)
        kw.setdefault("region", args.region)
        kw.setdefault("cache_seconds", args.cache_seconds)
        return AwsImdsStandIn(port=args.port, clock_offset=args.clock_offset, frozen_time=args.frozen_time, **kw)
    return run_main(make, p, argv)


if __name__ == "__main__":
    sys.exit(main())
