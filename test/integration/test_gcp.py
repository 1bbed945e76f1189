"""Google Cloud SQL / AlloyDB manual IAM login end to end (spec/cloud-tokens.md §3, §5.10-5.12).

    psql / psycopg -> tokenbouncer -> PgFront(GoogleIamVerifier, TLS) -> real PostgreSQL 15
                            |
                            +-> Google token endpoint / GCE metadata / IAM Credentials stand-ins

PgFront accepts a password only if it is an unexpired access token the stand-ins issued, with the
alias's login scope (sqlservice.login or alloydb.login, or cloud-platform), for the database user
of §3.6; then it logs in to PostgreSQL as appuser. Waits poll; nothing sleeps a fixed time.
"""
import os
import re
import subprocess
import sys
import threading
import time

import pytest

import pooler as pooler_mod
from conftest import ALICE, ALICE_PW, APP_DB, APP_PW, APP_USER
from pgbench import Pgbench
from rawpg import scram_secret
from test_entra import connect, console, login_error, psql_ok
from util import wait_for

STANDINS = os.path.join(pooler_mod.REPO_ROOT, "test", "standins")
if STANDINS not in sys.path:
    sys.path.insert(0, STANDINS)

import gcp_identity as google  # noqa: E402
import pgfront  # noqa: E402
from standin_base import token_counter  # noqa: E402

ALIAS = "orders"
SA_USER = google.db_user(google.DEFAULT_SA)           # tb-sa@tb-project.iam
GCE_USER = google.db_user(google.DEFAULT_GCE_SA)
TARGET = "target-sa@tb-project.iam.gserviceaccount.com"
GCP_ENV = ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "GCE_METADATA_HOST", "GCE_METADATA_IP",
           "GCE_METADATA_ROOT", "NO_GCE_CHECK", "GOOGLE_CLOUD_QUOTA_PROJECT")


@pytest.fixture(autouse=True)
def _tokenbouncer_only():
    pooler_mod.tokenbouncer_only("Google IAM tokens are tokenbouncer-only")


class World:
    """The Google stand-ins of one test, sharing one issuer, and the database front."""

    def __init__(self, pg, certs, tmp_path, ttl=3599, login_scope=google.SQL_LOGIN):
        self.tmp = tmp_path
        self.issuer = google.GoogleIssuer()
        self.token = google.GoogleTokenStandIn(issuer=self.issuer, ttl=ttl).start()
        self.sa = google.make_service_account_file(str(tmp_path / "sa.json"), token_uri=self.token.token_url)
        self.token.add_service_account(google.DEFAULT_SA, self.sa)
        self.metadata = google.GceMetadataStandIn(issuer=self.issuer, ttl=ttl).start()
        self.iam = google.IamCredentialsStandIn(issuer=self.issuer, grants={TARGET: [google.DEFAULT_SA]}).start()
        self.verifier = google.GoogleIamVerifier(self.issuer, login_scope)
        self.front = pgfront.PgFront(certs.server_crt, certs.server_key, upstream_port=pg.port,
                                     upstream_user=APP_USER, upstream_password=APP_PW, mode=self.verifier)
        self.front.start()

    def stop(self):
        self.front.stop()
        for s in (self.token, self.metadata, self.iam):
            s.stop()

    def grants(self):
        return self.token.requests(path="/token", method="POST")

    def accepted_users(self):
        return [a["user"] for a in self.verifier.accepted]


@pytest.fixture
def world(pg, certs, tmp_path):
    made = []

    def make(**kw):
        w = World(pg, certs, tmp_path, **kw)
        made.append(w)
        return w
    yield make
    for w in made:
        w.stop()


def gcp_pooler(make_pooler, certs, w, cred, auth="cloudsql", user=None, env=None, settings=None, db_extra="",
               creds_extra=None, users=None, start=True, where=None, dbname=APP_DB):
    where = where or "host=127.0.0.1 port=%d" % w.front.port
    db = "%s dbname=%s auth=%s credential=app" % (where, dbname, auth)
    if user:
        db += " user=%s" % user
    if db_extra:
        db += " " + db_extra
    s = {"pool_mode": "transaction", "server_tls_sslmode": "verify-full", "server_tls_ca_file": certs.ca_crt,
         "server_login_retry": 1}
    s.update(settings or {})
    lines = ["", "[credential.app]"] + ["%s = %s" % kv for kv in cred.items()]
    for name, c in (creds_extra or {}).items():
        lines += ["", "[credential.%s]" % name] + ["%s = %s" % kv for kv in c.items()]
    e = {k: "" for k in GCP_ENV}
    e["HOME"] = str(w.tmp)                # no ~/.config/gcloud of the test runner
    e.update(env or {})
    return make_pooler(settings=s, databases={ALIAS: db}, extra_lines=lines, env=e, start=start, users=users)


def expect_login(p, w, user):
    assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    assert w.front.stats()["rejected_logins"] == 0, w.front.rejections
    assert w.accepted_users() and set(w.accepted_users()) == {user}, w.accepted_users()


def sa_cred(w):
    return {"type": "gcp-service-account", "key_file": str(w.tmp / "sa.json")}


# ------------------------------------------------------------------ 1. every credential type
def test_service_account_key_user_from_email(make_pooler, certs, world):
    """JWT-bearer grant (§3.3.1) to the key file's token_uri; no user=: the service account's
    e-mail without .gserviceaccount.com (§3.6)."""
    w = world()
    p = gcp_pooler(make_pooler, certs, w, sa_cred(w))
    expect_login(p, w, SA_USER)
    grants = w.grants()
    assert len(grants) == 1
    assert grants[0].form1("grant_type") == google.JWT_BEARER
    header, claims = w.token.assertions[0]
    assert header == {"typ": "JWT", "alg": "RS256", "kid": "tb-key-1"}
    assert claims["aud"] == google.JWT_AUDIENCE and claims["iss"] == google.DEFAULT_SA
    assert claims["scope"] == google.SQL_LOGIN and claims["exp"] - claims["iat"] == 3600


def test_authorized_user_file(make_pooler, certs, world, tmp_path):
    """Refresh-token grant (§3.3.2) to the configured token_uri (the file's is ignored); a rotated
    refresh token is used from then on."""
    w = world(ttl=6)
    w.token.configure(rotate_refresh=True)
    path = str(tmp_path / "user.json")
    google.make_authorized_user_file(path, dict(google.DEFAULT_USER, token_uri="http://127.0.0.1:1/ignored"))
    p = gcp_pooler(make_pooler, certs, w, {"type": "gcp-authorized-user", "file": path,
                                           "token_uri": w.token.token_url}, user="alice@example.com")
    expect_login(p, w, "alice@example.com")
    first = w.grants()[0]
    assert first.form1("grant_type") == "refresh_token" and first.form1("scope") == google.SQL_LOGIN
    assert first.form1("refresh_token") == google.DEFAULT_USER["refresh_token"]
    # a 6 s token is refreshed at 3 s of age with the rotated refresh token
    wait_for(lambda: len(w.grants()) >= 2, 15, "a refresh of the 6 s token")
    second = w.grants()[1]
    assert second["status"] == 200, second["body"]
    assert second.form1("refresh_token") != google.DEFAULT_USER["refresh_token"]


METADATA_EMAIL = "/computeMetadata/v1/instance/service-accounts/default/email"


def test_metadata_server_user_from_the_vm_email(make_pooler, certs, world):
    """gcp-metadata without user=: the service account's e-mail, asked once from the metadata
    server, names the IAM user (minus .gserviceaccount.com, §3.6); no detection ping."""
    w = world()
    p = gcp_pooler(make_pooler, certs, w, {"type": "gcp-metadata"}, env={"GCE_METADATA_HOST": w.metadata.hostport},
                   settings={"admin_users": ALICE})
    expect_login(p, w, GCE_USER)
    toks = w.metadata.requests(path="/computeMetadata/v1/instance/service-accounts/default/token")
    assert len(toks) == 1 and toks[0].header("Metadata-Flavor") == "Google"
    assert w.metadata.scope_requests == [[google.SQL_LOGIN]]
    paths = [r["path"] for r in w.metadata.requests()]
    assert paths == [METADATA_EMAIL, toks[0]["path"]], paths
    assert 'upstream user "%s" taken from the credential\'s e-mail' % GCE_USER in p.log_text()
    cols, rows = console(p, "SHOW TOKENS")
    assert len(rows) == 1, rows


def test_metadata_server_without_email_names_the_cause(make_pooler, certs, world):
    """A 503 for the e-mail is retried as §3.4 says; a 404 is final and the error asks for user=."""
    w = world()
    w.metadata.add_fault(status=503, count=1, path=METADATA_EMAIL)
    p0 = gcp_pooler(make_pooler, certs, w, {"type": "gcp-metadata"}, env={"GCE_METADATA_HOST": w.metadata.hostport})
    expect_login(p0, w, GCE_USER)
    assert [r["status"] for r in w.metadata.requests(path=METADATA_EMAIL)] == [503, 200]
    w.metadata.add_fault(status=404, count=None, path=METADATA_EMAIL)
    p = gcp_pooler(make_pooler, certs, w, {"type": "gcp-metadata"}, env={"GCE_METADATA_HOST": w.metadata.hostport})
    err = login_error(p)
    assert 'alias "orders"' in err and "did not tell the service account's e-mail (status 404); set user=" in err, err
    # with user= the token alone serves
    p2 = gcp_pooler(make_pooler, certs, w, {"type": "gcp-metadata"}, user=GCE_USER,
                    env={"GCE_METADATA_HOST": w.metadata.hostport})
    expect_login(p2, w, GCE_USER)


def test_impersonation_from_another_credential(make_pooler, certs, world):
    """gcp-impersonate with source= a service-account credential: a cloud-platform source token,
    then generateAccessToken for the target with the login scope (§3.3.3); the user is the target's."""
    w = world()
    p = gcp_pooler(make_pooler, certs, w, {"type": "gcp-impersonate", "target_principal": TARGET,
                                           "source": "sa", "lifetime": "900", "delegates": "d1@p.iam.gserviceaccount.com",
                                           "iam_credentials_endpoint": w.iam.url},
                   creds_extra={"sa": sa_cred(w)})
    expect_login(p, w, google.db_user(TARGET))
    assert [c["scope"] for _, c in w.token.assertions] == [google.CLOUD_PLATFORM]
    calls = w.iam.requests(method="POST")
    assert len(calls) == 1
    body = calls[0].json()
    assert body == {"delegates": ["projects/-/serviceAccounts/d1@p.iam.gserviceaccount.com"],
                    "scope": [google.SQL_LOGIN], "lifetime": "900s"}
    assert calls[0].header("Authorization").startswith("Bearer ya29.c.tok-")


def test_impersonation_reuses_the_source_token(make_pooler, certs, world):
    """Impersonated tokens that live 6 s are refreshed every ~3 s; the source token (an hour) is
    fetched once and reused for every generateAccessToken until its own refresh point."""
    w = world()
    p = gcp_pooler(make_pooler, certs, w, {"type": "gcp-impersonate", "target_principal": TARGET,
                                           "source": "sa", "lifetime": "6", "iam_credentials_endpoint": w.iam.url},
                   creds_extra={"sa": sa_cred(w)})
    expect_login(p, w, google.db_user(TARGET))
    wait_for(lambda: len(w.iam.requests(method="POST")) >= 3, 20, "three impersonations of the 6 s token")
    calls = w.iam.requests(method="POST")
    print("impersonation: %d generateAccessToken calls, %d source grants" % (len(calls), len(w.grants())))
    assert all(r["status"] == 200 for r in calls), [r["body"] for r in calls]
    assert len({r.header("Authorization") for r in calls}) == 1, "one source token for every call"
    assert len(w.grants()) == 1
    assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)


def test_default_from_environment_key_file(make_pooler, certs, world):
    w = world()
    p = gcp_pooler(make_pooler, certs, w, {"type": "gcp-default"},
                   env={"GOOGLE_APPLICATION_CREDENTIALS": str(w.tmp / "sa.json")})
    expect_login(p, w, SA_USER)
    assert w.metadata.requests() == []


def test_default_gcloud_file_and_quota_project(make_pooler, certs, world, tmp_path):
    """The gcloud ADC file under CLOUDSDK_CONFIG: an impersonated_service_account file whose source
    is a gcloud user (§3.3.3), with quota_project_id sent as x-goog-user-project."""
    w = world()
    w.iam.grants[TARGET] = ["alice@example.com"]
    cfg = tmp_path / "gcloud"
    cfg.mkdir()
    google.write_json(str(cfg / "application_default_credentials.json"), {
        "type": "impersonated_service_account", "quota_project_id": "tb-quota",
        "service_account_impersonation_url": w.iam.url + "/v1/projects/-/serviceAccounts/%s:generateAccessToken" % TARGET,
        "delegates": [], "source_credentials": dict(google.DEFAULT_USER, type="authorized_user")})
    p = gcp_pooler(make_pooler, certs, w, {"type": "gcp-default", "token_uri": w.token.token_url},
                   env={"CLOUDSDK_CONFIG": str(cfg)})
    expect_login(p, w, google.db_user(TARGET))
    assert w.grants()[0].form1("scope") == google.CLOUD_PLATFORM
    call = w.iam.requests(method="POST")[0]
    assert call.header("x-goog-user-project") == "tb-quota"
    assert call.json()["scope"] == [google.SQL_LOGIN]


def test_default_falls_back_to_metadata_after_ping(make_pooler, certs, world):
    w = world()
    p = gcp_pooler(make_pooler, certs, w, {"type": "gcp-default"}, user=GCE_USER,
                   env={"GCE_METADATA_HOST": w.metadata.hostport, "GCE_METADATA_IP": w.metadata.hostport})
    expect_login(p, w, GCE_USER)
    paths = [r["path"] for r in w.metadata.requests()]
    assert paths[0] == "/" and paths[1] == METADATA_EMAIL and paths[2].endswith("/token"), paths
    assert all(r.header("Metadata-Flavor") == "Google" for r in w.metadata.requests())


def test_alloydb_manual_iam(make_pooler, certs, world):
    w = world(login_scope=google.ALLOYDB_LOGIN)
    p = gcp_pooler(make_pooler, certs, w, sa_cred(w), auth="alloydb")
    expect_login(p, w, SA_USER)
    assert w.token.assertions[0][1]["scope"] == google.ALLOYDB_LOGIN


# ------------------------------------------------------------------ 2. errors people can act on
def test_errors_name_the_alias_and_cause(make_pooler, certs, world, tmp_path):
    w = world()
    # external_account is refused when the configuration is loaded
    ext = str(tmp_path / "ext.json")
    google.write_json(ext, {"type": "external_account", "audience": "x"})
    bad = gcp_pooler(make_pooler, certs, w, {"type": "gcp-authorized-user", "file": ext}, start=False)
    bad.write_files()
    res = pooler_mod.run_check(bad.ini)
    assert res.returncode == 1 and "external_account (workload identity federation) is not supported" in res.stderr, \
        res.stderr
    # nothing found by gcp-default
    p = gcp_pooler(make_pooler, certs, w, {"type": "gcp-default"}, user=GCE_USER, env={"NO_GCE_CHECK": "true"},
                   settings={"admin_users": ALICE})
    err = login_error(p)
    assert 'alias "orders"' in err and "gcp-default found no credentials" in err, err
    # a key the token endpoint does not know: invalid_grant, once in the log, in SHOW TOKENS
    other = google.make_service_account_file(str(tmp_path / "other.json"), token_uri=w.token.token_url)
    p2 = gcp_pooler(make_pooler, certs, w, {"type": "gcp-service-account", "key_file": str(tmp_path / "other.json")},
                    settings={"admin_users": ALICE})
    err = login_error(p2)
    assert 'alias "orders"' in err and "invalid_grant" in err and "Invalid JWT Signature" in err, err
    cols, rows = console(p2, "SHOW TOKENS")
    row = dict(zip(cols, rows[0]))
    assert row["provider"] == "cloudsql" and "invalid_grant" in row["last_error"], row
    assert other["private_key"] not in p2.log_text()
    # the database refuses the token (wrong user for the identity)
    p3 = gcp_pooler(make_pooler, certs, w, sa_cred(w), user="someone-else")
    err = login_error(p3)
    assert "Cloud SQL IAM user authentication failed" in err, err
    assert w.front.rejections and "IAM user" in w.front.rejections[-1]["reason"]


def test_token_endpoint_retries_then_succeeds(make_pooler, certs, world):
    """Two 503s are retried (§3.5: 3 attempts, 1 s then 2 s); the client only waits."""
    w = world()
    w.token.add_fault(status=503, count=2)
    p = gcp_pooler(make_pooler, certs, w, sa_cred(w))
    expect_login(p, w, SA_USER)
    statuses = [r["status"] for r in w.grants()]
    assert statuses == [503, 503, 200], statuses
    gaps = [b["mono"] - a["mono"] for a, b in zip(w.grants(), w.grants()[1:])]
    assert 0.8 <= gaps[0] <= 1.6 and 1.6 <= gaps[1] <= 3.0, gaps


def test_token_endpoint_down_while_token_valid(make_pooler, certs, world):
    """With 20 s tokens and the token endpoint answering 500 from just after the first token, new
    server logins keep working on the cached token until its hard margin; 0 failed logins."""
    w = world(ttl=20)
    p = gcp_pooler(make_pooler, certs, w, sa_cred(w), db_extra="server_lifetime=1",
                   settings={"pool_mode": "session"})
    expect_login(p, w, SA_USER)
    w.token.add_fault(status=500, count=None)
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 12:           # past the 10 s refresh point, before the ~3 s hard margin
        with connect(p) as c:
            assert c.execute("select 1").fetchone() == (1,)
        n += 1
        time.sleep(0.3)
    assert n >= 20
    assert w.front.stats()["accepted_logins"] >= 5 and w.front.stats()["rejected_logins"] == 0
    assert [r["status"] for r in w.grants()].count(500) >= 1, "the refresh was never attempted"
    assert len(w.issuer.issued()) == 1


# ------------------------------------------------------------------ 3. cold cache, many clients
def test_cold_cache_200_clients_one_grant(make_pooler, certs, world):
    """An alias without user= on the metadata server: its user comes with the first token (the
    VM's e-mail), and 200 clients at once while that is slow cause exactly one token request."""
    w = world()
    w.metadata.add_fault(kind="delay", delay=1.0, count=None, path="/computeMetadata/v1/instance/service-accounts")
    p = gcp_pooler(make_pooler, certs, w, {"type": "gcp-metadata"}, env={"GCE_METADATA_HOST": w.metadata.hostport},
                   settings={"auth_type": "trust", "default_pool_size": 20, "max_client_conn": 400},
                   users={GCE_USER: "", ALICE: scram_secret(ALICE_PW)})
    n = 200
    barrier = threading.Barrier(n)
    results = [None] * n

    def client(i):
        try:
            barrier.wait(30)
            with connect(p, GCE_USER, password=None) as c:
                results[i] = c.execute("select %s::int + 1", (i,)).fetchone()
        except Exception as ex:  # noqa: BLE001 - reported below
            results[i] = ex

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 90
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads)
    bad = [(i, r) for i, r in enumerate(results) if r != (i + 1,)]
    assert not bad, "%d of %d failed, e.g. %r" % (len(bad), n, bad[:3])
    toks = w.metadata.requests(path="/computeMetadata/v1/instance/service-accounts/default/token")
    print("200 cold clients: %d metadata token request(s); PgFront accepted %d logins" % (
        len(toks), w.front.stats()["accepted_logins"]))
    assert len(toks) == 1
    assert w.front.stats()["accepted_logins"] <= 20


# ------------------------------------------------------------------ 4. secrets stay out of logs
def test_no_token_key_or_refresh_token_in_verbose_log(make_pooler, certs, world, tmp_path):
    w = world(ttl=4)
    path = str(tmp_path / "user.json")
    google.make_authorized_user_file(path)
    common = "host=127.0.0.1 port=%d dbname=%s auth=cloudsql server_lifetime=1" % (w.front.port, APP_DB)
    lines = ["", "[credential.sa]", "type = gcp-service-account", "key_file = " + str(w.tmp / "sa.json"),
             "", "[credential.user]", "type = gcp-authorized-user", "file = " + path, "token_uri = " + w.token.token_url,
             "", "[credential.imp]", "type = gcp-impersonate", "target_principal = " + TARGET, "source = sa",
             "iam_credentials_endpoint = " + w.iam.url]
    p = make_pooler(settings={"pool_mode": "session", "server_tls_sslmode": "verify-full",
                              "server_tls_ca_file": certs.ca_crt, "verbose": 2, "log_connections": 1},
                    databases={"sa": common + " credential=sa", "user": common + " credential=user user=alice@example.com",
                               "imp": common + " credential=imp"},
                    extra_lines=lines, env={k: "" for k in GCP_ENV})
    deadline = time.monotonic() + 7          # 4 s tokens: refreshed every ~2 s
    while time.monotonic() < deadline:
        for db in ("sa", "user", "imp"):
            with connect(p, db=db) as c:
                assert c.execute("select 1").fetchone() == (1,)
        time.sleep(0.2)
    p.stop()
    log = p.log_text()
    issued = [i["token"] for i in w.issuer.issued()]
    assert len(issued) >= 8, "too few refreshes to be a fair check"
    assert re.search(r"(?i)debug", log)
    leaks = [("token tok-%s" % token_counter(t)) for t in issued if t in log or t[-20:] in log]
    key_body = "".join(w.sa["private_key"].splitlines()[1:-1])
    for secret, what in ((google.DEFAULT_USER["refresh_token"], "refresh token"),
                         (google.DEFAULT_USER["client_secret"], "client secret"),
                         (key_body[:40], "private key"), (key_body[-40:], "private key tail")):
        if secret in log:
            leaks.append(what)
    assert not leaks, "found in the pooler log: %s" % ", ".join(leaks)


# ================================================================== Cloud SQL connector mode (§3.8)
import cloudsql  # noqa: E402
from util import free_port  # noqa: E402

DB_PASSWORD_USER = "orders_pw_user"
DB_PASSWORD = "orders-db-password"


class Connector:
    """A Cloud SQL instance: Admin API stand-in and the server-side proxy (TLS 1.3, client
    certificates from the instance CA), listening on 127.0.0.1 (PUBLIC) and 127.0.0.2 (PRIVATE)."""

    def __init__(self, w, pg, certs, cert_ttl=3600, tls12_only=False, server_cn=None, **inst_kw):
        self.w = w
        self.inst = cloudsql.CloudSqlInstance(cert_ttl=cert_ttl, server_cn=server_cn, **inst_kw)
        self.admin = cloudsql.SqlAdminStandIn(instances=[self.inst], issuer=w.issuer).start()
        self.verifier = cloudsql.CloudSqlVerifier(self.inst, w.issuer, {DB_PASSWORD_USER: DB_PASSWORD})
        self.port = free_port()
        if tls12_only:
            self.proxy = cloudsql.Tls12OnlyServer(self.inst, hosts=("127.0.0.1", "127.0.0.2"), port=self.port)
        else:
            self.proxy = pgfront.PgFront(certs.server_crt, certs.server_key, upstream_port=pg.port,
                                         upstream_user=APP_USER, upstream_password=APP_PW, mode=self.verifier,
                                         port=self.port, direct_tls=cloudsql.proxy_context(self.inst),
                                         hosts=("127.0.0.1", "127.0.0.2"))
        self.proxy.start()

    def stop(self):
        self.proxy.stop()
        self.admin.stop()

    def settings_calls(self):
        return self.admin.requests(path="/sql/v1beta4/projects/tb-project/instances/orders/connectSettings")

    def cert_calls(self):
        return self.admin.requests(path="/sql/v1beta4/projects/tb-project/instances/orders:generateEphemeralCert")


@pytest.fixture
def connector(world, pg, certs):
    made = []

    def make(w=None, **kw):
        c = Connector(w or world(), pg, certs, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()


def connector_pooler(make_pooler, certs, c, cred=None, iam=True, db_extra="", settings=None, user=None,
                     instance=None, client_user=False, **kw):
    where = "instance=%s port=%d sqladmin_api_endpoint=%s" % (instance or c.inst.connection_name, c.port, c.admin.url)
    extra = ""
    if iam:
        extra += " enable_iam_auth=1"
    else:
        extra += " password=%s" % DB_PASSWORD
        user = None if client_user else user or DB_PASSWORD_USER
    if db_extra:
        extra += " " + db_extra
    return gcp_pooler(make_pooler, certs, c.w, cred or sa_cred(c.w), user=user, db_extra=extra.strip(),
                      settings=settings, where=where, **kw)


def test_connector_automatic_iam_public(make_pooler, certs, connector):
    """connectSettings and generateEphemeralCert (with the login token) after one token grant that
    carries both scopes; TLS 1.3 to the PUBLIC address with the ephemeral certificate; the server
    logs the IAM user in without a password."""
    c = connector()
    p = connector_pooler(make_pooler, certs, c, settings={"verbose": 2})
    assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    assert [a["user"] for a in c.verifier.auto_logins] == [SA_USER]
    log = p.log_text()
    assert re.search(r"(?i)debug", log) and "new certificate" in log
    assert not [t for t in c.w.issuer.issued() if t["token"] in log or t["token"][-20:] in log], "a token in the log"
    assert "PRIVATE KEY" not in log and "BEGIN CERTIFICATE" not in log
    assert c.verifier.password_logins == [] and c.proxy.stats()["rejected_logins"] == 0, c.proxy.rejections
    assert len(c.w.grants()) == 1
    assert c.w.token.assertions[0][1]["scope"] == google.SQL_ADMIN + " " + google.SQL_LOGIN
    assert len(c.settings_calls()) == 1 and len(c.cert_calls()) == 1
    body = c.cert_calls()[0].json()
    assert body["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert c.w.issuer.lookup(body["access_token"])["principal"] == google.DEFAULT_SA
    assert c.settings_calls()[0].header("Authorization").startswith("Bearer ya29.")
    # SHOW TOKENS lists the certificate entry with its expiry; tokenbouncer token prints it
    mport = free_port()
    p2 = connector_pooler(make_pooler, certs, c, settings={"admin_users": ALICE,
                                                          "metrics_listen": "127.0.0.1:%d" % mport})
    def token_row():
        cols, rows = console(p2, "SHOW TOKENS")
        row = dict(zip(cols, rows[0]))
        return row if row["state"] == "valid" else None
    row = wait_for(token_row, 15, "the prefetched certificate in SHOW TOKENS")
    assert row["provider"] == "cloudsql-connector" and 3500 < int(row["expires_in"]) <= 3600
    import urllib.request
    metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
    m = re.search(r'tokenbouncer_certificate_expires_in_seconds\{alias="orders",[^}]*provider="cloudsql-connector"'
                  r'[^}]*\} (\d+)', metrics)
    assert m and 3500 < int(m.group(1)) <= 3600, metrics[-2000:]
    env = dict(os.environ, **pooler_mod.SAN_ENV)
    res = subprocess.run([pooler_mod.binary(), "token", ALIAS, p2.ini], capture_output=True, text=True, timeout=60,
                         env=env, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("ya29.c.tok-"), res.stdout          # the login token in the certificate
    assert "CN=Google Cloud SQL Client" in res.stderr and "certificate expires" in res.stderr, res.stderr


def test_connector_password_private(make_pooler, certs, connector):
    """Without enable_iam_auth the server asks for the alias's password; ip_type=private dials the
    PRIVATE address (127.0.0.2)."""
    c = connector()
    c.admin.configure(quota_project="tb-quota")         # refuses calls that do not name it
    p = connector_pooler(make_pooler, certs, c, iam=False, db_extra="ip_type=private",
                         env={"GOOGLE_CLOUD_QUOTA_PROJECT": "tb-quota"})
    assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    calls = c.settings_calls() + c.cert_calls()
    assert len(calls) == 2 and {r.header("x-goog-user-project") for r in calls} == {"tb-quota"}
    assert c.verifier.password_logins == [DB_PASSWORD_USER] and c.verifier.auto_logins == []
    assert "access_token" not in c.cert_calls()[0].json()
    assert c.w.token.assertions[0][1]["scope"] == google.SQL_ADMIN
    peers = [r for r in c.proxy.rejections]
    assert peers == []


@pytest.mark.parametrize("case", ["region", "version", "no-psc", "tls12", "server-name", "no-instance", "iam-user"])
def test_connector_errors_name_alias_and_cause(make_pooler, certs, connector, case):
    """Each mistake reaches the client as an ErrorResponse naming the alias and the cause, and
    SHOW TOKENS keeps the last error of the Admin API ones."""
    kw = {"tls12": {"tls12_only": True}, "server-name": {"server_cn": "other-project:other"}}.get(case, {})
    c = connector(**kw)
    extra, instance, user = "", None, None
    if case == "region":
        c.admin.configure(region="europe-west1")
    elif case == "version":
        c.admin.configure(version="MYSQL_8_0")
    elif case == "no-psc":
        extra = "ip_type=psc"
    elif case == "no-instance":
        instance = "tb-project:us-central1:missing"
    elif case == "iam-user":
        user = "someone@example.com"
    p = connector_pooler(make_pooler, certs, c, db_extra=extra, instance=instance, user=user,
                         settings={"admin_users": ALICE})
    err = login_error(p)
    needle = {"region": "region europe-west1, not us-central1", "version": "runs MYSQL_8_0, not PostgreSQL",
              "no-psc": "no PSC address (ip_type=psc)",
              "tls12": "offers only TLS 1.2 or older, and connector mode requires TLS 1.3",
              "server-name": 'nor the instance "tb-project:orders"', "no-instance": "404",
              "iam-user": "Cloud SQL IAM user authentication failed"}[case]
    print("%s -> %s" % (case, err.strip()))
    assert 'alias "orders"' in err and needle in err, err
    if case == "tls12":
        assert "check that ip_type= and port= reach the instance's server-side proxy" in err, err
        assert c.proxy.handshakes and "UNSUPPORTED_PROTOCOL" in c.proxy.handshakes[0], c.proxy.handshakes
    if case in ("region", "version", "no-psc", "no-instance"):
        cols, rows = console(p, "SHOW TOKENS")
        assert needle in dict(zip(cols, rows[0]))["last_error"]
        assert c.proxy.stats()["total_connections"] == 0
    log = p.log_text()
    assert needle in log


def test_connector_forced_refresh_is_rate_limited(make_pooler, certs, connector):
    """A server that is not the instance (wrong name) makes every login fail in a way stale material
    could explain: each failure asks for a forced refresh, but only two go through at once, then one
    per 30 s (§3.8.4), so five failed logins in a few seconds cause exactly three certificates."""
    c = connector(server_cn="other-project:other")
    p = connector_pooler(make_pooler, certs, c, settings={"admin_users": ALICE, "server_login_retry": 0})

    def settled():
        cols, rows = console(p, "SHOW TOKENS")
        return dict(zip(cols, rows[0]))["state"] == "valid"
    for i in range(5):
        err = login_error(p)
        assert 'nor the instance "tb-project:orders"' in err, err
        wait_for(settled, 15, "the certificate entry between attempts")
        wait_for(lambda: len(c.cert_calls()) == len(c.inst.issued_certs), 15, "the certificate answered")
    forced = [line for line in p.log_text().splitlines() if "refreshing the certificate" in line]
    forced = len(set(forced))             # stderr and the log file may both hold a line
    print("5 failed logins: %d certificates, %d forced refreshes" % (len(c.cert_calls()), forced))
    assert len(c.cert_calls()) == 3 and forced == 2, (len(c.cert_calls()), forced)
    assert len(c.settings_calls()) == 3


def test_connector_cold_200_clients_one_grant_one_certificate(make_pooler, certs, connector):
    """200 clients at once against a cold connector alias (no user=, auth_type trust, the client's
    user): one token grant, one connectSettings, one certificate."""
    c = connector()
    c.admin.add_fault(kind="delay", delay=1.0, count=None)
    p = connector_pooler(make_pooler, certs, c, iam=False,
                         settings={"auth_type": "trust", "default_pool_size": 20, "max_client_conn": 400},
                         users={DB_PASSWORD_USER: "", ALICE: scram_secret(ALICE_PW)}, client_user=True)
    assert c.cert_calls() == [] and c.w.grants() == []
    n = 200
    barrier = threading.Barrier(n)
    results = [None] * n

    def client(i):
        try:
            barrier.wait(30)
            with connect(p, DB_PASSWORD_USER, password=None) as conn:
                results[i] = conn.execute("select %s::int + 1", (i,)).fetchone()
        except Exception as ex:  # noqa: BLE001 - reported below
            results[i] = ex

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 90
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads)
    bad = [(i, r) for i, r in enumerate(results) if r != (i + 1,)]
    assert not bad, "%d of %d failed, e.g. %r" % (len(bad), n, bad[:3])
    print("200 cold connector clients: %d grant(s), %d connectSettings, %d certificate(s), %d proxy logins" % (
        len(c.w.grants()), len(c.settings_calls()), len(c.cert_calls()), c.proxy.stats()["accepted_logins"]))
    assert len(c.w.grants()) == 1 and len(c.settings_calls()) == 1 and len(c.cert_calls()) == 1
    assert c.proxy.stats()["accepted_logins"] <= 20


def test_connector_admin_api_down_while_certificate_valid(make_pooler, certs, connector):
    """20 s certificates: the refresh at 10 s of age meets an Admin API answering 500 (re-sent as
    §3.8.2 c says); logins keep working on the cached certificate: 0 failed logins."""
    c = connector(cert_ttl=20)
    p = connector_pooler(make_pooler, certs, c, db_extra="server_lifetime=1", settings={"pool_mode": "session"})
    assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    c.admin.add_fault(status=500, count=None)
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 13:
        with connect(p) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        n += 1
        time.sleep(0.3)
    failed = [r for r in c.cert_calls() if r["status"] == 500]
    print("Admin API down: %d logins ok, %d certificate requests answered 500" % (n, len(failed)))
    assert n >= 20 and c.proxy.stats()["rejected_logins"] == 0
    assert len(failed) >= 2, "the refresh was not attempted (or not re-sent)"
    assert len(c.inst.issued_certs) == 1


PGBENCH_SECONDS = 70


def test_connector_pgbench_with_60s_certificates_and_tokens(make_pooler, certs, world, connector, bench_db):
    """70 s of pgbench -S through a connector alias with automatic IAM login, where tokens and
    certificates live 60 s (the certificate never outlives its embedded token): the certificate is
    refreshed ahead (about every 30 s), servers are recycled before it expires
    (server_lifetime=token), and no transaction fails."""
    w = world(ttl=60)
    c = connector(w, cert_ttl=60)
    p = connector_pooler(make_pooler, certs, c, dbname=bench_db, db_extra="server_lifetime=token",
                         settings={"pool_mode": "transaction", "default_pool_size": 5})
    t0 = time.monotonic()
    run = Pgbench(p.port, ALIAS, ALICE, ALICE_PW, ["-n", "-S", "-c", "10", "-j", "2", "-T", str(PGBENCH_SECONDS)]).start()
    res = run.result(timeout=PGBENCH_SECONDS + 60)
    ok, why = res.ok()
    certs_issued = c.inst.issued_certs
    print("pgbench: %d transactions, %d failed; token grants %d; certificates %d; proxy logins %d (IAM %d), "
          "rejected %d" % (res.processed, res.failed, len(w.grants()), len(certs_issued),
                           c.proxy.stats()["accepted_logins"], len(c.verifier.auto_logins),
                           c.proxy.stats()["rejected_logins"]))
    assert ok, why
    assert res.failed == 0
    assert c.proxy.stats()["rejected_logins"] == 0, c.proxy.rejections
    # one certificate at start, then one about every 30 s
    assert 3 <= len(certs_issued) <= PGBENCH_SECONDS // 15 + 2, len(certs_issued)
    assert len(w.grants()) == len(certs_issued), "one token grant per certificate"
    gaps = [b["mono"] - a["mono"] for a, b in zip(c.cert_calls(), c.cert_calls()[1:])]
    assert min(gaps) >= 20 and max(gaps) <= 40, gaps
    # servers moved on to a newer certificate before the first one expired (at 60 s)
    assert len({a["serial"] for a in c.verifier.auto_logins}) >= 2
    assert time.monotonic() - t0 < PGBENCH_SECONDS + 40


# ================================================================== AlloyDB connector mode (§3.9)
import alloydb  # noqa: E402


class AlloyConnector:
    def __init__(self, w, pg, certs, mdx_fault=None, **inst_kw):
        self.w = w
        self.inst = alloydb.AlloyDbInstance(**inst_kw)
        self.admin = alloydb.AlloyDbAdminStandIn(instances=[self.inst], issuer=w.issuer).start()
        self.verifier = alloydb.AlloyDbVerifier(self.inst, w.issuer, {DB_PASSWORD_USER: DB_PASSWORD}, mdx_fault)
        self.port = free_port()
        self.proxy = pgfront.PgFront(certs.server_crt, certs.server_key, upstream_port=pg.port, upstream_user=APP_USER,
                                     upstream_password=APP_PW, mode=self.verifier, port=self.port,
                                     direct_tls=alloydb.proxy_context(self.inst), hosts=("127.0.0.1", "127.0.0.2"))
        self.proxy.start()

    def stop(self):
        self.proxy.stop()
        self.admin.stop()


@pytest.fixture
def alloy(world, pg, certs):
    made = []

    def make(**kw):
        c = AlloyConnector(world(login_scope=google.ALLOYDB_LOGIN), pg, certs, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()


def alloy_pooler(make_pooler, certs, c, iam=True, db_extra="", settings=None, cred=None, env=None):
    where = "instance=%s port=%d alloydb_api_endpoint=%s" % (c.inst.uri, c.port, c.admin.url)
    extra, user = ("enable_iam_auth=1", None) if iam else ("password=%s" % DB_PASSWORD, DB_PASSWORD_USER)
    return gcp_pooler(make_pooler, certs, c.w, cred or sa_cred(c.w), auth="alloydb", user=user, where=where,
                      db_extra=(extra + " " + db_extra).strip(), settings=settings, env=env)


def test_alloydb_connector_auto_iam_private(make_pooler, certs, alloy):
    """connectionInfo and generateClientCertificate after one cloud-platform + alloydb.login grant;
    TLS 1.3 to the PRIVATE address (the default) with the full chain, the server certificate checked
    against the address dialled; the metadata exchange (AUTO_IAM with the login token) before the
    StartupMessage; the server logs the IAM user in without a password."""
    c = alloy()
    p = alloy_pooler(make_pooler, certs, c)
    assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    assert [a["user"] for a in c.verifier.auto_logins] == [SA_USER], c.proxy.rejections
    ex = c.verifier.exchanges[0]
    assert ex["auth_type"] == 2 and ex["user_agent"].startswith("tokenbouncer/") and ex["principal"] == google.DEFAULT_SA
    assert len(c.w.grants()) == 1
    assert c.w.token.assertions[0][1]["scope"] == google.CLOUD_PLATFORM + " " + google.ALLOYDB_LOGIN
    gen = c.admin.requests(method="POST")
    assert len(gen) == 1 and gen[0]["path"].endswith("/clusters/tb-cluster:generateClientCertificate")
    body = gen[0].json()
    assert body["certDuration"] == "3600s" and body["useMetadataExchange"] is True
    assert body["publicKey"].startswith("-----BEGIN PUBLIC KEY-----")
    assert len(c.admin.requests(path="/v1beta/projects/tb-project/locations/us-central1/clusters/tb-cluster/"
                                      "instances/orders/connectionInfo")) == 1
    # tokenbouncer token: the login token the exchange carries, and the certificate
    env = dict(os.environ, **pooler_mod.SAN_ENV)
    res = subprocess.run([pooler_mod.binary(), "token", ALIAS, p.ini], capture_output=True, text=True, timeout=60,
                         env=env, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    assert c.w.issuer.lookup(res.stdout.strip())["scopes"] == [google.CLOUD_PLATFORM, google.ALLOYDB_LOGIN], res.stdout
    assert "CN=alloydb-client" in res.stderr and "certificate expires" in res.stderr, res.stderr


def test_alloydb_connector_user_from_the_metadata_email(make_pooler, certs, alloy):
    """Connector mode on a VM: gcp-metadata without user=, automatic IAM login as the VM's service
    account (its e-mail asked once); one certificate for the alias."""
    c = alloy()
    metadata = c.w.metadata
    p = alloy_pooler(make_pooler, certs, c, cred={"type": "gcp-metadata"},
                     env={"GCE_METADATA_HOST": metadata.hostport})
    assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    assert [a["user"] for a in c.verifier.auto_logins] == [GCE_USER], c.proxy.rejections
    assert len(metadata.requests(path=METADATA_EMAIL)) == 1 and len(c.admin.requests(method="POST")) == 1


def test_alloydb_login_token_refreshed_apart_from_the_certificate(make_pooler, certs, world, pg):
    """Login tokens that live 12 s and an hour-long certificate: the token the metadata exchange
    carries is refreshed on its own schedule (at about half its life), the certificate is not
    asked for again, and every login gets a valid token."""
    c = AlloyConnector(world(ttl=12, login_scope=google.ALLOYDB_LOGIN), pg, certs)
    try:
        p = alloy_pooler(make_pooler, certs, c, db_extra="server_lifetime=1", settings={"pool_mode": "session"})
        t0 = time.monotonic()
        n = 0
        while len({e["n"] for e in c.verifier.exchanges}) < 3:
            assert time.monotonic() - t0 < 40, "the login token was not refreshed: %r" % c.verifier.exchanges
            with connect(p) as conn:
                assert conn.execute("select 1").fetchone() == (1,)
            n += 1
            time.sleep(0.3)
        tokens = {e["n"] for e in c.verifier.exchanges}
        print("%d logins in %.0f s: %d login tokens, %d grants, %d certificates" % (
            n, time.monotonic() - t0, len(tokens), len(c.w.grants()), len(c.inst.certs)))
        assert len(c.inst.certs) == 1 and len(c.admin.requests(method="POST")) == 1
        assert c.proxy.stats()["rejected_logins"] == 0, c.proxy.rejections
        assert len(c.verifier.auto_logins) == len(c.verifier.exchanges) >= 3
    finally:
        c.stop()


def test_alloydb_connector_db_native_public(make_pooler, certs, alloy):
    """DB_NATIVE on the PUBLIC address; the credential's quota_project goes to the Admin API."""
    c = alloy()
    c.admin.configure(quota_project="tb-quota")
    p = alloy_pooler(make_pooler, certs, c, iam=False, db_extra="ip_type=public",
                     cred=dict(sa_cred(c.w), quota_project="tb-quota"))
    assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    assert {r.header("x-goog-user-project") for r in c.admin.requests()} == {"tb-quota"}
    assert c.verifier.password_logins == [DB_PASSWORD_USER] and c.verifier.auto_logins == []
    assert [e["auth_type"] for e in c.verifier.exchanges] == [1]       # DB_NATIVE, token still sent


@pytest.mark.parametrize("case", ["mdx-error", "mdx-garbage", "mdx-hang", "no-psc"])
def test_alloydb_connector_errors(make_pooler, certs, alloy, case):
    """An instance that never answers the metadata exchange fails the login in bounded time (the
    connectors' 30 s read deadline, or server_connect_timeout when that is shorter)."""
    c = alloy(mdx_fault={"mdx-error": "error", "mdx-garbage": "garbage", "mdx-hang": "hang"}.get(case))
    p = alloy_pooler(make_pooler, certs, c, db_extra="ip_type=psc" if case == "no-psc" else "",
                     settings={"server_connect_timeout": 3})
    t0 = time.monotonic()
    err = login_error(p)
    needle = {"mdx-error": "refused the login: the metadata exchange was refused: IAM auth failed",
              "mdx-garbage": "the metadata exchange answer is too long",
              "mdx-hang": "did not answer the metadata exchange within",
              "no-psc": "no PSC address (ip_type=psc)"}[case]
    if case == "mdx-hang":
        assert 2.5 < time.monotonic() - t0 < 15 and c.verifier.exchanges == []
    print("%s -> %s" % (case, err.strip()))
    assert 'alias "orders"' in err and needle in err, err
