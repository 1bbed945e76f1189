"""AWS RDS IAM and Aurora DSQL tokens end to end (the rules common to every cloud, the AWS credential and token rules, the expiry fields of each answer, the AWS IMDS stand-in to the RDS login front).

    psql / psycopg / pgbench -> tokenbouncer -> PgFront(mode=rds|dsql, TLS) -> real PostgreSQL 15
                                     |
                                     +-> IMDS / container / STS stand-ins, credential_process script,
                                         environment and shared files

Everything is loopback and bounded; waits poll (util.wait_for), they do not sleep a fixed time.
PgFront verifies every token as RDS / DSQL would (sigv4_verify.verify_presigned: host[:port],
Action/DBUser, region, expiry, key and session token, signature) and logs in to PostgreSQL as
appuser. A recording wrapper around its verifier keeps every token it accepted or rejected.

The pooler's environment has every AWS variable blanked (tokenbouncer treats an empty value as
unset), HOME pointing at an empty directory and AWS_EC2_METADATA_DISABLED=true, unless a test sets
them, so nothing leaks in from the test runner and the chain never waits for 169.254.169.254.
"""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

import psycopg
import pytest

import pooler as pooler_mod
from conftest import ALICE, ALICE_PW, APP_DB, APP_PW, APP_USER
from pg import PG_BIN
from pgbench import Pgbench
from rawpg import PgError, RawConn
from util import Bounded, free_port, wait_for

STANDINS = os.path.join(pooler_mod.REPO_ROOT, "test", "standins")
if STANDINS not in sys.path:
    sys.path.insert(0, STANDINS)

import aws_container  # noqa: E402
import aws_imds  # noqa: E402
import aws_sts  # noqa: E402
import pgfront  # noqa: E402
from sigv4_verify import mint_credentials, parse_presigned, verify_presigned  # noqa: E402
from standin_base import iso_utc  # noqa: E402

PSQL = os.path.join(PG_BIN, "psql")
ALIAS = "ledger"
HOST = "localhost"                 # the alias host and PgFront's endpoint_host (the cert has DNS:localhost)
REGION = "us-east-1"
DB_USER = "iam_app"                # the RDS DBUser / StartupMessage user PgFront checks
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ROLE_ARN = "arn:aws:iam::123456789012:role/tb-db-role"
# temporary keys of our own (not minted by a stand-in): '/', '+' and '=' exercise the encoding
TMP_AKID = "ASIAENVTEMP000000042"
TMP_SECRET = "tmpSecret/Key+With=Specials0123456789ab"
TMP_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//session+token/with+plus=="

AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
           "AWS_CREDENTIAL_EXPIRATION", "AWS_ACCOUNT_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
           "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
           "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
           "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
           "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
           "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
           "AWS_EC2_METADATA_V1_DISABLED", "AWS_METADATA_SERVICE_TIMEOUT", "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
           "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_STS_REGIONAL_ENDPOINTS",
           "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CA_BUNDLE", "AWS_CREDENTIAL_FILE")


@pytest.fixture(autouse=True)
def _tokenbouncer_only():
    pooler_mod.tokenbouncer_only("AWS IAM tokens are tokenbouncer-only")


# ------------------------------------------------------------------------------------ helpers
class RecordingVerifier:
    """Wraps PgFront's SigV4 verifier: keeps every token it accepted (with what verify_presigned
    returned) and every rejection, and may reject chosen tokens (reject(token) -> True)."""

    failure_message = 'PAM authentication failed for user "%s"'

    def __init__(self, inner, reject=None):
        self.inner = inner
        self.reject = reject
        self.accepted = []
        self.rejected = []
        self.lock = threading.Lock()

    def verify(self, user, database, password, now):
        try:
            if self.reject is not None and self.reject(password):
                raise pgfront.AuthFailure("the test rejects this token")
            info = self.inner.verify(user, database, password, now)
        except pgfront.AuthFailure as e:
            with self.lock:
                self.rejected.append({"user": user, "token": password, "reason": str(e)})
            raise
        rec = dict(info, user=user, database=database, token=password, mono=time.monotonic())
        with self.lock:
            self.accepted.append(rec)
        return info

    def akids(self):
        with self.lock:
            return [a["akid"] for a in self.accepted]


@pytest.fixture
def make_front(pg, certs):
    """make_front(mode="rds"|"dsql", aws_keys=None, region=REGION, **pgfront_kw) -> started PgFront
    relaying to the session PostgreSQL as appuser; .rec is its RecordingVerifier."""
    made = []

    def factory(mode="rds", aws_keys=None, region=REGION, reject=None, **kw):
        args = dict(upstream_port=pg.port, upstream_user=APP_USER, upstream_password=APP_PW, mode=mode,
                    endpoint_host=HOST, region=region, aws_keys=aws_keys)
        args.update(kw)
        f = pgfront.PgFront(certs.server_crt, certs.server_key, **args)
        made.append(f)
        f.start()
        f.rec = RecordingVerifier(f.verifier, reject)
        f.verifier = f.rec
        return f

    yield factory
    for f in made:
        f.stop()


@pytest.fixture
def standins():
    """standins(obj) starts an HTTP stand-in and stops it at test end."""
    made = []

    def start(s):
        made.append(s)
        return s.start()

    yield start
    for s in made:
        s.stop()


@pytest.fixture
def home(tmp_path):
    d = tmp_path / "home"
    d.mkdir()
    return str(d)


def pooler_env(home, **env):
    out = {k: "" for k in AWS_ENV}
    out["HOME"] = home
    out["AWS_EC2_METADATA_DISABLED"] = "true"
    out.update(env)
    return out


def write_file(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return str(path)


def cred_lines(name, cred):
    return ["", "[credential.%s]" % name] + ["%s = %s" % kv for kv in cred.items()]


def alias_connstr(front, kind="rds", user=DB_USER, dbname=APP_DB, cred="aws", extra="", sslmode="verify-full",
                  region=REGION):
    """A [databases] entry for PgFront: host=localhost port=<front>, region us-east-1, sslmode
    verify-full (the test CA is server_tls_ca_file) unless sslmode=None."""
    parts = ["host=%s" % HOST, "port=%d" % front.port, "auth=aws-%s" % kind, "credential=%s" % cred,
             "region=%s" % region]
    if dbname:
        parts.append("dbname=%s" % dbname)
    if user:
        parts.append("user=%s" % user)
    if sslmode:
        parts.append("sslmode=%s" % sslmode)
    if extra:
        parts.append(extra)
    return " ".join(parts)


def aws_pooler(make_pooler, certs, front, cred, home, env=None, kind="rds", user=DB_USER, dbname=APP_DB,
               db_extra="", settings=None, start=True, creds_extra=None, databases=None, region=REGION):
    """A pooler with alias `ledger` -> PgFront and [credential.aws] = cred (plus creds_extra and
    databases). Clients log in with SCRAM (alice); transaction pooling; test CA for verify-full."""
    dbs = {ALIAS: alias_connstr(front, kind, user, dbname, extra=db_extra, region=region)}
    dbs.update(databases or {})
    s = {"pool_mode": "transaction", "server_tls_ca_file": certs.ca_crt, "server_login_retry": 1}
    s.update(settings or {})
    lines = cred_lines("aws", cred)
    for name, c in (creds_extra or {}).items():
        lines += cred_lines(name, c)
    return make_pooler(settings=s, databases=dbs, extra_lines=lines, env=pooler_env(home, **(env or {})),
                       start=start)


def psql(port, sql="select current_user, current_database()", user=ALICE, db=ALIAS, timeout=30,
         password=ALICE_PW):
    env = {"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "10", "PGSSLMODE": "disable", "PGPASSWORD": password}
    return subprocess.run([PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                           "-U", user, "-d", db, "-c", sql], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def psql_ok(p, sql="select current_user, current_database()", **kw):
    res = psql(p.port, sql, **kw)
    assert res.returncode == 0, "psql failed: %s\n--- pooler log ---\n%s" % (
        res.stderr, p.log_text()[-3000:])
    return res.stdout.strip()


def connect(p, db=ALIAS, **kw):
    return psycopg.connect(host="127.0.0.1", port=p.port, user=ALICE, dbname=db, sslmode="disable",
                           password=ALICE_PW, connect_timeout=10, autocommit=True, **kw)


def login_error(p, db=ALIAS, timeout=25):
    """Log in as alice over the raw protocol and run a query, expecting an ErrorResponse from the
    pooler (at login, or at the query in transaction mode); returns rawpg.PgError (bounded)."""
    def attempt():
        with RawConn("127.0.0.1", p.port, timeout=timeout) as c:
            try:
                c.login(ALICE, db, ALICE_PW)
            except PgError as e:
                return e
            r = c.query("select 1")
            return r.error
    e = Bounded(attempt).result(timeout + 5, "a client login that should fail")
    assert e is not None, "the login succeeded:\n" + p.log_text()[-3000:]
    return e


def expect_query_through(p, front, db=ALIAS, want_db=APP_DB):
    """A psql query through the pooler works and PgFront logged it in with a verified token."""
    assert psql_ok(p, db=db) == "%s|%s" % (APP_USER, want_db)
    assert front.rec.accepted, "PgFront accepted no token; rejections: %s" % front.rejections
    assert not front.rec.rejected, front.rec.rejected
    return front.rec.accepted[-1]


def token_params(token):
    host, pairs = parse_presigned(token)
    return host, dict(pairs)


def minted(source, issued):
    """The full credentials a stand-in minted (its issued list keeps n and expires_at)."""
    return mint_credentials(source, issued["n"], issued["expires_at"])


def check_rds_token(acc, akid, session_token=None):
    host, q = token_params(acc["token"])
    assert acc["akid"] == akid
    assert q["Action"] == "connect" and q["DBUser"] == DB_USER == acc["user"]
    assert q["X-Amz-Expires"] == "900"
    assert q["X-Amz-Credential"].split("/")[2:4] == [REGION, "rds-db"]
    assert q.get("X-Amz-Security-Token") == session_token
    # the raw token text percent-encodes '+', '/' and '=' (servers decode '+' as a space)
    raw_query = acc["token"].split("/?", 1)[1]
    assert "+" not in raw_query, acc["token"]
    return host, q


# ------------------------------------------------------------------------ 1. every credential source
def test_environment_long_term_keys(make_pooler, certs, make_front, home):
    """aws-default, environment keys (the AWS documentation pair): no session token in the token."""
    front = make_front(aws_keys={AKID: SECRET})
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-default"}, home,
                   env={"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET})
    # a fixed user= : the token is minted at start-up, before any client asks
    p.wait_log(r'token for alias "ledger" \(credential aws, user %s\): new token, expires in' % DB_USER, 5)
    assert front.stats()["total_connections"] == 0
    acc = expect_query_through(p, front)
    host, _ = check_rds_token(acc, AKID)
    assert host == "%s:%d" % (HOST, front.port)
    p.wait_log(r"credential aws: AWS credentials from env \(no expiration\)", 5)


def test_environment_temporary_keys(make_pooler, certs, make_front, home):
    """aws-static reading the environment, with a session token (AWS_SESSION_TOKEN) that contains
    '/', '+' and '='; PgFront requires exactly this token next to the key."""
    front = make_front(aws_keys={TMP_AKID: (TMP_SECRET, TMP_TOKEN)})
    exp = iso_utc(time.time() + 3600)
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-static"}, home,
                   env={"AWS_ACCESS_KEY_ID": TMP_AKID, "AWS_SECRET_ACCESS_KEY": TMP_SECRET,
                        "AWS_SESSION_TOKEN": TMP_TOKEN, "AWS_CREDENTIAL_EXPIRATION": exp})
    acc = expect_query_through(p, front)
    check_rds_token(acc, TMP_AKID, TMP_TOKEN)
    assert urllib.parse.quote(TMP_TOKEN, safe="") in acc["token"]


def test_static_keys_from_file_and_env(make_pooler, certs, make_front, home, tmp_path):
    """aws-static with access_key_id, secret_access_key_file and session_token_env."""
    front = make_front(aws_keys={TMP_AKID: (TMP_SECRET, TMP_TOKEN)})
    secret_file = write_file(tmp_path / "aws-secret", TMP_SECRET + "\n")
    p = aws_pooler(make_pooler, certs, front, {
        "type": "aws-static", "access_key_id": TMP_AKID, "secret_access_key_file": secret_file,
        "session_token_env": "TB_TEST_SESSION_TOKEN"}, home, env={"TB_TEST_SESSION_TOKEN": TMP_TOKEN})
    check_rds_token(expect_query_through(p, front), TMP_AKID, TMP_TOKEN)


def test_shared_credentials_file_named_profile(make_pooler, certs, make_front, home, tmp_path):
    """aws-default, AWS_PROFILE selects [tbprof] in AWS_SHARED_CREDENTIALS_FILE; [default] holds
    other keys that PgFront does not know."""
    front = make_front(aws_keys={TMP_AKID: (TMP_SECRET, TMP_TOKEN)})
    creds = write_file(tmp_path / "credentials",
                       "[default]\naws_access_key_id = AKIDWRONGDEFAULT\naws_secret_access_key = nope\n\n"
                       "# the profile under test\n[tbprof]\naws_access_key_id = %s\n"
                       "aws_secret_access_key = %s\naws_session_token = %s\n" % (TMP_AKID, TMP_SECRET, TMP_TOKEN))
    config = write_file(tmp_path / "config", "[default]\nregion = eu-west-1\n\n[profile tbprof]\nregion = us-east-1\n")
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-default"}, home, env={
        "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_CONFIG_FILE": config, "AWS_PROFILE": "tbprof"})
    check_rds_token(expect_query_through(p, front), TMP_AKID, TMP_TOKEN)
    p.wait_log(r"credential aws: AWS credentials from shared-file", 5)


@pytest.mark.parametrize("how", ["profile-chain", "aws-assume-role"])
def test_assume_role(make_pooler, certs, make_front, standins, home, tmp_path, how):
    """A profile with role_arn + source_profile (the default chain with AWS_PROFILE), and the
    aws-assume-role type naming the source profile: STS AssumeRole signed with the source keys
    (the stand-in recomputes the SigV4 header signature); the DB token is signed with the
    assumed-role credentials."""
    sts = standins(aws_sts.AwsStsStandIn(role_arns=[ROLE_ARN], source_akids=[AKID],
                                         required_signed=("content-type", "host", "x-amz-date")))
    front = make_front()                       # knows only the minted (stand-in) credentials
    creds = write_file(tmp_path / "credentials",
                       "[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (AKID, SECRET))
    config = write_file(tmp_path / "config",
                        "[profile app]\nrole_arn = %s\nsource_profile = base\nrole_session_name = tb-session\n"
                        "region = us-east-1\n" % ROLE_ARN)
    env = {"AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_CONFIG_FILE": config, "AWS_ENDPOINT_URL_STS": sts.url}
    if how == "profile-chain":
        env["AWS_PROFILE"] = "app"
        cred = {"type": "aws-default"}
        session = "tb-session"
    else:
        cred = {"type": "aws-assume-role", "role_arn": ROLE_ARN, "source_profile": "base",
                "role_session_name": "tb-assume", "region": REGION}
        session = "tb-assume"
    p = aws_pooler(make_pooler, certs, front, cred, home, env=env)
    acc = expect_query_through(p, front)
    posts = sts.requests(method="POST")
    assert [r["status"] for r in posts] == [200], [(r["status"], r["body"][:300]) for r in posts]
    form = posts[0].form
    assert form["Action"] == ["AssumeRole"] and form["Version"] == ["2011-06-15"]
    assert form["RoleArn"] == [ROLE_ARN] and form["RoleSessionName"] == [session]
    assert posts[0].header("Authorization").startswith("AWS4-HMAC-SHA256 Credential=%s/" % AKID)
    assert len(sts.verified) == 1 and sts.verified[0]["akid"] == AKID
    assert sts.verified[0]["region"] == REGION
    assert {"content-type", "host", "x-amz-date"} <= set(sts.verified[0]["signed_headers"])
    issued = sts.issued[0]
    assert issued["action"] == "AssumeRole"
    check_rds_token(acc, issued["AccessKeyId"], minted("STSA", issued)["Token"])
    p.wait_log(r"credential aws: new AWS credentials from assume-role", 5)


def test_web_identity_rereads_token_file(make_pooler, certs, make_front, standins, home, tmp_path):
    """AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (default chain): AssumeRoleWithWebIdentity,
    unsigned. The credentials live 16 s, so they are refreshed at about 8 s of age; the token
    file is rewritten in between and the refresh presents the new content (the stand-in accepts
    only the file's current content)."""
    tok_file = str(tmp_path / "web-identity-token")
    first = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bnM6Zmlyc3QifQ.first"
    second = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bnM6c2Vjb25kIn0.second"
    write_file(tok_file, first + "\n")
    sts = standins(aws_sts.AwsStsStandIn(web_identity_token_file=tok_file, role_arns=[ROLE_ARN], ttl=16))
    front = make_front()
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-default"}, home, env={
        "AWS_WEB_IDENTITY_TOKEN_FILE": tok_file, "AWS_ROLE_ARN": ROLE_ARN,
        "AWS_ROLE_SESSION_NAME": "tb-web", "AWS_ENDPOINT_URL_STS": sts.url}, db_extra="server_lifetime=1")
    acc = expect_query_through(p, front)
    posts = sts.requests(method="POST")
    assert posts[0].header("Authorization") is None
    form = posts[0].form
    assert form["Action"] == ["AssumeRoleWithWebIdentity"] and form["RoleArn"] == [ROLE_ARN]
    assert form["RoleSessionName"] == ["tb-web"] and form["WebIdentityToken"][0].strip() == first
    assert acc["akid"] == sts.issued[0]["AccessKeyId"]
    write_file(tok_file, second + "\n")
    wait_for(lambda: [r for r in sts.requests(method="POST") if r.form1("WebIdentityToken", "").strip() == second], 20,
             "an AssumeRoleWithWebIdentity request with the rewritten token file")
    posts = sts.requests(method="POST")
    assert all(r["status"] == 200 for r in posts), [(r["status"], r["body"][:200]) for r in posts]
    assert len(sts.issued) >= 2
    new_akid = sts.issued[-1]["AccessKeyId"]
    # server_lifetime=1 retires the first server; a new login uses a token from the new credentials
    wait_for(lambda: psql_ok(p) and new_akid in front.rec.akids(), 15,
             "a server login with the credentials obtained with the new web identity token")
    assert not front.rec.rejected


def test_credential_process(make_pooler, certs, make_front, home, tmp_path):
    """aws-process: the command (shell words, no shell) prints credential_process JSON."""
    c = mint_credentials("PROC", 7, time.time() + 3600)
    out = write_file(tmp_path / "creds.json", json.dumps({
        "Version": 1, "AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
        "SessionToken": c["Token"], "Expiration": c["Expiration"], "AccountId": "123456789012"}))
    calls = str(tmp_path / "calls.log")
    script = write_file(tmp_path / "cred-proc.sh",
                        '#!/bin/sh\necho "$*" >> "%s"\ncat "%s"\n' % (calls, out), mode=0o700)
    front = make_front()
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-process",
                                               "command": "%s --profile 'tb db'" % script}, home)
    check_rds_token(expect_query_through(p, front), c["AccessKeyId"], c["Token"])
    with open(calls) as f:
        assert f.read().splitlines() == ["--profile tb db"]


@pytest.mark.parametrize("auth", ["env", "file"])
def test_container(make_pooler, certs, make_front, standins, home, tmp_path, auth):
    """AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN (or _FILE, as EKS
    Pod Identity), through the default chain; the Authorization header is sent verbatim."""
    secret = "Bearer-less tb-container-auth 1234"
    s = standins(aws_container.AwsContainerStandIn(auth_token=secret))
    front = make_front()
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": s.full_uri}
    if auth == "env":
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = secret
    else:
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = write_file(tmp_path / "pod-identity-token", secret)
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-default"}, home, env=env)
    acc = expect_query_through(p, front)
    gets = s.requests(method="GET")
    assert [(r["path"], r["status"]) for r in gets] == [(s.path, 200)]
    assert gets[0].header("Authorization") == secret
    check_rds_token(acc, s.issued[0]["AccessKeyId"], minted("ECSC", s.issued[0])["Token"])
    p.wait_log(r"credential aws: new AWS credentials from container", 5)


@pytest.mark.parametrize("version", ["v2", "v1-fallback"])
def test_imds(make_pooler, certs, make_front, standins, home, version):
    """EC2 instance metadata as the last link of the default chain: IMDSv2 (PUT a session token,
    then the role and its credentials with it); and once the IMDSv1 fallback when the token PUT
    is refused with 403. The stand-in's credentials keep the default 6 h lifetime."""
    imds = standins(aws_imds.AwsImdsStandIn(v1_allowed=(version != "v2")))
    if version == "v1-fallback":
        imds.add_fault(status=403, path="/latest/api/token", count=None)
    front = make_front()
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-default"}, home, env={
        "AWS_EC2_METADATA_DISABLED": "", "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url + "/"})
    acc = expect_query_through(p, front)
    reqs = imds.requests()
    put = [r for r in reqs if r["method"] == "PUT"]
    gets = [r for r in reqs if r["method"] == "GET"]
    assert len(put) == 1 and put[0]["path"] == "/latest/api/token"
    assert put[0].header("x-aws-ec2-metadata-token-ttl-seconds") == "21600"
    assert [r["path"] for r in gets] == [aws_imds.CREDS_PATH, aws_imds.CREDS_PATH + imds.role], \
        [(r["method"], r["path"], r["status"]) for r in reqs]
    assert all(r["status"] == 200 for r in gets), [(r["path"], r["status"]) for r in gets]
    if version == "v2":
        assert put[0]["status"] == 200
        assert all(r.header("x-aws-ec2-metadata-token", "").startswith("AQAEA-imdsv2-session-") for r in gets)
    else:
        assert put[0]["status"] == 403
        assert all(r.header("x-aws-ec2-metadata-token") is None for r in gets)
    check_rds_token(acc, imds.issued[0]["AccessKeyId"], minted("IMDS", imds.issued[0])["Token"])
    p.wait_log(r"credential aws: new AWS credentials from imds", 5)


def test_dsql_admin_and_non_admin(make_pooler, certs, make_front, home):
    """Aurora DSQL: host without port in the token, DbConnectAdmin for the default user admin (and
    the default database postgres), DbConnect for any other user; PgFront (mode dsql) checks the
    Action against the StartupMessage user."""
    front = make_front(mode="dsql", aws_keys={AKID: SECRET})
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-default"}, home, kind="dsql", user=None,
                   dbname=None, env={"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET},
                   databases={"ledger_app": alias_connstr(front, "dsql", user="tb_reader", dbname=APP_DB,
                                                          extra="token_duration=600")})
    expect_query_through(p, front, want_db="postgres")
    admin = front.rec.accepted[-1]
    expect_query_through(p, front, db="ledger_app")
    reader = front.rec.accepted[-1]
    for acc, user, action, expires in ((admin, "admin", "DbConnectAdmin", "900"),
                                       (reader, "tb_reader", "DbConnect", "600")):
        host, q = token_params(acc["token"])
        assert host == HOST, acc["token"]
        assert acc["user"] == user and q["Action"] == action and "DBUser" not in q
        assert q["X-Amz-Credential"].split("/")[2:4] == [REGION, "dsql"]
        assert q["X-Amz-Expires"] == expires
    assert admin["database"] == "postgres"


@pytest.mark.parametrize("ca", ["test-ca", "other-ca"])
def test_dsql_sslmode_defaults_to_verify_full(make_pooler, certs, make_front, home, ca):
    """A DSQL alias without sslmode (and no server_tls_sslmode) loads, and its TLS is verify-full:
    it logs in when server_tls_ca_file is the test CA, and refuses the server when it is an
    unrelated CA (so no token is ever sent)."""
    front = make_front(mode="dsql", aws_keys={AKID: SECRET})
    dbs = {ALIAS: alias_connstr(front, "dsql", user=None, dbname=None, sslmode=None)}
    s = {"pool_mode": "transaction", "server_login_retry": 1,
         "server_tls_ca_file": certs.ca_crt if ca == "test-ca" else certs.other_ca_crt}
    p = make_pooler(settings=s, databases=dbs, extra_lines=cred_lines("aws", {"type": "aws-default"}),
                    env=pooler_env(home, AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET), start=False)
    res = pooler_mod.run_check(p.ini)
    assert res.returncode == 0, "the DSQL alias without sslmode is refused: %s%s" % (res.stdout, res.stderr)
    p.start()
    if ca == "test-ca":
        expect_query_through(p, front, want_db="postgres")
    else:
        e, msg = expect_client_error(p)
        assert re.search(r"(?i)certificate|verif", msg), msg
        assert front.stats()["accepted_logins"] == 0 and front.stats()["rejected_logins"] == 0
        assert not front.rec.accepted and not front.rec.rejected


# ------------------------------------------------ 2. DSQL connection age under pgbench
PGBENCH_SECONDS = 90


def test_dsql_pgbench_connection_age_below_cap(make_pooler, certs, make_front, home, bench_db):
    """90 s of pgbench -S (10 clients, 5 servers, transaction pooling) against a DSQL front that
    ends any connection older than 20 s: server_lifetime=15 retires servers first, so no
    transaction fails and PgFront never has to cut a connection."""
    front = make_front(mode="dsql", aws_keys={AKID: SECRET}, max_age=20)
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-default"}, home, kind="dsql", user="admin",
                   dbname=bench_db, db_extra="server_lifetime=15", settings={"default_pool_size": 5},
                   env={"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET})
    run = Pgbench(p.port, ALIAS, ALICE, ALICE_PW,
                  ["-n", "-S", "-c", "10", "-j", "2", "-T", str(PGBENCH_SECONDS)]).start()
    res = run.result(timeout=PGBENCH_SECONDS + 60)
    stats = front.stats()
    print("pgbench: %d transactions, %s failed; PgFront: %d logins accepted, %d rejected, max connection "
          "age %.1f s (cap 20 s, server_lifetime 15 s), %d closed by max_age" % (
              res.processed or 0, res.failed, stats["accepted_logins"], stats["rejected_logins"],
              stats["max_age_observed"], stats["closed_by_max_age"]))
    ok, why = res.ok()
    assert ok, why
    assert res.failed == 0
    assert stats["closed_by_max_age"] == 0, stats
    assert stats["max_age_observed"] < 20, stats
    assert stats["rejected_logins"] == 0, front.rejections
    # 90 s of 5 servers retired at <= 15 s: at least 5 * 5 logins
    assert stats["accepted_logins"] >= 25, stats
    assert all(a["action"] == "DbConnectAdmin" for a in front.rec.accepted)


# ------------------------------------------------ 3. credentials expiring during a run
LOAD_SECONDS = 60


def test_expiring_container_credentials_refreshed_under_load(make_pooler, certs, make_front, standins, home,
                                                              bench_db):
    """Container credentials that live 40 s (background refresh at 20 s of age) during 60 s of
    pgbench with servers retired every ~3 s: no failed transaction, no rejected token, several
    credentials issued and used, and the RDS token re-minted."""
    s = standins(aws_container.AwsContainerStandIn(ttl=40))
    front = make_front()
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-container"}, home, dbname=bench_db,
                   db_extra="server_lifetime=3", settings={"default_pool_size": 2},
                   env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": s.full_uri})
    run = Pgbench(p.port, ALIAS, ALICE, ALICE_PW, ["-n", "-S", "-c", "4", "-j", "2", "-T", str(LOAD_SECONDS)]).start()
    res = run.result(timeout=LOAD_SECONDS + 60)
    akids = front.rec.akids()
    dates = {token_params(a["token"])[1]["X-Amz-Date"] for a in front.rec.accepted}
    tokens = {a["token"] for a in front.rec.accepted}
    print("pgbench: %d transactions, %s failed; container credentials issued: %d; PgFront logins %d with "
          "%d distinct keys, %d distinct tokens, %d X-Amz-Date values; rejected %d" % (
              res.processed or 0, res.failed, len(s.issued), len(akids), len(set(akids)), len(tokens),
              len(dates), len(front.rec.rejected)))
    ok, why = res.ok()
    assert ok, why
    assert res.failed == 0
    assert not front.rec.rejected, front.rec.rejected[:3]
    assert len(s.issued) >= 2, s.issued
    assert len(s.issued) <= LOAD_SECONDS // 10 + 2, "credentials fetched far more often than needed: %s" % s.issued
    assert len(set(akids)) >= 2, "every login used the first credentials: %s" % sorted(set(akids))
    assert len(tokens) >= 2 and len(dates) >= 2
    assert all(r["status"] == 200 for r in s.requests())
    assert "refreshing AWS credentials failed" not in p.log_text()


# ------------------------------------------------ 4. STS outage while the credentials are valid
def test_sts_down_cached_credentials_keep_working(make_pooler, certs, make_front, standins, home, tmp_path):
    """Web identity credentials of 36 s; after the first fetch STS answers 503 to everything.
    The background refresh (from 18 s of age, retried up to 5 times) fails, but the cached
    credentials stay in use: server logins (server_lifetime=1, session mode, one client after
    another) keep working from the first fetch until 6 s after the first refused refresh (the
    mandatory window, where callers would wait for STS, starts at 30 s)."""
    tok_file = write_file(tmp_path / "web-identity-token", aws_sts.DEFAULT_WEB_IDENTITY_TOKEN)
    sts = standins(aws_sts.AwsStsStandIn(ttl=36))
    front = make_front()
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-web-identity", "role_arn": ROLE_ARN,
                                               "token_file": tok_file}, home,
                   env={"AWS_ENDPOINT_URL_STS": sts.url}, db_extra="server_lifetime=1",
                   settings={"pool_mode": "session"})
    first = sts.wait_requests(1, timeout=10, method="POST")[0]
    sts.add_fault(status=503, count=None)
    t0 = first["mono"]
    logins_before = len(front.rec.accepted)
    failures, attempts = [], 0
    refused_at = None
    while True:
        now = time.monotonic()
        if now - t0 > 29 or (refused_at is not None and now - refused_at > 6):
            break
        attempts += 1
        try:
            with connect(p) as c:
                assert c.execute("select 1").fetchone() == (1,)
        except psycopg.Error as e:
            failures.append("%.1f s: %s" % (now - t0, e))
        if refused_at is None and any(r["fault"] for r in sts.requests(method="POST")):
            refused_at = time.monotonic()
    churn = time.monotonic() - t0
    new_logins = len(front.rec.accepted) - logins_before
    # the failed refresh is reported once all its attempts have been refused
    p.wait_log(r"refreshing AWS credentials failed: .*; the cached ones stay in use"
               r"|token for alias \"%s\" \(credential aws\): .*the cached token stays in use" % ALIAS, 20)
    faulted = [r for r in sts.requests(method="POST") if r["fault"]]
    print("STS outage: %d client sessions over %.1f s (%.1f s after the first refused refresh), %d failed; "
          "%d new server logins; %d STS requests answered 503" % (
              attempts, churn, time.monotonic() - refused_at if refused_at else -1, len(failures), new_logins,
              len(faulted)))
    assert not failures, failures[:5]
    assert refused_at is not None, "the pooler did not try to refresh during the outage"
    assert new_logins >= 5, "only %d server logins during the outage" % new_logins
    assert len(sts.issued) == 1
    assert not front.rec.rejected


# ------------------------------------------------ 5. clear client errors
def expect_client_error(p, alias=ALIAS):
    """-> (SQLSTATE, message) of the error a client of alias gets; the message names the alias."""
    e = login_error(p, alias)
    msg = e.message
    assert 'server login failed for alias "%s"' % alias in msg, msg
    assert e.severity == "FATAL", e.fields
    return e.code, msg


def test_wrong_region_rejected_after_one_retry(make_pooler, certs, make_front, home):
    """The alias signs for eu-west-1, the endpoint expects us-east-1: PgFront rejects the token,
    the pooler retries once with a fresh one, then the client gets 28P01 naming the alias."""
    front = make_front(aws_keys={AKID: SECRET})
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-static"}, home,
                   env={"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET}, region="eu-west-1")
    e, msg = expect_client_error(p)
    assert e == "28P01", (e, msg)
    assert 'rejected a fresh RDS IAM token for alias "%s"' % ALIAS in msg, msg
    assert 'PAM authentication failed for user "%s"' % DB_USER in msg, msg
    assert len(front.rec.rejected) == 2, front.rec.rejected
    assert all("credential scope region 'eu-west-1'" in r["reason"] for r in front.rec.rejected), front.rejections
    assert not front.rec.accepted


def test_rejected_token_retried_once_transparently(make_pooler, certs, make_front, home):
    """The server refuses the first token once (28P01): the pooler drops it, mints a fresh one and
    logs in again; the client never sees the rejection."""
    seen = []

    def reject_first(token):
        seen.append(token)
        return len(seen) == 1
    front = make_front(aws_keys={AKID: SECRET}, reject=reject_first)
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-static"}, home,
                   env={"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET})
    assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    assert len(front.rec.rejected) == 1 and len(front.rec.accepted) == 1, (front.rec.rejected, front.rec.accepted)
    p.wait_log(r"server rejected the token .*; retrying once with a new one", 5)


@pytest.mark.parametrize("source", ["env", "process"])
def test_expired_credentials(make_pooler, certs, make_front, home, tmp_path, source):
    """Credentials whose Expiration has passed (AWS_CREDENTIAL_EXPIRATION, or a credential_process
    answer) are refused before any token is signed."""
    past = iso_utc(time.time() - 3600)
    front = make_front(aws_keys={AKID: SECRET})
    if source == "env":
        p = aws_pooler(make_pooler, certs, front, {"type": "aws-default"}, home, env={
            "AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_CREDENTIAL_EXPIRATION": past})
    else:
        out = write_file(tmp_path / "creds.json", json.dumps({
            "Version": 1, "AccessKeyId": AKID, "SecretAccessKey": SECRET, "Expiration": past}))
        script = write_file(tmp_path / "cred-proc.sh", '#!/bin/sh\ncat "%s"\n' % out, mode=0o700)
        p = aws_pooler(make_pooler, certs, front, {"type": "aws-process", "command": script}, home)
    e, msg = expect_client_error(p)
    assert 'could not obtain an RDS IAM token for alias "%s"' % ALIAS in msg, msg
    assert "already expired" in msg, msg
    assert past in msg, msg
    assert front.stats()["total_connections"] == 0, "the pooler connected without a token"


def test_denied_role(make_pooler, certs, make_front, standins, home, tmp_path):
    """STS refuses the role (403 AccessDenied): the client's message carries STS's code."""
    tok_file = write_file(tmp_path / "web-identity-token", aws_sts.DEFAULT_WEB_IDENTITY_TOKEN)
    sts = standins(aws_sts.AwsStsStandIn(role_arns=["arn:aws:iam::123456789012:role/some-other-role"]))
    front = make_front()
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-web-identity", "role_arn": ROLE_ARN,
                                               "token_file": tok_file}, home, env={"AWS_ENDPOINT_URL_STS": sts.url})
    e, msg = expect_client_error(p)
    assert 'could not obtain an RDS IAM token for alias "%s"' % ALIAS in msg, msg
    assert "AccessDenied" in msg, msg
    assert all(r["status"] == 403 for r in sts.requests(method="POST"))
    assert front.stats()["total_connections"] == 0


def test_no_credentials_at_all(make_pooler, certs, make_front, home):
    """aws-default with nothing to find (empty environment, no files, IMDS disabled), for RDS and
    DSQL aliases."""
    front = make_front()
    dfront = make_front(mode="dsql")
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-default"}, home,
                   databases={"ledger_dsql": alias_connstr(dfront, "dsql", user=None)})
    e, msg = expect_client_error(p)
    assert 'could not obtain an RDS IAM token for alias "%s"' % ALIAS in msg, msg
    assert "no AWS credentials found" in msg, msg
    e, msg = expect_client_error(p, "ledger_dsql")
    assert 'could not obtain an Aurora DSQL token for alias "ledger_dsql"' in msg, msg
    assert "no AWS credentials found" in msg, msg
    assert front.stats()["total_connections"] == 0 and dfront.stats()["total_connections"] == 0


# ------------------------------------------------ 6. tokenbouncer token ALIAS FILE.ini
def run_token_cmd(p, alias, extra=()):
    env = dict(os.environ)
    env.update(pooler_mod.SAN_ENV)
    env.update(p.env)
    return subprocess.run([pooler_mod.binary(), "token", alias] + list(extra) + [p.ini], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, env=env, cwd=p.workdir)


def test_token_command(make_pooler, certs, home, tmp_path):
    """`tokenbouncer token ALIAS FILE.ini` prints a token the RDS/DSQL verifier accepts now, and its
    expiry on stderr; the region comes from RDS / DSQL host names and a bare DSQL cluster id is
    expanded; for an alias without a token method (or no such alias) it exits 1 saying so."""
    port = free_port()

    class FakeFront:       # only the port is used in the [databases] entries
        pass
    ff = FakeFront()
    ff.port = port
    p = aws_pooler(make_pooler, certs, ff, {"type": "aws-default"}, home, start=False,
                   env={"AWS_ACCESS_KEY_ID": TMP_AKID, "AWS_SECRET_ACCESS_KEY": TMP_SECRET,
                        "AWS_SESSION_TOKEN": TMP_TOKEN},
                   databases={"ledger_dsql": alias_connstr(ff, "dsql", user="tb_reader"),
                              "plain": "host=127.0.0.1 port=%d dbname=app user=appuser password=x" % port,
                              "rds_named": "host=mydb.c1a2b3.eu-west-1.rds.amazonaws.com port=5432 dbname=app "
                                           "user=%s auth=aws-rds credential=aws sslmode=require" % DB_USER,
                              "dsql_named": "host=abcdefghijklmnopqrstuvwxyz.dsql.us-east-2.on.aws auth=aws-dsql "
                                            "credential=aws sslmode=verify-full",
                              "dsql_id": "host=zyxwvutsrqponmlkjihgfedcba auth=aws-dsql credential=aws "
                                         "region=ap-south-1 sslmode=verify-full"})
    keys = {TMP_AKID: (TMP_SECRET, TMP_TOKEN)}
    res = run_token_cmd(p, ALIAS)
    assert res.returncode == 0, res.stderr
    token = res.stdout.strip()
    assert len(res.stdout.splitlines()) == 1
    info = verify_presigned(token, "%s:%d" % (HOST, port), keys, time.time(), "rds", REGION, DB_USER)
    assert info["akid"] == TMP_AKID and info["dbuser"] == DB_USER
    assert token not in res.stderr
    m = re.search(r"expires (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) \(in (\d+) s\)", res.stderr)
    assert m, res.stderr
    assert m.group(1) == iso_utc(info["expires_at"]) and 880 <= int(m.group(2)) <= 900, (res.stderr, info)
    res = run_token_cmd(p, "ledger_dsql")
    assert res.returncode == 0, res.stderr
    info = verify_presigned(res.stdout.strip(), HOST, keys, time.time(), "dsql", REGION, "tb_reader")
    assert info["action"] == "DbConnect"
    # region and host from AWS host names (token only: these names are never connected to)
    for alias, host, flavor, region, user in (
            ("rds_named", "mydb.c1a2b3.eu-west-1.rds.amazonaws.com:5432", "rds", "eu-west-1", DB_USER),
            ("dsql_named", "abcdefghijklmnopqrstuvwxyz.dsql.us-east-2.on.aws", "dsql", "us-east-2", "admin"),
            ("dsql_id", "zyxwvutsrqponmlkjihgfedcba.dsql.ap-south-1.on.aws", "dsql", "ap-south-1", "admin")):
        res = run_token_cmd(p, alias)
        assert res.returncode == 0, (alias, res.stderr)
        tok = res.stdout.strip()
        assert tok.startswith(host + "/?"), (alias, tok)
        info = verify_presigned(tok, host, keys, time.time(), flavor, region, user)
        assert info["region"] == region
    res = run_token_cmd(p, "plain")
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert res.stdout == ""
    assert 'alias "plain" does not use a token' in res.stderr, res.stderr
    res = run_token_cmd(p, "nosuchalias")
    assert res.returncode == 1 and 'alias "nosuchalias" is not in [databases]' in res.stderr, res.stderr
    for r in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert r not in res.stderr


# ------------------------------------------------ 7. no secrets in the log
def test_no_secrets_in_verbose_log(make_pooler, certs, make_front, standins, home, tmp_path):
    """verbose=2, one alias per source (environment with a session token, container with an
    authorization token, web identity, credential_process, IMDS) plus a DSQL alias: neither the
    secret keys, the session tokens, the web identity / container authorization tokens nor any
    minted database token (or its signature) appears in the pooler's output."""
    cont_auth = "tb-container-auth-SECRET-4711"
    cont = standins(aws_container.AwsContainerStandIn(auth_token=cont_auth))
    web_tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0Yi13ZWItc2VjcmV0In0.web-identity-SECRET-0815"
    tok_file = write_file(tmp_path / "web-identity-token", web_tok)
    sts = standins(aws_sts.AwsStsStandIn(web_identity_token_file=tok_file))
    imds = standins(aws_imds.AwsImdsStandIn())
    pc = mint_credentials("PROC", 9, time.time() + 3600)
    out = write_file(tmp_path / "creds.json", json.dumps({
        "Version": 1, "AccessKeyId": pc["AccessKeyId"], "SecretAccessKey": pc["SecretAccessKey"],
        "SessionToken": pc["Token"], "Expiration": pc["Expiration"]}))
    script = write_file(tmp_path / "cred-proc.sh", '#!/bin/sh\ncat "%s"\n' % out, mode=0o700)
    front = make_front(aws_keys={TMP_AKID: (TMP_SECRET, TMP_TOKEN)})
    dfront = make_front(mode="dsql", aws_keys={TMP_AKID: (TMP_SECRET, TMP_TOKEN)})
    aliases = {"a_container": "cont", "a_web": "web", "a_process": "proc", "a_imds": "imds"}
    dbs = {a: alias_connstr(front, cred=c) for a, c in aliases.items()}
    dbs["a_dsql"] = alias_connstr(dfront, "dsql", user=None, dbname=APP_DB)
    dbs["a_wrong_region"] = alias_connstr(front, region="eu-west-1")     # rejected twice: error paths
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-static"}, home, databases=dbs,
                   creds_extra={"cont": {"type": "aws-container"},
                                "web": {"type": "aws-web-identity", "role_arn": ROLE_ARN, "token_file": tok_file},
                                "proc": {"type": "aws-process", "command": script},
                                "imds": {"type": "aws-imds"}},
                   settings={"verbose": 2},
                   env={"AWS_ACCESS_KEY_ID": TMP_AKID, "AWS_SECRET_ACCESS_KEY": TMP_SECRET,
                        "AWS_SESSION_TOKEN": TMP_TOKEN, "AWS_CONTAINER_CREDENTIALS_FULL_URI": cont.full_uri,
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN": cont_auth, "AWS_ENDPOINT_URL_STS": sts.url,
                        "AWS_EC2_METADATA_DISABLED": "", "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url + "/"})
    for a in [ALIAS] + list(aliases):
        assert psql_ok(p, db=a) == "%s|%s" % (APP_USER, APP_DB)
    assert psql_ok(p, db="a_dsql") == "%s|%s" % (APP_USER, APP_DB)
    assert len(front.rec.accepted) == 5 and len(dfront.rec.accepted) == 1, (front.rec.accepted, front.rejections)
    code, msg = expect_client_error(p, "a_wrong_region")
    assert code == "28P01" and len(front.rec.rejected) == 2, (code, msg, front.rec.rejected)
    secrets = {"env secret key": TMP_SECRET, "env session token": TMP_TOKEN,
               "container authorization token": cont_auth, "web identity token": web_tok,
               "process secret key": pc["SecretAccessKey"], "process session token": pc["Token"]}
    for name, src, issued in (("container", "ECSC", cont.issued), ("sts", "STSW", sts.issued),
                              ("imds", "IMDS", imds.issued)):
        assert issued, name
        for i in issued:
            c = minted(src, i)
            secrets["%s secret key #%d" % (name, i["n"])] = c["SecretAccessKey"]
            secrets["%s session token #%d" % (name, i["n"])] = c["Token"]
    for i, acc in enumerate(front.rec.accepted + dfront.rec.accepted + front.rec.rejected):
        secrets["db token #%d" % i] = acc["token"]
        secrets["db token #%d signature" % i] = token_params(acc["token"])[1]["X-Amz-Signature"]
    p.stop()
    log = p.log_text()
    assert " DEBUG " in log or " NOISE " in log, "verbose=2 wrote no debug lines:\n" + log[-2000:]
    leaks = []
    for name, value in secrets.items():
        for form in {value, urllib.parse.quote(value, safe=""), urllib.parse.quote(value, safe="/")}:
            if form in log:
                leaks.append(name)
    # the secret halves of session tokens and signatures, in case they are logged in pieces
    for name, value in secrets.items():
        if "session token" in name and "/" in value and value.startswith("tok-"):
            mac = value.split("/", 2)[2]
            if mac in log:
                leaks.append(name + " (mac)")
    assert not leaks, "secrets in the verbose=2 log: %s" % sorted(set(leaks))
    assert "X-Amz-Signature=" not in log and "X-Amz-Security-Token=" not in log


# ------------------------------------------------------------------------ replication through a token alias
def test_replication_through_rds_token_alias(make_pooler, certs, make_front, home, pg):
    """A replication=database client of an RDS token alias: the pooler opens its dedicated
    server with a freshly signed token over TLS and the replication parameter, the front passes
    it on, and the session runs replication commands (IDENTIFY_SYSTEM) on a walsender."""
    import rawpg
    role = "repl_aws_%d" % os.getpid()
    pg.create_role(role, APP_PW, extra="REPLICATION")
    front = make_front(aws_keys={AKID: SECRET}, upstream_user=role, upstream_password=APP_PW)
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-default"}, home,
                   env={"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET})
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, ALIAS, ALICE_PW, replication="database")
    try:
        r = c.query_ok("IDENTIFY_SYSTEM")
        assert r.columns[:2] == ["systemid", "timeline"], r.columns
        assert pg.scalar("select count(*) from pg_stat_activity where usename = %s and "
                         "backend_type = 'walsender'", (role,)) == 1
    finally:
        c.close()
    assert front.rec.accepted and not front.rec.rejected, front.rejections
    check_rds_token(front.rec.accepted[-1], AKID)
    wait_for(lambda: pg.scalar("select count(*) from pg_stat_activity where usename = %s", (role,)) == 0,
             10, "the replication server to close with its client")
