"""Microsoft Entra ID tokens end to end (the rules common to every cloud, the Entra ID rules, the Entra token endpoint stand-in to the Azure PostgreSQL login front).

    psql / psycopg / pgbench -> tokenbouncer -> PgFront(mode=azure, TLS) -> real PostgreSQL 15
                                     |
                                     +-> Entra / IMDS / App Service stand-ins, az CLI stub

Everything is loopback and bounded; waits poll (util.wait_for), they do not sleep a fixed time.
PgFront checks each token (HS256 test key, aud, exp, the principal's role, and that the token came
from the stand-in under test) and logs in to PostgreSQL as appuser, so current_user is appuser.
"""
import os
import re
import subprocess
import sys
import threading
import time

import psycopg
import pytest

import pooler as pooler_mod
from conftest import ALICE, ALICE_PW, APP_DB, APP_PW, APP_USER
from pg import PG_BIN
from pgbench import Pgbench
from rawpg import scram_secret
from util import Bounded, port_accepts, wait_for

STANDINS = os.path.join(pooler_mod.REPO_ROOT, "test", "standins")
if STANDINS not in sys.path:
    sys.path.insert(0, STANDINS)

import azcli  # noqa: E402
import azure_imds  # noqa: E402
import entra  # noqa: E402
import pgfront  # noqa: E402
from standin_base import token_counter  # noqa: E402

PSQL = os.path.join(PG_BIN, "psql")
ALIAS = "orders"
ROLE = "orders-app"                    # the Azure PostgreSQL role of the principal (PgFront checks it)
TOKEN_PATH = "/%s/oauth2/v2.0/token" % entra.DEFAULT_TENANT
IMDS_PATH = "/metadata/identity/oauth2/token"
SYS_MI = azure_imds.SYSTEM_IDENTITY
USER_MI = azure_imds.USER_IDENTITY

# Variables the Azure sources read: blanked in the pooler's environment (tokenbouncer treats an
# empty value as unset) unless a test sets them, so nothing leaks in from the test runner.
AZURE_ENV = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
             "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
             "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
             "AZURE_TOKEN_CREDENTIALS", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT",
             "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_USERNAME", "AZURE_PASSWORD",
             "TB_AZ_STATE", "TB_AZ_MODE")


@pytest.fixture(autouse=True)
def _tokenbouncer_only():
    pooler_mod.tokenbouncer_only("Entra ID tokens are tokenbouncer-only")


# ------------------------------------------------------------------------------------ helpers
class RecordingVerifier(pgfront.AzureVerifier):
    """PgFront's Azure check, plus: the counters (tok-<n>) of the tokens it accepted, and an
    optional reject(n) hook that refuses chosen tokens (FATAL 28P01, as Azure does)."""

    failure_message = 'password authentication failed for user "%s"'

    def __init__(self, roles, issued_check=None, reject=None):
        super().__init__(roles=roles, issued_check=issued_check)
        self.reject = reject
        self.accepted = []
        self.rejected = []
        self.lock = threading.Lock()

    def verify(self, user, database, password, now):
        n = token_counter(password)
        if self.reject is not None and self.reject(n):
            with self.lock:
                self.rejected.append(n)
            raise pgfront.AuthFailure("the test rejects tok-%s" % n)
        info = super().verify(user, database, password, now)
        with self.lock:
            self.accepted.append(n)
        return info


@pytest.fixture
def make_front(pg, certs):
    """make_front(roles, issued_check=None, reject=None, **pgfront_kw) -> started PgFront (azure)
    relaying to the session PostgreSQL as appuser; .verifier is the RecordingVerifier."""
    made = []

    def factory(roles, issued_check=None, reject=None, **kw):
        v = RecordingVerifier(roles, issued_check, reject)
        args = dict(upstream_port=pg.port, upstream_user=APP_USER, upstream_password=APP_PW, mode=v)
        args.update(kw)
        f = pgfront.PgFront(certs.server_crt, certs.server_key, **args)
        f.verifier = v
        made.append(f)
        f.start()
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


def pooler_env(**env):
    out = {k: "" for k in AZURE_ENV}
    out.update(env)
    return out


def write_secret(path, text):
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def entra_pooler(make_pooler, certs, front, cred, env=None, user=ROLE, dbname=APP_DB, db_extra="",
                 settings=None, start=True, creds_extra=None, users=None):
    """A pooler with alias `orders` -> PgFront (auth=entra credential=app, verify-full TLS) and
    [credential.app] = cred. Clients log in with SCRAM (alice) unless settings say otherwise;
    transaction pooling."""
    db = "host=127.0.0.1 port=%d dbname=%s auth=entra credential=app" % (front.port, dbname)
    if user:
        db += " user=%s" % user
    if db_extra:
        db += " " + db_extra
    s = {"pool_mode": "transaction", "server_tls_sslmode": "verify-full",
         "server_tls_ca_file": certs.ca_crt, "server_login_retry": 1}
    s.update(settings or {})
    lines = ["", "[credential.app]"] + ["%s = %s" % kv for kv in cred.items()]
    for name, c in (creds_extra or {}).items():
        lines += ["", "[credential.%s]" % name] + ["%s = %s" % kv for kv in c.items()]
    return make_pooler(settings=s, databases={ALIAS: db}, extra_lines=lines, env=pooler_env(**(env or {})),
                       start=start, users=users)


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


def connect(p, user=ALICE, db=ALIAS, password=ALICE_PW, **kw):
    return psycopg.connect(host="127.0.0.1", port=p.port, user=user, dbname=db, sslmode="disable",
                           password=password, connect_timeout=10, autocommit=True, **kw)


def login_error(p, user=ALICE, db=ALIAS, timeout=20, password=ALICE_PW):
    """Connect with psycopg, expecting a failure; returns the error text (bounded: not a hang)."""
    def attempt():
        try:
            with connect(p, user, db, password) as c:
                c.execute("select 1")
        except psycopg.OperationalError as e:
            return str(e)
        return None
    return Bounded(attempt).result(timeout, "a client login that should fail")


def token_posts(s):
    return s.requests(path=TOKEN_PATH, method="POST")


def imds_gets(s):
    return s.requests(path=IMDS_PATH, method="GET")


def expect_query_through(p, front):
    """A psql query through the pooler works and was logged in to PgFront with a token."""
    assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    assert front.verifier.accepted, "PgFront accepted no token; rejections: %s" % front.rejections
    assert front.stats()["rejected_logins"] == 0, front.rejections


# ------------------------------------------------------------------------ 1. every source
def test_client_secret(make_pooler, certs, make_front, standins, tmp_path):
    e = standins(entra.EntraStandIn())
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    p = entra_pooler(make_pooler, certs, front, {
        "type": "azure-client-secret", "tenant_id": entra.DEFAULT_TENANT, "client_id": entra.DEFAULT_CLIENT_ID,
        "client_secret_file": write_secret(str(tmp_path / "secret"), entra.DEFAULT_CLIENT_SECRET),
        "authority_host": e.url})
    expect_query_through(p, front)
    posts = token_posts(e)
    assert len(posts) == 1, [r["body"] for r in posts]
    form = posts[0].form
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_id"] == [entra.DEFAULT_CLIENT_ID]
    assert form["scope"] == [entra.DEFAULT_SCOPE]
    assert form["client_secret"] == [entra.DEFAULT_CLIENT_SECRET]
    assert [i["method"] for i in e.issued] == ["client_secret"]


def test_client_certificate(make_pooler, certs, make_front, standins, tmp_path):
    crt, key, both = entra.make_client_cert(str(tmp_path))
    e = standins(entra.EntraStandIn(clients=[{"client_id": entra.DEFAULT_CLIENT_ID, "cert": crt}]))
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    p = entra_pooler(make_pooler, certs, front, {
        "type": "azure-client-certificate", "tenant_id": entra.DEFAULT_TENANT,
        "client_id": entra.DEFAULT_CLIENT_ID, "certificate_file": both, "authority_host": e.url})
    expect_query_through(p, front)
    posts = token_posts(e)
    assert len(posts) == 1
    form = posts[0].form
    assert "client_secret" not in form
    assert form["client_assertion_type"] == [entra.JWT_BEARER]
    assert [i["method"] for i in e.issued] == ["certificate"]


def test_workload_identity_rereads_the_token_file(make_pooler, certs, make_front, standins, tmp_path):
    """The federated token file is read for every fetch: after the file changes (Kubernetes rotates
    it) the next refresh presents the new assertion, which is the only one the stand-in accepts."""
    fed = str(tmp_path / "azure-identity-token")
    first = entra.make_federated_token(subject="system:serviceaccount:orders:first")
    write_secret(fed, first)
    e = standins(entra.EntraStandIn(ttl=6, clients=[{"client_id": entra.DEFAULT_CLIENT_ID,
                                                     "federated": {"token_file": fed}}]))
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    # tenant, client and file come from the environment, as the AKS webhook sets them
    p = entra_pooler(make_pooler, certs, front, {"type": "azure-workload-identity"}, env={
        "AZURE_TENANT_ID": entra.DEFAULT_TENANT, "AZURE_CLIENT_ID": entra.DEFAULT_CLIENT_ID,
        "AZURE_FEDERATED_TOKEN_FILE": fed, "AZURE_AUTHORITY_HOST": e.url}, db_extra="server_lifetime=1")
    expect_query_through(p, front)
    posts = token_posts(e)
    assert posts[0].form1("client_assertion") == first
    second = entra.make_federated_token(subject="system:serviceaccount:orders:second")
    write_secret(fed, second)
    # a 6 s token is refreshed at 3 s of age by the pooler's own timer
    wait_for(lambda: [r for r in token_posts(e) if r.form1("client_assertion") == second], 15,
             "a token request with the rewritten federated token")
    posts = token_posts(e)
    assert all(r["status"] == 200 for r in posts), [(r["status"], r["body"][:80]) for r in posts]
    assert {i["method"] for i in e.issued} == {"federated"}
    # every request was answered with a token, so the k-th request got tok-k
    from_second = 1 + [r.form1("client_assertion") for r in posts].index(second)
    # server_lifetime=1: the first client's server is retired, so a later one logs in afresh
    for _ in range(2):
        assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    assert max(front.verifier.accepted) >= from_second, (front.verifier.accepted, from_second)


@pytest.mark.parametrize("how", ["system-assigned", "user-assigned"])
def test_managed_identity_imds(make_pooler, certs, make_front, standins, how):
    imds = standins(azure_imds.AzureImdsStandIn())
    ident = SYS_MI if how == "system-assigned" else USER_MI
    front = make_front({ident["client_id"]: ROLE}, issued_check=imds.is_issued)
    if how == "system-assigned":
        # the base URL from the SDKs' variable
        p = entra_pooler(make_pooler, certs, front, {"type": "azure-managed-identity"},
                         env={"AZURE_POD_IDENTITY_AUTHORITY_HOST": imds.url})
    else:
        p = entra_pooler(make_pooler, certs, front, {"type": "azure-managed-identity",
                                                     "client_id": USER_MI["client_id"], "imds_endpoint": imds.url})
    expect_query_through(p, front)
    gets = imds_gets(imds)
    assert len(gets) == 1, [(r["target"], r["status"]) for r in gets]
    r = gets[0]
    assert r.header("Metadata") == "true"
    assert r.q("api-version") == "2018-02-01"
    assert r.q("resource") == entra.DEFAULT_RESOURCE
    if how == "system-assigned":
        assert r.q("client_id") is None and r.q("object_id") is None and r.q("msi_res_id") is None
    else:
        assert r.q("client_id") == USER_MI["client_id"]
    assert [i["client_id"] for i in imds.issued] == [ident["client_id"]]


def test_managed_identity_app_service(make_pooler, certs, make_front, standins):
    app = standins(azure_imds.AppServiceStandIn())
    front = make_front({SYS_MI["client_id"]: ROLE}, issued_check=app.is_issued)
    p = entra_pooler(make_pooler, certs, front, {"type": "azure-managed-identity"},
                     env={"IDENTITY_ENDPOINT": app.endpoint, "IDENTITY_HEADER": app.secret})
    expect_query_through(p, front)
    gets = app.requests(method="GET")
    assert len(gets) == 1
    assert gets[0].header("X-IDENTITY-HEADER") == app.secret
    assert gets[0].q("api-version") == "2019-08-01"
    assert gets[0].q("resource") == entra.DEFAULT_RESOURCE
    assert gets[0]["status"] == 200


def test_azure_cli(make_pooler, certs, make_front, tmp_path):
    az = azcli.AzCliStub(str(tmp_path / "az"))
    front = make_front({azcli.DEFAULT_UPN: ROLE})
    azenv = az.env()
    p = entra_pooler(make_pooler, certs, front, {"type": "azure-cli"},
                     env={"PATH": azenv["PATH"], "TB_AZ_STATE": azenv["TB_AZ_STATE"]})
    expect_query_through(p, front)
    calls = az.invocations()
    assert len(calls) == 1, calls
    argv = calls[0]["argv"]
    assert argv[:2] == ["account", "get-access-token"], argv
    assert "--resource" in argv and argv[argv.index("--resource") + 1] == entra.DEFAULT_RESOURCE, argv


def test_default_chain_uses_environment_client_secret(make_pooler, certs, make_front, standins):
    e = standins(entra.EntraStandIn())
    imds = standins(azure_imds.AzureImdsStandIn())
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    p = entra_pooler(make_pooler, certs, front, {"type": "azure-default"}, env={
        "AZURE_TENANT_ID": entra.DEFAULT_TENANT, "AZURE_CLIENT_ID": entra.DEFAULT_CLIENT_ID,
        "AZURE_CLIENT_SECRET": entra.DEFAULT_CLIENT_SECRET, "AZURE_AUTHORITY_HOST": e.url,
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": imds.url})
    expect_query_through(p, front)
    assert len(token_posts(e)) == 1
    assert token_posts(e)[0].form1("client_secret") == entra.DEFAULT_CLIENT_SECRET
    assert imds.requests() == [], "the chain went past the environment credential"
    p.wait_log(r"azure-default uses environment", 5)


def test_trust_auth_second_client_through_entra_alias(make_pooler, certs, make_front, standins, tmp_path):
    """auth_type=trust, several clients one after another through a token alias. Regression test:
    a trust login completes inside client_startup(), and with the pool's welcome already known the
    second client's StartupMessage was still in the input buffer when client_process() ran, so it
    was forwarded upstream as a query and the pooler read past its buffer (ASan
    heap-buffer-overflow in proto_peek_header; fixed in ba1dcd0)."""
    e = standins(entra.EntraStandIn())
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    p = entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path), settings={"auth_type": "trust"})
    for _ in range(3):
        assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    assert len(token_posts(e)) == 1


def test_default_chain_falls_through_to_imds(make_pooler, certs, make_front, standins, tmp_path):
    imds = standins(azure_imds.AzureImdsStandIn())
    front = make_front({SYS_MI["client_id"]: ROLE}, issued_check=imds.is_issued)
    az = azcli.AzCliStub(str(tmp_path / "az"))     # on PATH, but managed identity comes first
    azenv = az.env()
    p = entra_pooler(make_pooler, certs, front, {"type": "azure-default"}, env={
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": imds.url, "PATH": azenv["PATH"],
        "TB_AZ_STATE": azenv["TB_AZ_STATE"]})
    expect_query_through(p, front)
    assert [i["client_id"] for i in imds.issued] == [SYS_MI["client_id"]]
    assert az.invocations() == []
    p.wait_log(r"azure-default uses managed", 5)


def secret_cred(e, tmp_path, secret=entra.DEFAULT_CLIENT_SECRET):
    return {"type": "azure-client-secret", "tenant_id": entra.DEFAULT_TENANT, "client_id": entra.DEFAULT_CLIENT_ID,
            "client_secret_file": write_secret(str(tmp_path / "client-secret"), secret), "authority_host": e.url}


# ------------------------------------------------ 2. short-lived tokens under steady load
PGBENCH_SECONDS = 90


def test_short_tokens_refresh_under_pgbench(make_pooler, certs, make_front, standins, tmp_path, bench_db):
    """20 s tokens, 90 s of pgbench -S (10 clients over 5 servers, transaction pooling,
    server_lifetime=token): no failed transaction, the token is refreshed ahead of expiry (about
    every 10 s, not per login), and the servers are recycled onto newer tokens."""
    e = standins(entra.EntraStandIn(ttl=20))
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    p = entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path), dbname=bench_db,
                     db_extra="server_lifetime=token",
                     settings={"pool_mode": "transaction", "default_pool_size": 5})
    t0 = time.monotonic()
    run = Pgbench(p.port, ALIAS, ALICE, ALICE_PW,
                  ["-n", "-S", "-c", "10", "-j", "2", "-T", str(PGBENCH_SECONDS)]).start()
    res = run.result(timeout=PGBENCH_SECONDS + 60)
    ok, why = res.ok()
    assert ok, why
    assert res.failed == 0
    posts = token_posts(e)
    stats = front.stats()
    accepted = sorted(set(front.verifier.accepted))
    # reported by -s / on failure
    print("pgbench: %d transactions; Entra token requests: %d (statuses %s); tokens issued: %d; "
          "PgFront logins accepted: %d with tokens %s; rejected: %d" % (
              res.processed, len(posts), sorted({r["status"] for r in posts}), len(e.issued),
              stats["accepted_logins"], accepted, stats["rejected_logins"]))
    assert stats["rejected_logins"] == 0, front.rejections
    assert all(r["status"] == 200 for r in posts)
    # ~90 s / 10 s: one token at start plus a refresh about every 10 s
    assert len(e.issued) >= 6, "only %d tokens issued in %d s of 20 s tokens" % (len(e.issued), PGBENCH_SECONDS)
    assert len(e.issued) <= PGBENCH_SECONDS // 5 + 2, "tokens were fetched far more often than every ~10 s"
    gaps = [b["mono"] - a["mono"] for a, b in zip(posts, posts[1:])]
    assert min(gaps) >= 5, "refreshes closer than 5 s: %s" % gaps
    assert max(gaps) <= 16, "a refresh came later than 16 s after the previous token: %s" % gaps
    # server connections moved on to newer tokens (server_lifetime=token recycles them)
    assert len(accepted) >= 4, "PgFront saw logins with tokens %s only" % accepted
    assert stats["accepted_logins"] > 5
    assert time.monotonic() - t0 < PGBENCH_SECONDS + 30
    assert "could not obtain" not in p.log_text()


# ------------------------------------------------ 3. cold cache, 200 clients at once
def test_cold_cache_200_clients_one_token_request(make_pooler, certs, make_front, standins, tmp_path):
    """An alias without user= takes the client's user, so nothing is prefetched: 200 clients that
    arrive at once with an empty cache cause exactly one token request."""
    e = standins(entra.EntraStandIn())
    e.add_fault(kind="delay", delay=1.0, count=None)   # keep the one fetch in flight a while
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    p = entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path), user=None,
                     settings={"auth_type": "trust", "pool_mode": "transaction", "default_pool_size": 20,
                               "max_client_conn": 400},
                     users={ROLE: "", ALICE: scram_secret(ALICE_PW)})
    assert token_posts(e) == [], "a token was fetched before any client came (alias has no user=)"
    n = 200
    barrier = threading.Barrier(n)
    results = [None] * n

    def client(i):
        try:
            barrier.wait(30)
            with connect(p, ROLE, password=None) as c:
                results[i] = c.execute("select %s::int + 1, current_user", (i,)).fetchone()
        except Exception as ex:  # noqa: BLE001 - collected and reported below
            results[i] = ex

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 90
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "clients still running after 90 s"
    bad = [(i, r) for i, r in enumerate(results) if r != (i + 1, APP_USER)]
    assert not bad, "%d of %d clients failed, e.g. %r" % (len(bad), n, bad[:3])
    posts = token_posts(e)
    print("200 cold clients: %d token request(s); PgFront accepted %d logins" % (
        len(posts), front.stats()["accepted_logins"]))
    assert len(posts) == 1, "%d token requests for one cold key" % len(posts)
    assert front.stats()["accepted_logins"] <= 20
    assert set(front.verifier.accepted) == {1}


# ------------------------------------------------ 4. identity endpoint down
def test_identity_endpoint_down_then_back(make_pooler, certs, make_front, standins, tmp_path):
    """Entra answers 503 to everything from just after the first token (ttl 20 s):
      * while the cached token is valid, new clients and new server logins keep working, although
        the refresh at ~10 s of age fails (4 attempts: azure-core retries);
      * once the token is within its hard margin (~3 s before expiry), a client gets a prompt FATAL
        naming the alias and the cause;
      * the next attempt waits the retry floor after the failure (the token cache and refresh
        policy: 30 s, here 10 s through the test build's TB_TEST_TOKEN_TIME_SCALE=3, which scales
        the engine's own waits but not the token's lifetime); after Entra is back, clients
        succeed again at that retry."""
    scale = 3
    floor = 30.0 / scale
    e = standins(entra.EntraStandIn(ttl=20))
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    p = entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path), db_extra="server_lifetime=1",
                     settings={"pool_mode": "session", "default_pool_size": 2, "server_login_retry": 1},
                     env={"TB_TEST_TOKEN_TIME_SCALE": str(scale)})
    p.wait_log(r"TB_TEST_TOKEN_TIME_SCALE=3 \(test build\)", 10)
    first = wait_for(lambda: token_posts(e), 10, "the prefetched token")[0]
    t_tok = first["mono"]
    e.add_fault(kind="status", status=503, count=None)

    # phase 1: churn while the endpoint is down and the token is valid
    ok = failed = 0
    errors = []
    logins_before = front.stats()["accepted_logins"]
    while time.monotonic() < t_tok + 14.5:
        try:
            with connect(p) as c:
                c.execute("select 1")
            ok += 1
        except psycopg.OperationalError as ex:
            failed += 1
            errors.append(str(ex))
        time.sleep(0.1)
    server_logins = front.stats()["accepted_logins"] - logins_before
    down_posts = [r for r in token_posts(e) if r["status"] == 503]
    print("endpoint down, token valid: %d client sessions ok, %d failed, %d new server logins, "
          "%d failed token requests" % (ok, failed, server_logins, len(down_posts)))
    assert failed == 0, errors[:3]
    assert ok >= 20
    assert server_logins >= 5, "server_lifetime=1 should have forced new server logins"
    assert set(front.verifier.accepted) == {1}
    assert down_posts, "no refresh was attempted at ~10 s of a 20 s token"
    assert down_posts[0]["mono"] - t_tok >= 8, "refreshed at %.1f s of age" % (down_posts[0]["mono"] - t_tok)
    log = p.wait_log(r"cached token stays in use", 10)
    assert "could not obtain" not in log

    # phase 2: past the hard margin a client is told why, promptly
    failed_posts = wait_for(lambda: len([r for r in token_posts(e) if r["status"] == 503]) >= 4 and
                            [r for r in token_posts(e) if r["status"] == 503], 10, "the failed refresh")
    t_fail = failed_posts[-1]["mono"]
    err = None
    while err is None and time.monotonic() < t_tok + 25:
        t = time.monotonic()
        try:
            with connect(p) as c:
                c.execute("select 1")
        except psycopg.OperationalError as ex:
            err = str(ex)
        assert time.monotonic() - t < 10, "a login took %.1f s (hang?)" % (time.monotonic() - t)
        time.sleep(0.1)
    print("first client error at %.1f s of token age: %s" % (time.monotonic() - t_tok, err))
    assert err is not None, "clients still succeeded 25 s after a 20 s token was issued"
    assert 'alias "orders"' in err and "Entra" in err and "503" in err, err

    # phase 3: Entra back; the retry comes a floor (30 s scaled) after the failure and clients recover
    e.clear_faults()
    t_back = time.monotonic()
    recovered = None
    while recovered is None and time.monotonic() < t_fail + 3 * floor + 20:
        try:
            with connect(p) as c:
                c.execute("select 1")
            recovered = time.monotonic()
        except psycopg.OperationalError as ex:
            assert 'alias "orders"' in str(ex), str(ex)
            time.sleep(0.25)
    posts = token_posts(e)
    good = [r for r in posts if r["status"] == 200 and r["mono"] > t_fail]
    print("Entra back at +%.1f s after the failure; first new token request at +%.1f s; client "
          "recovered at +%.1f s" % (t_back - t_fail, (good[0]["mono"] - t_fail) if good else -1,
                                    (recovered - t_fail) if recovered else -1))
    assert recovered is not None, "no recovery within %.0f s of the failed refresh" % (3 * floor + 20)
    retry = [r for r in posts if r["mono"] > t_fail]
    assert retry and retry[0]["mono"] - t_fail >= floor - 0.5, "retried %.1f s after a failure" % (
        retry[0]["mono"] - t_fail)
    # and no later than the floor plus its 25 % jitter (with slack): the scale was in force
    assert retry[0]["mono"] - t_fail <= floor * 1.25 + 5, "retried %.1f s after a failure" % (
        retry[0]["mono"] - t_fail)
    assert good and recovered >= good[0]["mono"]


# ------------------------------------------------ 5. a rejected token is replaced once
def test_rejected_token_is_invalidated_and_fetched_again(make_pooler, certs, make_front, standins, tmp_path):
    e = standins(entra.EntraStandIn())
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued, reject=lambda n: n == 1)
    p = entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path))
    assert psql_ok(p) == "%s|%s" % (APP_USER, APP_DB)
    assert len(token_posts(e)) == 2
    assert front.verifier.rejected == [1]
    assert front.verifier.accepted == [2]
    log = p.wait_log(r"was rejected by the server", 5)
    assert re.search(r'token for alias "orders" .*was rejected by the server', log)
    assert "server rejected the token" in log


def test_token_rejected_twice_fails_with_clear_error(make_pooler, certs, make_front, standins, tmp_path):
    """Only one retry: a fresh token that is rejected too ends the login, with the server's reason."""
    e = standins(entra.EntraStandIn())
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued, reject=lambda n: True)
    p = entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path))
    err = login_error(p)
    assert 'alias "orders"' in err and "rejected" in err and "password authentication failed" in err, err
    assert len(token_posts(e)) == 2
    assert front.verifier.rejected == [1, 2]


# ------------------------------------------------ 6. no token in the log
def test_no_token_or_secret_in_logs_at_verbose_2(make_pooler, certs, make_front, standins, tmp_path):
    e = standins(entra.EntraStandIn(ttl=4, clients=[
        {"client_id": entra.DEFAULT_CLIENT_ID, "secret": entra.DEFAULT_CLIENT_SECRET},
        {"client_id": "c0ffee00-0000-4000-8000-00000000f3d1",
         "federated": {"token_file": str(tmp_path / "fed-token")}}]))
    fed_token = entra.make_federated_token(subject="system:serviceaccount:orders:wi")
    write_secret(str(tmp_path / "fed-token"), fed_token)
    imds = standins(azure_imds.AzureImdsStandIn(ttl=4))
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE, "c0ffee00-0000-4000-8000-00000000f3d1": ROLE,
                        SYS_MI["client_id"]: ROLE})
    common = "host=127.0.0.1 port=%d dbname=%s user=%s auth=entra server_lifetime=1" % (front.port, APP_DB, ROLE)
    lines = ["", "[credential.app]"] + ["%s = %s" % kv for kv in secret_cred(e, tmp_path).items()]
    lines += ["", "[credential.wi]", "type = azure-workload-identity", "tenant_id = " + entra.DEFAULT_TENANT,
              "client_id = c0ffee00-0000-4000-8000-00000000f3d1", "token_file = " + str(tmp_path / "fed-token"),
              "authority_host = " + e.url]
    lines += ["", "[credential.mi]", "type = azure-managed-identity", "imds_endpoint = " + imds.url]
    p = make_pooler(settings={"pool_mode": "session", "server_tls_sslmode": "verify-full",
                              "server_tls_ca_file": certs.ca_crt, "verbose": 2, "log_connections": 1},
                    databases={"orders": common + " credential=app", "orders_wi": common + " credential=wi",
                               "orders_mi": common + " credential=mi"},
                    extra_lines=lines, env=pooler_env())
    deadline = time.monotonic() + 9      # a 4 s token is refreshed every ~2 s: several refreshes each
    n = 0
    while time.monotonic() < deadline:
        for db in ("orders", "orders_wi", "orders_mi"):
            with connect(p, db=db) as c:
                assert c.execute("select 1").fetchone() == (1,)
            n += 1
        time.sleep(0.2)
    p.stop()
    log = p.log_text()
    issued = [i["token"] for i in e.issued] + [i["token"] for i in imds.issued]
    print("verbose=2 log: %d bytes; %d logins; %d tokens issued (Entra %d, IMDS %d); PgFront logins %d" % (
        len(log), n, len(issued), len(e.issued), len(imds.issued), front.stats()["accepted_logins"]))
    assert len(e.issued) >= 6 and len(imds.issued) >= 3, "too few refreshes to be a fair check"
    assert front.stats()["accepted_logins"] >= 10
    assert re.search(r"(?i)debug", log), "verbose=2 wrote no debug lines"
    assert len(re.findall(r"new token", log)) >= len(issued) - 3
    leaks = []
    for tok in issued:
        head, payload, sig = tok.split(".")
        for part, what in ((tok, "token"), (payload, "token payload"), (sig, "token signature"),
                           (tok[-24:], "token tail")):
            if part in log:
                leaks.append("%s of tok-%s" % (what, token_counter(tok)))
    for secret, what in ((entra.DEFAULT_CLIENT_SECRET, "client secret"), (fed_token, "federated token"),
                         (fed_token.split(".")[2], "federated token signature")):
        if secret in log:
            leaks.append(what)
    assert not leaks, "found in the pooler log: %s" % ", ".join(sorted(set(leaks)))


# ------------------------------------------------ 7. a token alias without TLS is refused
def test_token_alias_with_sslmode_disable_is_refused(make_pooler, certs, make_front, standins, tmp_path):
    e = standins(entra.EntraStandIn())
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE})
    p = entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path), db_extra="sslmode=disable",
                     start=False)
    line = p.ini_line_of("%s = " % ALIAS)
    res = pooler_mod.run_check(p.ini)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "%s:%d:" % (p.ini, line) in out, out
    assert "needs TLS" in out and ALIAS in out, out
    env = dict(os.environ)
    env.update(pooler_mod.SAN_ENV)
    env.update(pooler_env())
    run = subprocess.run([pooler_mod.binary(), p.ini], stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=30, env=env, cwd=p.workdir)
    out = run.stdout + run.stderr + p.log_text()
    assert run.returncode != 0, out
    assert "needs TLS" in out, out
    assert not port_accepts(p.port)
    assert not re.search(r"listening on", out), out
    assert token_posts(e) == [], "a token was fetched for an alias that was refused"
    for pat in pooler_mod.SANITIZER_PATTERNS:
        assert pat not in out, out


# ------------------------------------------------ 8. clear errors
def _imds_unknown_identity(standins, tmp_path):
    imds = standins(azure_imds.AzureImdsStandIn())
    cred = {"type": "azure-managed-identity", "client_id": "deadbeef-0000-4000-8000-0000000000ff",
            "imds_endpoint": imds.url}
    return cred, {}, ["Identity not found", "IMDS"], lambda: len(imds_gets(imds))


def _az_not_logged_in(standins, tmp_path):
    az = azcli.AzCliStub(str(tmp_path / "az"), mode="not_logged_in")
    azenv = az.env()
    return ({"type": "azure-cli"}, {"PATH": azenv["PATH"], "TB_AZ_STATE": azenv["TB_AZ_STATE"]},
            ["az login"], lambda: len(az.invocations()))


def _entra_bad_secret(standins, tmp_path):
    e = standins(entra.EntraStandIn())
    return secret_cred(e, tmp_path, secret="not-the-secret"), {}, ["invalid_client", "Entra"], \
        lambda: len(token_posts(e))


@pytest.mark.parametrize("case", [_imds_unknown_identity, _az_not_logged_in, _entra_bad_secret],
                         ids=["imds-identity-not-found", "az-not-logged-in", "entra-invalid-secret"])
def test_clear_client_errors(make_pooler, certs, make_front, standins, tmp_path, case):
    cred, env, needles, asked = case(standins, tmp_path)
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE})
    p = entra_pooler(make_pooler, certs, front, cred, env=env)
    t = time.monotonic()
    err = login_error(p)
    took = time.monotonic() - t
    print("%s -> %.1f s: %s" % (case.__name__, took, err.strip()))
    assert took < 10, "the error took %.1f s" % took
    assert 'alias "orders"' in err, err
    for needle in needles:
        assert needle in err, err
    assert asked() >= 1
    assert front.stats()["total_connections"] == 0, "a login was attempted without a token"
    # a second client gets the same answer at once, without a new request (retry backoff)
    n = asked()
    err2 = login_error(p)
    assert 'alias "orders"' in err2 and needles[0] in err2, err2
    assert asked() == n


# ------------------------------------------------ console views of the token cache (issue 6)
def console(p, sql):
    with psycopg.connect(host="127.0.0.1", port=p.port, user=ALICE, dbname="tokenbouncer", sslmode="disable",
                         password=ALICE_PW, connect_timeout=10, autocommit=True, prepare_threshold=None) as c:
        cur = c.execute(sql)
        cols = [d.name for d in cur.description] if cur.description else []
        return cols, cur.fetchall() if cur.description else []


def test_show_tokens_credentials_and_refresh(make_pooler, certs, make_front, standins, tmp_path):
    e = standins(entra.EntraStandIn(ttl=600))
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    p = entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path), settings={"admin_users": ALICE})
    expect_query_through(p, front)

    cols, rows = console(p, "SHOW TOKENS")
    assert cols == ["alias", "credential", "provider", "db_user", "state", "expires_in", "refresh_in",
                    "last_refresh", "last_error", "fetch_count", "failure_count"]
    assert len(rows) == 1, rows
    row = dict(zip(cols, rows[0]))
    assert (row["alias"], row["credential"], row["provider"], row["db_user"], row["state"]) == \
        (ALIAS, "app", "entra", ROLE, "valid")
    assert 500 < int(row["expires_in"]) <= 600
    # 600 s token: refreshed 300 s before expiry (Entra token refresh), so the next refresh is ~300 s away.
    assert 200 < int(row["refresh_in"]) <= 300
    assert row["last_error"] is None and int(row["fetch_count"]) == 1 and int(row["failure_count"]) == 0
    issued = [i["token"] for i in e.issued]
    assert not any(tok in str(rows) for tok in issued), "SHOW TOKENS must never show the token"

    cols, rows = console(p, "SHOW CREDENTIALS")
    assert cols == ["name", "type", "source", "state"]
    assert rows == [("app", "azure-client-secret", "client-secret", "ok")], rows

    console(p, "REFRESH TOKENS %s" % ALIAS)
    wait_for(lambda: len(token_posts(e)) == 2, 10, "a second token request after REFRESH TOKENS")
    wait_for(lambda: dict(zip(*[console(p, "SHOW TOKENS")[0], console(p, "SHOW TOKENS")[1][0]]))["fetch_count"]
             in (2, "2"), 10, "fetch_count 2 in SHOW TOKENS")
    expect_query_through(p, front)


def test_user_from_token_claims(make_pooler, certs, make_front, standins):
    """Opt-in user_from_token: an alias without user= logs in upstream as the user the token
    names (a user-assigned managed identity: the last segment of xms_mirid, the database user taken from an Entra token); the
    learning fetch is the one token request, and clients connecting meanwhile wait, not fail."""
    imds = standins(azure_imds.AzureImdsStandIn())
    imds.add_fault(kind="delay", delay=1.5)   # the client below arrives while the user is learned
    front = make_front({USER_MI["name"]: USER_MI["name"]}, issued_check=imds.is_issued)
    p = entra_pooler(make_pooler, certs, front, {"type": "azure-managed-identity",
                                                 "client_id": USER_MI["client_id"], "imds_endpoint": imds.url},
                     user=None, db_extra="user_from_token=1")
    t0 = time.monotonic()
    with connect(p) as c:
        assert c.execute("select 1").fetchone() == (1,)
    assert time.monotonic() - t0 > 0.5, "the client did not wait for the user to be learned"
    assert front.verifier.accepted and front.stats()["rejected_logins"] == 0, front.rejections
    assert len(imds_gets(imds)) == 1
    assert 'upstream user "%s" taken from the token' % USER_MI["name"] in p.log_text()
    # Not accepted for other token methods, nor next to user=.
    bad = entra_pooler(make_pooler, certs, front, {"type": "azure-cli"}, db_extra="user_from_token=1",
                       start=False)
    bad.write_files()
    res = pooler_mod.run_check(bad.ini)
    assert res.returncode == 1 and "user_from_token needs auth=entra and no user=" in res.stderr, res.stderr


# ------------------------------------------------ auth_query through a token alias
def test_auth_query_runs_as_auth_user_logged_in_with_a_token(make_pooler, certs, make_front, standins,
                                                             tmp_path, pg, new_role):
    """auth_user logs in through the alias's own login material (here an Entra token): a client
    that is not in auth_file is looked up over that token-authenticated server connection, then
    authenticated locally against the verifier it returned. The front relays as appuser, so
    the lookup is the documented SECURITY DEFINER function."""
    import rawpg
    e = standins(entra.EntraStandIn())
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued)
    user = new_role("aqe")
    pg.sql("create or replace function public.tb_aq_lookup(u text, out usename name, out passwd text) "
           "returns record language sql security definer set search_path = pg_catalog as "
           "$$ select rolname, rolpassword::text from pg_authid where rolname = u $$", dbname=APP_DB)
    pg.sql('grant execute on function public.tb_aq_lookup(text) to "%s"' % APP_USER, dbname=APP_DB)
    p = entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path), settings={
        "auth_user": ROLE, "auth_query": "SELECT usename, passwd FROM public.tb_aq_lookup($1)"},
        users={ALICE: scram_secret(ALICE_PW)})
    with rawpg.try_login("127.0.0.1", p.port, user, ALIAS, APP_PW) as c:
        assert c.query_ok("select current_user").rows == [(APP_USER,)]
    with pytest.raises(rawpg.PgError) as ei:
        rawpg.try_login("127.0.0.1", p.port, user, ALIAS, "wrong-password").close()
    assert ei.value.code == "28P01"
    assert len(token_posts(e)) >= 1
    assert front.verifier.accepted, "the lookup and the query went upstream with tokens"
