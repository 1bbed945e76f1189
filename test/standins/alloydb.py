#!/usr/bin/python3
"""Stand-ins for AlloyDB connector mode (spec/cloud-tokens.md §3.9, §5.14).

    AlloyDbInstance   project/region/cluster/instance, addresses (PRIVATE 127.0.0.2, PUBLIC 127.0.0.1, PSC
                      name optional), a root CA "root.alloydb" and an intermediate "client.alloydb" that
                      signs client certificates, and a server certificate signed by the root with an IP
                      SAN for every address and a DNS SAN for the PSC name
    AlloyDbAdminStandIn  GET  /<v>/projects/<p>/locations/<r>/clusters/<c>/instances/<i>/connectionInfo
                      POST /<v>/projects/<p>/locations/<r>/clusters/<c>:generateClientCertificate
                      (<v> = v1, v1beta or v1alpha); Bearer token from the shared issuer with the
                      cloud-platform scope; publicKey SPKI or PKCS#1, certDuration "<n>s",
                      useMetadataExchange; answers {"pemCertificateChain": [leaf, intermediate, root],
                      "caCert": root}
    AlloyDbVerifier   the proxy's rules: for a certificate issued with useMetadataExchange, first the MDX
                      request (4-byte length + MetadataExchangeRequest): the token must be one the issuer
                      gave, unexpired, with alloydb.login or cloud-platform; the answer is written in one
                      write (OK 00 00 00 02 08 01, or ERROR with a message). Then AUTO_IAM logs the §3.6
                      user in without a password; DB_NATIVE asks for it (passwords {user: password}).
                      Faults: mdx_fault = "error" (ERROR answer) | "garbage" (an oversized length) |
                      "hang" (reads the request, never answers)
    proxy_context()   TLS 1.3, client certificate required and verified against the root
"""
import datetime as dt
import ipaddress
import os
import re
import secrets
import ssl
import struct
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcp_identity as google  # noqa: E402
from cloudsql import _crypto, _name, _pem  # noqa: E402
from standin_base import HttpStandIn, json_response  # noqa: E402


def _varint(b, pos):
    v = shift = 0
    while True:
        c = b[pos]
        pos += 1
        v |= (c & 0x7f) << shift
        shift += 7
        if not c & 0x80:
            return v, pos


def parse_mdx_request(msg):
    """MetadataExchangeRequest -> {"user_agent", "auth_type", "oauth2_token"} (proto3 wire format)."""
    out, pos = {"user_agent": "", "auth_type": 0, "oauth2_token": ""}, 0
    while pos < len(msg):
        key, pos = _varint(msg, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, pos = _varint(msg, pos)
            if field == 2:
                out["auth_type"] = v
        elif wire == 2:
            n, pos = _varint(msg, pos)
            v = msg[pos:pos + n].decode()
            pos += n
            if field == 1:
                out["user_agent"] = v
            elif field == 3:
                out["oauth2_token"] = v
        else:
            raise ValueError("wire type %d" % wire)
    return out


def mdx_response(ok, error=""):
    body = b"\x08\x01" if ok else b"\x08\x02" + b"\x12" + bytes([len(error.encode())]) + error.encode()
    return struct.pack("!I", len(body)) + body


class AlloyDbInstance:
    def __init__(self, project="tb-project", region="us-central1", cluster="tb-cluster", name="orders",
                 private_ip="127.0.0.2", public_ip="127.0.0.1", psc_dns=None):
        x509, hashes, serialization, rsa, NameOID, EKU = _crypto()
        self.project, self.region, self.cluster, self.name = project, region, cluster, name
        self.private_ip, self.public_ip, self.psc_dns = private_ip, public_ip, psc_dns
        self.uid = secrets.token_hex(8)
        self.certs = {}            # serial -> {"mdx": bool}
        self._lock = threading.Lock()
        now = dt.datetime.now(dt.timezone.utc)

        def ca(cn, signer=None, signer_name=None):
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(signer_name or _name(cn))
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                    .sign(signer or key, hashes.SHA256()))
            return key, cert
        self.root_key, self.root = ca("root.alloydb")
        self.inter_key, self.inter = ca("client.alloydb", self.root_key, self.root.subject)
        sans = [x509.IPAddress(ipaddress.ip_address(a)) for a in (private_ip, public_ip) if a]
        if psc_dns:
            sans.append(x509.DNSName(psc_dns))
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (x509.CertificateBuilder().subject_name(_name(self.uid)).issuer_name(self.root.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .sign(self.root_key, hashes.SHA256()))
        self.dir = tempfile.mkdtemp(prefix="tbadb")
        self.server_cert, self.server_key = os.path.join(self.dir, "s.crt"), os.path.join(self.dir, "s.key")
        with open(self.server_cert, "w") as f:
            f.write(_pem(cert))
        with open(self.server_key, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))

    @property
    def uri(self):
        return "projects/%s/locations/%s/clusters/%s/instances/%s" % (self.project, self.region, self.cluster, self.name)

    def issue(self, public_pem, now, seconds, mdx):
        x509, hashes, serialization, rsa, NameOID, EKU = _crypto()
        pem = public_pem.encode()
        try:
            pub = serialization.load_pem_public_key(pem)
        except ValueError:
            pub = serialization.load_pem_public_key(pem.replace(b"RSA PUBLIC KEY", b"PUBLIC KEY"))
        serial = x509.random_serial_number()
        leaf = (x509.CertificateBuilder().subject_name(_name("alloydb-client")).issuer_name(self.inter.subject)
                .public_key(pub).serial_number(serial)
                .not_valid_before(dt.datetime.fromtimestamp(now - 60, dt.timezone.utc))
                .not_valid_after(dt.datetime.fromtimestamp(int(now + seconds), dt.timezone.utc))
                .add_extension(x509.ExtendedKeyUsage([EKU.CLIENT_AUTH]), critical=False)
                .sign(self.inter_key, hashes.SHA256()))
        with self._lock:
            self.certs[serial] = {"mdx": bool(mdx), "not_after": int(now + seconds)}
        return [_pem(leaf), _pem(self.inter), _pem(self.root)]


class AlloyDbAdminStandIn(HttpStandIn):
    name = "alloydb-admin"
    CONFIG_KEYS = ("quota_project",)      # as SqlAdminStandIn's
    PATH = re.compile(r"/(v1|v1beta|v1alpha)/projects/([^/]+)/locations/([^/]+)/clusters/([^/:]+)"
                      r"(?:/instances/([^/]+)/connectionInfo|(:generateClientCertificate))")

    def __init__(self, port=0, instances=(), issuer=None, **kw):
        super().__init__(port=port, **kw)
        self.issuer = issuer or google.GoogleIssuer(self.clock)
        self.instances = list(instances)
        self.quota_project = None

    def error_response(self, status, code=None, message=None, req=None):
        return google.api_error(status, message or "injected fault", code or "UNAVAILABLE")

    def handle(self, req):
        m = self.PATH.fullmatch(req["path"])
        if not m:
            return google.api_error(501, "Method not implemented.", "UNIMPLEMENTED")
        auth = req.header("Authorization") or ""
        t = self.issuer.lookup(auth[7:]) if auth.startswith("Bearer ") else None
        if t is None or t["exp"] <= self.now():
            return google.api_error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        if google.CLOUD_PLATFORM not in t["scopes"]:
            return google.api_error(403, "Request had insufficient authentication scopes.", "PERMISSION_DENIED")
        bad = google.quota_check(req, self.quota_project)
        if bad is not None:
            return bad
        _, p, r, c, i, gen = m.groups()
        inst = next((x for x in self.instances if (x.project, x.region, x.cluster) == (p, r, c)
                     and (gen or x.name == i)), None)
        if inst is None:
            return google.api_error(404, "Resource not found.", "NOT_FOUND")
        if not gen:
            d = {"name": inst.uri + "/connectionInfo", "instanceUid": inst.uid}
            if inst.private_ip:
                d["ipAddress"] = inst.private_ip
            if inst.public_ip:
                d["publicIpAddress"] = inst.public_ip
            if inst.psc_dns:
                d["pscDnsName"] = inst.psc_dns + "."
            return json_response(d)
        body = req.json()
        dur = body.get("certDuration", "3600s")
        if not re.fullmatch(r"\d+s", dur):
            return google.api_error(400, "Invalid certDuration.", "INVALID_ARGUMENT")
        chain = inst.issue(body.get("publicKey") or "", self.now(), int(dur[:-1]), body.get("useMetadataExchange"))
        return json_response({"pemCertificateChain": chain, "caCert": chain[-1]})


class AlloyDbVerifier:
    failure_message = 'password authentication failed for user "%s"'
    auto_failure_message = 'IAM authentication failed for user "%s"'

    def __init__(self, inst, issuer, passwords=None, mdx_fault=None):
        self.inst, self.issuer = inst, issuer
        self.passwords = dict(passwords or {})
        self.mdx_fault = mdx_fault
        self.exchanges = []        # {"serial", "auth_type", "user_agent", "n"}
        self._by_serial = {}
        self.auto_logins, self.password_logins = [], []

    async def pre_startup(self, reader, writer, der):
        from cryptography import x509
        serial = x509.load_der_x509_certificate(der).serial_number if der else None
        if not self.inst.certs.get(serial, {}).get("mdx"):
            return True
        head = await reader.readexactly(4)
        n = struct.unpack("!I", head)[0]
        if n > 65536:
            return False
        req = parse_mdx_request(await reader.readexactly(n))
        if self.mdx_fault == "hang":
            await reader.read()            # until the client gives up and closes
            return False
        t = self.issuer.lookup(req["oauth2_token"])
        if self.mdx_fault == "garbage":
            writer.write(b"\xff\xff\xff\xff")
            await writer.drain()
            return False
        bad = None
        if self.mdx_fault == "error":
            bad = "IAM auth failed"
        elif t is None or t["exp"] <= self.issuer.clock.now():
            bad = "invalid or expired OAuth2 token"
        elif not ({google.ALLOYDB_LOGIN, google.CLOUD_PLATFORM} & set(t["scopes"])):
            bad = "the token lacks the alloydb.login scope"
        elif req["auth_type"] not in (1, 2):
            bad = "unsupported auth_type %d" % req["auth_type"]
        writer.write(mdx_response(bad is None, bad or ""))     # one write: the Go client reads it at once
        await writer.drain()
        if bad:
            return False
        info = {"serial": serial, "auth_type": req["auth_type"], "user_agent": req["user_agent"], "n": t["n"],
                "principal": t["principal"]}
        self.exchanges.append(info)
        self._by_serial[serial] = info
        return True

    def auto_login(self, user, database, der, now):
        from cryptography import x509
        from pgfront import AuthFailure
        serial = x509.load_der_x509_certificate(der).serial_number if der else None
        info = self._by_serial.get(serial)
        if info is None or info["auth_type"] != 2:
            return False
        if user != google.db_user(info["principal"]):
            raise AuthFailure("user %r is not the IAM user %r" % (user, google.db_user(info["principal"])))
        self.auto_logins.append({"user": user, "serial": serial})
        return True

    def verify(self, user, database, password, now):
        from pgfront import AuthFailure
        if user not in self.passwords or not secrets.compare_digest(self.passwords[user], password):
            raise AuthFailure("wrong password for %r" % user)
        self.password_logins.append(user)
        return {"user": user}


def proxy_context(inst):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(inst.server_cert, inst.server_key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=_pem(inst.root))
    return ctx
