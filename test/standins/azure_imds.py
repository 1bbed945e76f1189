#!/usr/bin/python3
"""Stand-ins for Azure managed-identity endpoints (managed identity, what the Azure SDKs were seen to do, the Azure IMDS stand-in, the other Azure managed identity stand-ins).

AzureImdsStandIn — Azure Instance Metadata Service (pointed at with AZURE_POD_IDENTITY_AUTHORITY_HOST):
    GET /metadata/identity/oauth2/token[/]?api-version=2018-02-01&resource=<r>[&client_id=|&object_id=|&msi_res_id=]
    header Metadata: true
  * no Metadata header           -> 400 {"error":"bad_request_102","error_description":"Required metadata header not specified"}
  * api-version missing/other    -> 400 {"error":"invalid_request",...}
  * resource other than the configured one -> 400 {"error":"invalid_resource",...}
  * more than one selector       -> 400 invalid_request; unknown identity -> 400 "Identity not found"
  * 200 with every value a JSON string: access_token, client_id, expires_in, expires_on (epoch),
    ext_expires_in, not_before, resource, token_type
AppServiceStandIn — App Service / Functions / Container Apps (IDENTITY_ENDPOINT + IDENTITY_HEADER):
    GET <path>?api-version=2019-08-01&resource=<r>[&client_id=|&object_id=|&principal_id=|&mi_res_id=]
    header X-IDENTITY-HEADER: <secret>
  * wrong/missing header -> 401 {"statusCode":401,"message":...}; other errors 400 {"statusCode":400,...}
  * 200 {"access_token","expires_on":"<epoch>","expires_in":"<s>","resource","token_type":"Bearer","client_id"}

Identities (both classes): list of {"client_id","object_id","msi_res_id","name","system": bool,
"claims": {...}}; default = one system-assigned and one user-assigned identity (DEFAULT_IDENTITIES).
Tokens are Entra-style JWTs (see entra.py, HS256 test key) with aud = resource, appid = client_id,
oid = object_id, xms_mirid = msi_res_id, uti "tok-<n>".
"""
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standin_base import (DEFAULT_SIGNING_KEY, HttpStandIn, base_arg_parser, iso_utc,  # noqa: E402
                          json_response, run_main)
from entra import DEFAULT_RESOURCE, DEFAULT_TENANT, mint_access_token  # noqa: E402

SUBSCRIPTION = "5f1e2d3c-4b5a-4697-8877-665544332211"
SYSTEM_IDENTITY = {
    "system": True,
    "client_id": "5a5a5a5a-0000-4000-8000-000000000001",
    "object_id": "0b0b0b0b-0000-4000-8000-000000000001",
    "msi_res_id": "/subscriptions/%s/resourcegroups/tb-rg/providers/Microsoft.Compute/virtualMachines/tb-vm"
                  % SUBSCRIPTION,
    "name": "tb-vm",
}
USER_IDENTITY = {
    "system": False,
    "client_id": "5a5a5a5a-0000-4000-8000-000000000002",
    "object_id": "0b0b0b0b-0000-4000-8000-000000000002",
    "msi_res_id": "/subscriptions/%s/resourcegroups/tb-rg/providers/Microsoft.ManagedIdentity/"
                  "userAssignedIdentities/orders-mi" % SUBSCRIPTION,
    "name": "orders-mi",
}
DEFAULT_IDENTITIES = (SYSTEM_IDENTITY, USER_IDENTITY)


def _fmt_expires_on(epoch, fmt):
    if fmt == "string":
        return str(epoch)
    if fmt == "number":
        return epoch
    if fmt == "iso":
        return iso_utc(epoch)
    if fmt == "legacy":  # App Service 2017 / Azure ML form, UTC
        import time
        return time.strftime("%m/%d/%Y %H:%M:%S +00:00", time.gmtime(epoch))
    raise ValueError("expires_on_format %r" % fmt)


class _ManagedIdentityBase(HttpStandIn):
    CONFIG_KEYS = ("resource", "ttl", "expires_fields", "expires_on_format", "cache_tokens", "backdate")

    def __init__(self, port=0, identities=DEFAULT_IDENTITIES, resource=DEFAULT_RESOURCE, ttl=86399,
                 tenant=DEFAULT_TENANT, signing_key=DEFAULT_SIGNING_KEY, expires_fields="both",
                 expires_on_format="string", cache_tokens=False, backdate=300, **kw):
        super().__init__(port=port, **kw)
        self.identities = [dict(i) for i in identities]
        for i in self.identities:
            i.setdefault("system", False)
            i.setdefault("claims", {})
            i.setdefault("name", i["client_id"][:8])
        self.resource = resource
        self.ttl = ttl
        self.tenant = tenant
        self.signing_key = signing_key.encode() if isinstance(signing_key, str) else signing_key
        self.expires_fields = expires_fields        # "both" | "expires_on" | "expires_in"
        self.expires_on_format = expires_on_format  # "string" | "number" | "iso" | "legacy"
        self.cache_tokens = cache_tokens            # True: hand out the same token until it expires
        self.backdate = backdate
        self.issued = []
        self._cache = {}
        self._issue_lock = threading.Lock()

    def state(self):
        s = super().state()
        s["issued"] = list(self.issued)
        s["identities"] = self.identities
        return s

    def is_issued(self, token):
        return any(i["token"] == token for i in self.issued)

    def _select(self, selectors):
        """selectors: [(param, value)] present in the query. Returns (identity, error_text)."""
        if len(selectors) > 1:
            return None, "Multiple identity parameters (%s) were specified." % ", ".join(p for p, _ in selectors)
        if not selectors:
            for i in self.identities:
                if i["system"]:
                    return i, None
            return None, "Identity not found"
        param, value = selectors[0]
        field = {"client_id": "client_id", "object_id": "object_id", "principal_id": "object_id",
                 "msi_res_id": "msi_res_id", "mi_res_id": "msi_res_id"}[param]
        for i in self.identities:
            v = i.get(field)
            if v is None:
                continue
            if v.lower() == value.lower():  # GUIDs and ARM ids compare case-insensitively
                return i, None
        return None, "Identity not found"

    def _token_for(self, ident, resource):
        now = int(self.now())
        key = (ident["client_id"], resource)
        with self._issue_lock:
            if self.cache_tokens and key in self._cache and self._cache[key]["exp"] > now:
                return self._cache[key], now
            n = self.counter.next()
            claims = {"appid": ident["client_id"], "appidacr": "2", "idtyp": "app", "oid": ident["object_id"],
                      "sub": ident["object_id"], "xms_mirid": ident["msi_res_id"]}
            claims.update(ident.get("claims") or {})
            token = mint_access_token(n, now, self.ttl, self.tenant, resource, claims, self.signing_key,
                                      self.backdate)
            rec = {"n": n, "client_id": ident["client_id"], "token": token, "exp": now + int(self.ttl),
                   "nbf": now - int(self.backdate), "resource": resource}
            self.issued.append(rec)
            self._cache[key] = rec
            return rec, now

    def _body(self, rec, now, strings=True):
        remaining = max(0, rec["exp"] - now)
        s = (lambda v: str(v)) if strings else (lambda v: v)
        body = {"access_token": rec["token"], "client_id": rec["client_id"]}
        if self.expires_fields in ("both", "expires_in"):
            body["expires_in"] = s(remaining)
        if self.expires_fields in ("both", "expires_on"):
            body["expires_on"] = _fmt_expires_on(rec["exp"], self.expires_on_format)
        body["ext_expires_in"] = s(remaining)
        body["not_before"] = s(rec["nbf"])
        body["resource"] = rec["resource"]
        body["token_type"] = "Bearer"
        return body


class AzureImdsStandIn(_ManagedIdentityBase):
    """Azure IMDS (the Azure IMDS stand-in). Constructor: identities, resource, ttl (default 86399), tenant, signing_key,
    api_versions (default ("2018-02-01",)), expires_fields ("both"), expires_on_format ("string"),
    cache_tokens (False: every request mints tok-<n+1>; True: same token until it expires, like IMDS).
    The base URL to give the gateway (AZURE_POD_IDENTITY_AUTHORITY_HOST) is .url."""

    name = "azure-imds"
    CONFIG_KEYS = _ManagedIdentityBase.CONFIG_KEYS + ("api_versions",)

    def __init__(self, port=0, api_versions=("2018-02-01",), **kw):
        super().__init__(port=port, **kw)
        self.api_versions = list(api_versions)

    def error_response(self, status, code=None, message=None, req=None):
        default = {404: ("not_found", "IMDS is being updated"), 410: ("gone", "IMDS is restarting"),
                   429: ("too_many_requests", "Too many requests"),
                   500: ("internal_error", "Internal server error"),
                   503: ("service_unavailable", "Service unavailable")}.get(status, ("error", "injected fault"))
        return json_response({"error": code or default[0], "error_description": message or default[1]}, status)

    def handle(self, req):
        if not re.fullmatch(r"/metadata/identity/oauth2/token/?", req["path"].lower()):
            return None
        if req["method"] != "GET":
            return json_response({"error": "invalid_request", "error_description": "Method not allowed"}, 405)
        if (req.header("Metadata") or "").lower() != "true":
            return json_response({"error": "bad_request_102",
                                  "error_description": "Required metadata header not specified"}, 400)
        q = req["query"]
        api = q.get("api-version", [None])[0]
        if api is None:
            return json_response({"error": "invalid_request",
                                  "error_description": "Required query variable 'api-version' is missing"}, 400)
        if api not in self.api_versions:
            return json_response({"error": "invalid_request",
                                  "error_description": "Invalid api-version '%s'" % api}, 400)
        resource = q.get("resource", [None])[0]
        if resource is None:
            return json_response({"error": "invalid_request",
                                  "error_description": "Required query variable 'resource' is missing"}, 400)
        if resource.rstrip("/") != self.resource.rstrip("/"):
            return json_response({"error": "invalid_resource", "error_description":
                                  "AADSTS500011: The resource principal named %s was not found in the "
                                  "tenant." % resource}, 400)
        selectors = [(p, q[p][0]) for p in ("client_id", "object_id", "msi_res_id") if p in q]
        ident, err = self._select(selectors)
        if ident is None:
            return json_response({"error": "invalid_request", "error_description": err}, 400)
        rec, now = self._token_for(ident, resource)
        return json_response(self._body(rec, now, strings=True))


class AppServiceStandIn(_ManagedIdentityBase):
    """App Service managed identity (the other Azure managed identity stand-ins, the App Service identity endpoint). Constructor adds: secret (the IDENTITY_HEADER
    value, default "tb-identity-header-secret"), path (default "/msi/token"). Identity selectors:
    client_id, object_id / principal_id, mi_res_id. .endpoint is the IDENTITY_ENDPOINT value."""

    name = "azure-appservice"
    CONFIG_KEYS = _ManagedIdentityBase.CONFIG_KEYS + ("secret",)

    def __init__(self, port=0, secret="tb-identity-header-secret", path="/msi/token", **kw):
        super().__init__(port=port, **kw)
        self.secret = secret
        self.path = path

    @property
    def endpoint(self):
        return self.url + self.path

    def announce(self):
        return {"identity_endpoint": self.endpoint, "identity_header": self.secret}

    def error_response(self, status, code=None, message=None, req=None):
        return json_response({"statusCode": status, "message": message or code or "injected fault"}, status)

    def handle(self, req):
        if req["path"].rstrip("/") != self.path.rstrip("/"):
            return None
        if req["method"] != "GET":
            return json_response({"statusCode": 405, "message": "Method not allowed"}, 405)
        if req.header("X-IDENTITY-HEADER") != self.secret:
            return json_response({"statusCode": 401, "message": "Unauthorized. X-IDENTITY-HEADER is missing "
                                  "or does not match."}, 401)
        q = req["query"]
        api = q.get("api-version", [None])[0]
        if api != "2019-08-01":
            return json_response({"statusCode": 400, "message": "Invalid or missing api-version %r; "
                                  "expected 2019-08-01." % api}, 400)
        resource = q.get("resource", [None])[0]
        if resource is None or resource.rstrip("/") != self.resource.rstrip("/"):
            return json_response({"statusCode": 400, "message": "AADSTS500011: The resource principal named "
                                  "%s was not found in the tenant." % resource}, 400)
        selectors = [(p, q[p][0]) for p in ("client_id", "object_id", "principal_id", "mi_res_id") if p in q]
        ident, err = self._select(selectors)
        if ident is None:
            return json_response({"statusCode": 400, "message": "No managed identity found for the specified "
                                  "ClientId/ResourceId/PrincipalId (%s)." % err}, 400)
        rec, now = self._token_for(ident, resource)
        return json_response(self._body(rec, now, strings=True))


def main(argv=None):
    p = base_arg_parser("Azure IMDS / App Service managed-identity stand-in (the Azure IMDS stand-in, the other Azure managed identity stand-ins)")
    p.add_argument("--kind", choices=("imds", "appservice"), default="imds")
    p.add_argument("--resource", default=DEFAULT_RESOURCE)
    p.add_argument("--ttl", type=int, default=86399)
    p.add_argument("--tenant", default=DEFAULT_TENANT)
    p.add_argument("--secret", default="tb-identity-header-secret", help="appservice: X-IDENTITY-HEADER value")
    p.add_argument("--path", default="/msi/token", help="appservice: endpoint path")
    p.add_argument("--cache-tokens", action="store_true")
    p.add_argument("--expires-fields", default="both", choices=("both", "expires_on", "expires_in"))
    p.add_argument("--expires-on-format", default="string", choices=("string", "number", "iso", "legacy"))
    p.add_argument("--signing-key", default=None)

    def make(args, cfg):
        kw = dict(cfg)
        for k in ("resource", "ttl", "tenant", "cache_tokens", "expires_fields", "expires_on_format"):
            kw.setdefault(k, getattr(args, k))
        if args.signing_key:
            kw["signing_key"] = args.signing_key
        common = dict(port=args.port, clock_offset=args.clock_offset, frozen_time=args.frozen_time)
        if args.kind == "appservice":
            kw.setdefault("secret", args.secret)
            kw.setdefault("path", args.path)
            return AppServiceStandIn(**common, **kw)
        return AzureImdsStandIn(**common, **kw)
    return run_main(make, p, argv)


if __name__ == "__main__":
    sys.exit(main())
