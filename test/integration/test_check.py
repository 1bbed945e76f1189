"""`tokenbouncer check FILE.ini`: the doctor logs in through every alias with the pooler's own
code and reports each step, the cause of a failure and what to change (doc/operations.md).

Password aliases against the real PostgreSQL (TLS with the test CA), and Entra aliases against
the Entra stand-in and PgFront; each failure cause: DNS, refused, TLS verification, identity
endpoint down, token refused, wrong password. The AWS aliases are in test_check_aws.py."""
import json
import os
import subprocess

import pytest

import pooler as pooler_mod
from conftest import APP_DB, APP_PW, APP_USER, app_connstr
from pooler import SAN_ENV, SANITIZER_PATTERNS, binary
from util import free_port
from test_entra import (ROLE, entra, entra_pooler, make_front, secret_cred,  # noqa: F401 (fixtures)
                        standins)

STEPS = ("token", "resolve", "connect", "tls", "login", "select1", "check_query")


@pytest.fixture(autouse=True)
def _tokenbouncer_only():
    pooler_mod.tokenbouncer_only("the check command is tokenbouncer's")


def doctor(p, *args, timeout=120):
    env = dict(os.environ)
    env.update(SAN_ENV)
    env.update(p.env)
    res = subprocess.run([binary(), "check", p.ini] + list(args), stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=timeout, env=env, cwd=p.workdir)
    found = [s for s in SANITIZER_PATTERNS if s in res.stderr]
    assert not found, res.stderr
    return res


def report(p, *args):
    """(exit status, {alias: row}) of `check --json`."""
    res = doctor(p, "--json", *args)
    try:
        rows = json.loads(res.stdout)
    except ValueError:
        pytest.fail("not JSON (exit %d):\n%s\n%s" % (res.returncode, res.stdout, res.stderr))
    return res.returncode, {r["alias"]: r for r in rows}


def assert_ok(row):
    assert row["result"] == "ok", row
    for step in ("resolve", "connect", "login", "select1"):
        assert step in row["steps_ms"] and row["steps_ms"][step] >= 0, row
    assert row["total_ms"] >= sum(row["steps_ms"].values()) - 1


def assert_failed(row, step, *needles):
    assert row["result"] == "failed", row
    assert row["failed_step"] == step, row
    for n in needles:
        assert n in row["cause"] + " || " + row["fix"], (n, row)
    later = STEPS[STEPS.index(step) + 1:]
    assert not any(s in row["steps_ms"] for s in later), row


def test_password_aliases_each_cause(make_pooler, pg, certs):
    refused_port = free_port()
    dbs = {
        "good": app_connstr(pg, sslmode="verify-full"),
        "badpw": app_connstr(pg, password="not-" + APP_PW, sslmode="require"),
        "refused": "host=127.0.0.1 port=%d dbname=%s user=%s password=x sslmode=disable" % (
            refused_port, APP_DB, APP_USER),
        "nodns": "host=no-such-host.invalid port=5432 dbname=%s user=%s password=x" % (APP_DB, APP_USER),
        "perclient": "host=127.0.0.1 port=%d dbname=%s" % (pg.port, APP_DB),
    }
    p = make_pooler(databases=dbs, settings={"server_tls_ca_file": certs.ca_crt}, start=False)
    p.write_files()
    rc, rows = report(p)
    assert rc == 1
    assert set(rows) == set(dbs)
    good = rows["good"]
    assert_ok(good)
    assert good["tls"]["verify"] == "ok" and good["tls"]["verify_ok"] is True, good
    assert good["tls"]["protocol"].startswith("TLSv1."), good
    assert "CN=" in good["tls"]["subject"] and good["tls"]["days_left"] >= 0, good
    assert good["address"] == "127.0.0.1"
    assert_failed(rows["badpw"], "login", "password authentication failed", "password=")
    assert_failed(rows["refused"], "connect", "Connection refused", "port %d" % refused_port)
    assert_failed(rows["nodns"], "resolve", "no-such-host.invalid", "resolve")
    assert rows["perclient"]["result"] == "skipped" and "--user" in rows["perclient"]["cause"]

    # one alias, text form; --user fills in the client's user; exit 0 when all pass
    res = doctor(p, "--alias", "perclient", "--user", APP_USER)
    assert res.returncode == 1, res.stdout   # no password for appuser in the userlist
    rc, rows = report(p, "--alias", "good")
    assert rc == 0 and list(rows) == ["good"]
    res = doctor(p, "--alias", "good")
    assert res.returncode == 0, res.stdout + res.stderr
    header, line = res.stdout.splitlines()[:2]
    assert header.split()[:5] == ["ALIAS", "METHOD", "USER", "RESULT", "TOTAL_MS"]
    assert line.split()[:4] == ["good", "password", APP_USER, "ok"]
    assert "verification ok" in res.stdout
    assert APP_PW not in res.stdout + res.stderr


def test_tls_verification_failure_says_which_ca(make_pooler, pg):
    p = make_pooler(databases={"strict": app_connstr(pg, sslmode="verify-full")},
                    settings={"server_tls_ca_file": "/etc/ssl/certs/ca-certificates.crt"}, start=False)
    p.write_files()
    rc, rows = report(p)
    assert rc == 1
    row = rows["strict"]
    assert_failed(row, "tls", "server_tls_ca_file")
    assert row["tls"] and row["tls"]["verify_ok"] is False and row["tls"]["verify"] != "ok", row


def test_server_check_query_runs_after_select_1(make_pooler, pg, certs):
    p = make_pooler(databases={"good": app_connstr(pg)},
                    settings={"server_check_query": "select 1 from pg_class limit 1"}, start=False)
    p.write_files()
    rc, rows = report(p)
    assert rc == 0, rows
    assert "select1" in rows["good"]["steps_ms"] and "check_query" in rows["good"]["steps_ms"]
    p.settings["server_check_query"] = "select * from no_such_table_for_check"
    p.write_files()
    rc, rows = report(p)
    assert rc == 1
    assert_failed(rows["good"], "check_query", "no_such_table_for_check")


def test_entra_alias_ok_and_each_token_failure(make_pooler, certs, make_front, standins, tmp_path):
    e = standins(entra.EntraStandIn())
    front = make_front({entra.DEFAULT_CLIENT_ID: ROLE}, issued_check=e.is_issued,
                       reject=lambda n: os.path.exists(str(tmp_path / "reject")))
    p = entra_pooler(make_pooler, certs, front, secret_cred(e, tmp_path), start=False)
    p.write_files()
    rc, rows = report(p)
    row = rows["orders"]
    assert rc == 0, row
    assert_ok(row)
    assert row["method"] == "entra" and row["user"] == ROLE
    assert row["steps_ms"]["token"] > 0 and row["tls"]["verify_ok"] is True, row
    assert e.requests(method="POST"), "no token request reached the stand-in"

    # the database refuses every token: the pooler retries once with a fresh one, then fails
    open(str(tmp_path / "reject"), "w").close()
    rc, rows = report(p)
    assert rc == 1
    assert_failed(rows["orders"], "login", "rejected a fresh Entra token", "mapped to this identity")
    assert rows["orders"]["token_retried"] is True
    os.unlink(str(tmp_path / "reject"))

    # the identity endpoint is down
    e.add_fault(kind="status", status=503, count=None)
    rc, rows = report(p)
    assert rc == 1
    assert_failed(rows["orders"], "token", "503", "[credential.app]")
    e.clear_faults()

    # a wrong client secret: the endpoint refuses the credential
    p.extra_lines = [l.replace(str(tmp_path / "client-secret"), secret_cred(
        e, tmp_path / "..", secret="wrong-secret")["client_secret_file"]) for l in p.extra_lines]
    p.write_files()
    rc, rows = report(p)
    assert rc == 1
    assert_failed(rows["orders"], "token", "invalid_client")
