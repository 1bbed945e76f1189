"""Test certificates made with the openssl CLI.

make_certs(dir) creates:
  ca.crt / ca.key              the test CA
  server.crt / server.key      CN=localhost, SAN DNS:localhost, IP:127.0.0.1, signed by the test CA
  pg-server.key                a copy of server.key owned by the postgres user, mode 0600 (PostgreSQL
                               refuses a key that others can read)
  other-ca.crt / other-ca.key  a second, unrelated CA (for "wrong CA" tests)
  client.crt / client.key      CN=tbclient, signed by the test CA (client certificate)
"""
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass


@dataclass
class Certs:
    dir: str
    ca_crt: str
    ca_key: str
    server_crt: str
    server_key: str
    pg_server_key: str
    other_ca_crt: str
    other_ca_key: str
    client_crt: str
    client_key: str


def _openssl(*args, cwd):
    res = subprocess.run(["openssl", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if res.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), res.stderr.decode(errors="replace")))
    return res.stdout


def _make_ca(d, name, cn):
    _openssl("req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-keyout", name + ".key", "-out", name + ".crt", "-days", "3650", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _make_leaf(d, name, cn, ca, ext):
    _openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
             "-CAcreateserial", "-out", name + ".crt", "-days", "3650", "-sha256",
             "-extfile", name + ".ext", cwd=d)


def make_certs(d, pg_user="postgres"):
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    _make_ca(d, "ca", "tokenbouncer test CA")
    _make_ca(d, "other-ca", "unrelated test CA")
    _make_leaf(d, "server", "localhost", "ca",
               "basicConstraints=CA:FALSE\n"
               "keyUsage=critical,digitalSignature,keyEncipherment\n"
               "extendedKeyUsage=serverAuth\n"
               "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _make_leaf(d, "client", "tbclient", "ca",
               "basicConstraints=CA:FALSE\n"
               "keyUsage=critical,digitalSignature,keyEncipherment\n"
               "extendedKeyUsage=clientAuth\n")
    for name in os.listdir(d):
        p = os.path.join(d, name)
        os.chmod(p, 0o600 if name.endswith(".key") else 0o644)
    try:
        # root:postgres 0640 lets a pooler running as the postgres user (TB_FLAVOR=pgbouncer)
        # read it too; PostgreSQL accepts a root-owned key with group read.
        if os.geteuid() == 0:
            os.chown(os.path.join(d, "server.key"), 0, pwd.getpwnam(pg_user).pw_gid)
            os.chmod(os.path.join(d, "server.key"), 0o640)
    except KeyError:
        pass
    pg_key = os.path.join(d, "pg-server.key")
    shutil.copyfile(os.path.join(d, "server.key"), pg_key)
    os.chmod(pg_key, 0o600)
    try:
        pw = pwd.getpwnam(pg_user)
        if os.geteuid() == 0:
            os.chown(pg_key, pw.pw_uid, pw.pw_gid)
    except KeyError:
        pass
    j = lambda n: os.path.join(d, n)
    return Certs(dir=d, ca_crt=j("ca.crt"), ca_key=j("ca.key"), server_crt=j("server.crt"),
                 server_key=j("server.key"), pg_server_key=pg_key, other_ca_crt=j("other-ca.crt"),
                 other_ca_key=j("other-ca.key"), client_crt=j("client.crt"), client_key=j("client.key"))


def describe(cert_path):
    """Subject and SAN of a certificate, as openssl prints them (for checks and debugging)."""
    return _openssl("x509", "-in", cert_path, "-noout", "-subject", "-ext", "subjectAltName",
                    cwd=os.path.dirname(cert_path)).decode()
