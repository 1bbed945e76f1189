#!/usr/bin/python3
"""Stand-ins for Cloud SQL connector mode (spec/cloud-tokens.md §3.8, §5.13).

    CloudSqlInstance   a fake instance: project, region, name, databaseVersion, addresses, DNS name,
                       a self-signed server CA (CN "Google Cloud SQL Server CA <project>:<instance>") and a server certificate
                       (CN "<project>:<instance>", SAN = the DNS name when there is one)
    SqlAdminStandIn    GET  /sql/v1beta4/projects/<p>/instances/<i>/connectSettings
                       POST /sql/v1beta4/projects/<p>/instances/<i>:generateEphemeralCert
                       Bearer token from the shared google.GoogleIssuer with the sqlservice.admin (or
                       cloud-platform) scope; the certificate is signed by the instance's CA, lives
                       cert_ttl seconds (never longer than an embedded access_token), and an embedded
                       sqlservice.login token is bound to its serial for automatic IAM login
    CloudSqlVerifier   pgfront verifier for the server-side proxy: a client certificate bound to a
                       token logs in without a password if the user is the token's §3.6 name (else
                       FATAL 28000); otherwise the server asks for the password, checked against
                       passwords {user: password}
    proxy_context()    the proxy's TLS: TLS 1.3 only (or 1.2 only, as a fault), client certificate
                       required and verified against the instance CA; the server certificate can be
                       swapped for one with a wrong name (fault)
    Tls12OnlyServer    the "TLS 1.2 only" fault as a whole server: refuses a TLS 1.3 client with the
                       protocol_version alert, as a real server does

The proxy itself is a pgfront.PgFront(direct_tls=proxy_context(inst), mode=CloudSqlVerifier(...)),
listening on the instance's addresses (127.0.0.1 as PUBLIC, 127.0.0.2 as PRIVATE by default).
"""
import datetime as dt
import os
import re
import secrets
import socket
import ssl
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcp_identity as google  # noqa: E402
from standin_base import HttpStandIn, iso_utc, json_response  # noqa: E402

CLIENT_CN = "Google Cloud SQL Client"


def _crypto():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    return x509, hashes, serialization, rsa, NameOID, ExtendedKeyUsageOID


def _name(cn):
    x509, _, _, _, NameOID, _ = _crypto()
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert):
    _, _, serialization, _, _, _ = _crypto()
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class CloudSqlInstance:
    def __init__(self, project="tb-project", region="us-central1", name="orders", version="POSTGRES_16",
                 public_ip="127.0.0.1", private_ip="127.0.0.2", dns_name=None, psc=False, cert_ttl=3600,
                 server_cn=None):
        x509, hashes, serialization, rsa, NameOID, EKU = _crypto()
        self.project, self.region, self.name, self.version = project, region, name, version
        self.public_ip, self.private_ip, self.dns_name, self.psc = public_ip, private_ip, dns_name, psc
        self.cert_ttl = cert_ttl
        self.bound = {}            # client certificate serial -> access token
        self.issued_certs = []     # {"serial", "not_after", "token"}
        self._lock = threading.Lock()
        now = dt.datetime.now(dt.timezone.utc)
        self.ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cn = "%s:%s" % (project, name)
        # The CA's subject must differ from the server certificate's, or the leaf looks self-signed.
        ca_name = _name("Google Cloud SQL Server CA %s" % cn)
        self.ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
                   .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(self.ca_key, hashes.SHA256()))
        self.dir = tempfile.mkdtemp(prefix="tbcsql")
        self.server_cert, self.server_key = self.make_server_cert(server_cn or cn)

    @property
    def connection_name(self):
        return "%s:%s:%s" % (self.project, self.region, self.name)

    def make_server_cert(self, cn, suffix="server"):
        """PEM files of a server certificate signed by the instance CA (SAN = the DNS name)."""
        x509, hashes, serialization, rsa, NameOID, EKU = _crypto()
        now = dt.datetime.now(dt.timezone.utc)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.ca.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30)))
        if self.dns_name:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(self.dns_name)]), critical=False)
        cert = b.sign(self.ca_key, hashes.SHA256())
        crt, kp = os.path.join(self.dir, suffix + ".crt"), os.path.join(self.dir, suffix + ".key")
        with open(crt, "w") as f:
            f.write(_pem(cert))
        with open(kp, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return crt, kp

    def connect_settings(self):
        ips = []
        if self.public_ip:
            ips.append({"type": "PRIMARY", "ipAddress": self.public_ip})
        if self.private_ip:
            ips.append({"type": "PRIVATE", "ipAddress": self.private_ip})
        ips.append({"type": "OUTGOING", "ipAddress": "203.0.113.9"})
        d = {"kind": "sql#connectSettings", "region": self.region, "databaseVersion": self.version,
             "backendType": "SECOND_GEN", "ipAddresses": ips, "pscEnabled": self.psc,
             "serverCaCert": {"kind": "sql#sslCert", "cert": _pem(self.ca), "instance": self.name,
                              "expirationTime": iso_utc(self.ca.not_valid_after.replace(tzinfo=dt.timezone.utc).timestamp()),
                              "commonName": "%s:%s" % (self.project, self.name)},
             "serverCaMode": "GOOGLE_MANAGED_INTERNAL_CA", "mdxProtocolSupport": ["CLIENT_PROTOCOL_TYPE"]}
        if self.dns_name:
            d["dnsName"] = self.dns_name + "."
            d["dnsNames"] = [{"name": self.dns_name + ".", "connectionType": "PRIVATE_SERVICE_CONNECT"
                              if self.psc else "PUBLIC", "dnsScope": "INSTANCE"}]
        return d

    def issue_client_cert(self, public_pem, now, token=None, token_exp=None):
        x509, hashes, serialization, rsa, NameOID, EKU = _crypto()
        pem = public_pem.encode()
        if b"RSA PUBLIC KEY" in pem:
            # PKCS#1, or SPKI DER under that label (the Go connector does this, §3.8.2)
            try:
                pub = serialization.load_pem_public_key(pem.replace(b"RSA PUBLIC KEY", b"PUBLIC KEY"))
            except ValueError:
                pub = serialization.load_pem_public_key(pem)
        else:
            pub = serialization.load_pem_public_key(pem)
        not_after = now + self.cert_ttl
        if token_exp is not None:
            not_after = min(not_after, token_exp)
        serial = x509.random_serial_number()
        cert = (x509.CertificateBuilder().subject_name(_name(CLIENT_CN)).issuer_name(self.ca.subject)
                .public_key(pub).serial_number(serial)
                .not_valid_before(dt.datetime.fromtimestamp(now - 60, dt.timezone.utc))
                .not_valid_after(dt.datetime.fromtimestamp(int(not_after), dt.timezone.utc))
                .add_extension(x509.ExtendedKeyUsage([EKU.CLIENT_AUTH]), critical=False)
                .sign(self.ca_key, hashes.SHA256()))
        with self._lock:
            if token:
                self.bound[serial] = token
            self.issued_certs.append({"serial": serial, "not_after": int(not_after), "token": token})
        return _pem(cert), int(not_after)


class SqlAdminStandIn(HttpStandIn):
    """§5.13 Admin API. instances: CloudSqlInstance list. Config knobs: region (answer this region
    instead of the instance's), version (databaseVersion override), quota_project (every call must
    carry this x-goog-user-project, else 403 as for a caller that may not bill that project)."""

    name = "sqladmin"
    CONFIG_KEYS = ("region", "version", "quota_project")
    PATH = re.compile(r"/sql/v1beta4/projects/([^/]+)/instances/([^/:]+)(/connectSettings|:generateEphemeralCert)")

    def __init__(self, port=0, instances=(), issuer=None, region=None, version=None, **kw):
        super().__init__(port=port, **kw)
        self.issuer = issuer or google.GoogleIssuer(self.clock)
        self.instances = {(i.project, i.name): i for i in instances}
        self.region, self.version = region, version
        self.quota_project = None

    def error_response(self, status, code=None, message=None, req=None):
        return google.api_error(status, message or "injected fault", code or "INTERNAL")

    def _auth(self, req):
        auth = req.header("Authorization") or ""
        t = self.issuer.lookup(auth[7:]) if auth.startswith("Bearer ") else None
        if t is None or t["exp"] <= self.now():
            return google.api_error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        if not ({google.SQL_ADMIN, google.CLOUD_PLATFORM} & set(t["scopes"])):
            return google.api_error(403, "Request had insufficient authentication scopes.", "PERMISSION_DENIED")
        return google.quota_check(req, self.quota_project)

    def handle(self, req):
        import urllib.parse
        m = self.PATH.fullmatch(req["path"])
        if not m:
            return None
        bad = self._auth(req)
        if bad is not None:
            return bad
        inst = self.instances.get((urllib.parse.unquote(m.group(1)), m.group(2)))
        if inst is None:
            return google.api_error(404, "The Cloud SQL instance does not exist.", "NOT_FOUND")
        if m.group(3) == "/connectSettings":
            if req["method"] != "GET":
                return None
            d = inst.connect_settings()
            d["region"] = self.region or d["region"]
            d["databaseVersion"] = self.version or d["databaseVersion"]
            return json_response(d)
        if req["method"] != "POST":
            return None
        try:
            body = req.json()
        except ValueError:
            return google.api_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        token, token_exp = body.get("access_token"), None
        if token:
            t = self.issuer.lookup(token)
            if t is None or t["exp"] <= self.now() or not ({google.SQL_LOGIN, google.CLOUD_PLATFORM} & set(t["scopes"])):
                return google.api_error(400, "Invalid access_token: not a login-scoped, unexpired token.",
                                        "INVALID_ARGUMENT")
            token_exp = t["exp"]
        try:
            cert, not_after = inst.issue_client_cert(body.get("public_key") or "", self.now(), token, token_exp)
        except ValueError as e:
            return google.api_error(400, "Invalid public_key: %s" % e, "INVALID_ARGUMENT")
        return json_response({"ephemeralCert": {"kind": "sql#sslCert", "cert": cert,
                                                "expirationTime": iso_utc(not_after),
                                                "commonName": CLIENT_CN}})


class CloudSqlVerifier:
    """The proxy's login rules (§5.13)."""

    failure_message = 'password authentication failed for user "%s"'
    auto_failure_message = 'Cloud SQL IAM user authentication failed for user "%s"'

    def __init__(self, inst, issuer, passwords=None):
        self.inst, self.issuer = inst, issuer
        self.passwords = dict(passwords or {})
        self.auto_logins = []
        self.password_logins = []

    def auto_login(self, user, database, der, now):
        from cryptography import x509
        from pgfront import AuthFailure
        serial = x509.load_der_x509_certificate(der).serial_number if der else None
        token = self.inst.bound.get(serial)
        if token is None:
            return False
        t = self.issuer.lookup(token)
        if t is None or t["exp"] <= now:
            raise AuthFailure("the certificate's login token expired")
        if user != google.db_user(t["principal"]):
            raise AuthFailure("user %r is not the certificate's IAM user %r" % (user, google.db_user(t["principal"])))
        self.auto_logins.append({"user": user, "serial": serial, "n": t["n"]})
        return True

    def verify(self, user, database, password, now):
        from pgfront import AuthFailure
        if user not in self.passwords or not secrets.compare_digest(self.passwords[user], password):
            raise AuthFailure("wrong password for %r" % user)
        self.password_logins.append(user)
        return {"user": user}


def proxy_context(inst, tls12_only=False, server_cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if tls12_only:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    crt, key = server_cert or (inst.server_cert, inst.server_key)
    ctx.load_cert_chain(crt, key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=_pem(inst.ca))
    return ctx


class Tls12OnlyServer:
    """A server that speaks TLS 1.2 at most where the instance's proxy should be (the "TLS 1.2 only"
    fault). Blocking handshakes, so the refusal reaches the client as the protocol_version alert a
    real server sends (asyncio's TLS drops the alert when the handshake fails); nothing follows."""

    def __init__(self, inst, hosts=("127.0.0.1",), port=0):
        self.ctx = proxy_context(inst, tls12_only=True)
        self.handshakes = []            # the server-side outcome of each one
        self._socks = []
        for h in hosts:
            ls = socket.socket()
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((h, port))
            port = ls.getsockname()[1]
            ls.listen(16)
            ls.settimeout(0.2)
            self._socks.append(ls)
        self.port = port
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, args=(ls,), daemon=True) for ls in self._socks]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def _serve(self, ls):
        while not self._stop.is_set():
            try:
                conn, _ = ls.accept()
            except OSError:
                continue
            conn.settimeout(5)
            try:
                self.ctx.wrap_socket(conn, server_side=True).close()
                self.handshakes.append("ok")
            except (ssl.SSLError, OSError) as e:
                self.handshakes.append(str(e))
            finally:
                conn.close()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(2)
        for ls in self._socks:
            ls.close()


def main(argv=None):
    """One process with what a Cloud SQL connector alias talks to: the Google token endpoint, the
    Admin API and the server-side proxy (relaying to a real PostgreSQL), sharing one token record.
    Writes a service-account key file for the alias's credential and prints one JSON line:
    {"token_uri", "sqladmin", "proxy_port", "key_file", "instance", "iam_user"}; SIGTERM stops it."""
    import argparse
    import json
    import signal
    import pgfront
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--upstream-port", type=int, required=True)
    p.add_argument("--upstream-user", required=True)
    p.add_argument("--upstream-password", required=True)
    p.add_argument("--upstream-database", default=None)
    p.add_argument("--proxy-port", type=int, required=True)
    p.add_argument("--key-file", required=True)
    args = p.parse_args(argv)
    issuer = google.GoogleIssuer()
    tok = google.GoogleTokenStandIn(issuer=issuer).start()
    sa = google.make_service_account_file(args.key_file, token_uri=tok.token_url)
    tok.add_service_account(sa["client_email"], sa)
    inst = CloudSqlInstance()
    adm = SqlAdminStandIn(instances=[inst], issuer=issuer).start()
    front = pgfront.PgFront(inst.server_cert, inst.server_key, upstream_port=args.upstream_port,
                            upstream_user=args.upstream_user, upstream_password=args.upstream_password,
                            upstream_database=args.upstream_database, mode=CloudSqlVerifier(inst, issuer),
                            port=args.proxy_port, direct_tls=proxy_context(inst)).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    print(json.dumps({"port": front.port, "token_uri": tok.token_url, "sqladmin": adm.url, "proxy_port": front.port,
                      "key_file": args.key_file, "instance": inst.connection_name,
                      "iam_user": google.db_user(sa["client_email"])}), flush=True)
    while not stop.wait(0.5):
        pass
    front.stop()
    adm.stop()
    tok.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
