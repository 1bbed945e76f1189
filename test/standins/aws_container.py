#!/usr/bin/python3
"""Stand-in for the ECS / EKS Pod Identity container credentials endpoint (the container credential provider, the AWS container credentials stand-in).
Point the gateway at it with AWS_CONTAINER_CREDENTIALS_FULL_URI=<.full_uri>
(and AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE] when auth_token is set).

    GET <path> (default /v2/credentials/tb-task)
      auth_token set: Authorization must equal it exactly (no scheme) else 401 {"Message": ...}
      -> 200 {"RoleArn","AccessKeyId","SecretAccessKey","Token","Expiration","AccountId"}
    any other path -> 404 {"Message": ...}

Credentials are minted per request (ASIAECSC<12-digit n>, Token "tok-<n>/<exp>/<mac>", see
sigv4_verify.mint_credentials) with Expiration = now + ttl. Faults: status=500 count=K, kind
"malformed" (invalid JSON), "close", "hang", ... (standin_base.Fault).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin_base import HttpStandIn, base_arg_parser, json_response, run_main  # noqa: E402
from sigv4_verify import DEFAULT_AWS_MASTER, mint_credentials  # noqa: E402


class AwsContainerStandIn(HttpStandIn):
    """Constructor: path ("/v2/credentials/tb-task"), auth_token (None = not required), ttl (21600),
    role_arn, account_id, master."""

    name = "aws-container"
    CONFIG_KEYS = ("path", "auth_token", "ttl", "role_arn", "account_id")

    def __init__(self, port=0, path="/v2/credentials/tb-task", auth_token=None, ttl=21600,
                 role_arn="arn:aws:iam::123456789012:role/tb-task-role", account_id="123456789012",
                 master=DEFAULT_AWS_MASTER, **kw):
        super().__init__(port=port, **kw)
        self.path = path
        self.auth_token = auth_token
        self.ttl = ttl
        self.role_arn = role_arn
        self.account_id = account_id
        self.master = master
        self.issued = []

    @property
    def full_uri(self):
        return self.url + self.path

    def announce(self):
        return {"full_uri": self.full_uri}

    def state(self):
        s = super().state()
        s["issued"] = self.issued
        return s

    def error_response(self, status, code=None, message=None, req=None):
        return json_response({"Message": message or code or "injected fault (status %d)" % status}, status)

    def malformed_body(self, req):
        return b'{"RoleArn": "arn:aws:iam::123456789012:role/x", "AccessKeyId": "ASIA'

    def handle(self, req):
        if req["path"] != self.path:
            return json_response({"Message": "Credentials not found for %s" % req["path"]}, 404)
        if req["method"] != "GET":
            return json_response({"Message": "Method not allowed"}, 405)
        if self.auth_token is not None and req.header("Authorization") != self.auth_token:
            return json_response({"Message": "Unauthorized: Authorization header missing or invalid"}, 401)
        now = self.now()
        n = self.counter.next()
        c = mint_credentials("ECSC", n, now + self.ttl, self.master)
        self.issued.append({"n": n, "AccessKeyId": c["AccessKeyId"], "expires_at": c["expires_at"]})
        return json_response({"RoleArn": self.role_arn, "AccessKeyId": c["AccessKeyId"],
                              "SecretAccessKey": c["SecretAccessKey"], "Token": c["Token"],
                              "Expiration": c["Expiration"], "AccountId": self.account_id})


def main(argv=None):
    p = base_arg_parser("AWS container credentials stand-in (the AWS container credentials stand-in)")
    p.add_argument("--path", default="/v2/credentials/tb-task")
    p.add_argument("--auth-token", default=None)
    p.add_argument("--ttl", type=int, default=21600)

    def make(args, cfg):
        kw = dict(cfg)
        kw.setdefault("path", args.path)
        kw.setdefault("auth_token", args.auth_token)
        kw.setdefault("ttl", args.ttl)
        return AwsContainerStandIn(port=args.port, clock_offset=args.clock_offset, frozen_time=args.frozen_time,
                                   **kw)
    return run_main(make, p, argv)


if __name__ == "__main__":
    sys.exit(main())
