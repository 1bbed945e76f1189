"""`tokenbouncer check FILE.ini --through HOST:PORT`: the doctor as a client, with libpq, through
a running pooler (README.md, "tokenbouncer check"). A working alias answers; a wrong client password, an alias
whose upstream refuses, and a port nobody listens on each fail with libpq's own cause; the exit
status says whether every alias answered."""
import os
import subprocess

import pytest

import pooler as pooler_mod
from conftest import ALICE, ALICE_PW, APP_DB, APP_USER, app_connstr
from pooler import SAN_ENV, SANITIZER_PATTERNS, binary
from util import free_port


@pytest.fixture(autouse=True)
def _tokenbouncer_only():
    pooler_mod.tokenbouncer_only("the check command is tokenbouncer's")


def through(p, port, *args, password=ALICE_PW):
    env = dict(os.environ)
    env.update(SAN_ENV)
    env.update(PGPASSWORD=password, PGSSLMODE="disable")
    res = subprocess.run([binary(), "check", p.ini, "--through", "127.0.0.1:%d" % port] + list(args),
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                         env=env, cwd=p.workdir)
    found = [s for s in SANITIZER_PATTERNS if s in res.stderr]
    assert not found, res.stderr
    return res


def lines(res):
    return {l.split(":")[0].strip(): l for l in res.stdout.splitlines() if l.startswith("  ")}


def test_through_a_running_pooler(make_pooler, pg):
    refused = free_port()
    p = make_pooler(databases={
        "good": app_connstr(pg),
        "badup": app_connstr(pg, password="not-the-password"),
        "down": "host=127.0.0.1 port=%d dbname=%s user=%s password=x" % (refused, APP_DB, APP_USER),
    })
    res = through(p, p.port, "--user", ALICE)
    assert res.returncode == 1, res.stdout + res.stderr
    rows = lines(res)
    assert set(rows) == {"good", "badup", "down"}, res.stdout
    assert "ok through 127.0.0.1:%d" % p.port in rows["good"], rows["good"]
    assert "FAILED" in rows["badup"] and "password authentication failed" in rows["badup"], rows
    assert "FAILED" in rows["down"], rows
    assert "1 of 3 aliases answered" in res.stdout

    # one alias that works: exit 0
    res = through(p, p.port, "--user", ALICE, "--alias", "good")
    assert res.returncode == 0, res.stdout + res.stderr
    assert list(lines(res)) == ["good"]
    # the client's own password is checked by the pooler
    res = through(p, p.port, "--user", ALICE, "--alias", "good", password="wrong")
    assert res.returncode == 1 and "password authentication failed" in res.stdout, res.stdout


def test_through_nothing_listening(make_pooler, pg):
    p = make_pooler(databases={"good": app_connstr(pg)})
    port = free_port()
    res = through(p, port, "--user", ALICE)
    assert res.returncode == 1
    assert "FAILED through 127.0.0.1:%d" % port in res.stdout, res.stdout
    assert "refused" in res.stdout.lower() or "connect" in res.stdout.lower(), res.stdout
    res = through(p, p.port, "--user", ALICE, "--alias", "nosuch")
    assert res.returncode == 2 and "no alias nosuch" in res.stdout, res.stdout
    bad = subprocess.run([binary(), "check", p.ini, "--through", "nocolon"], capture_output=True,
                         text=True, timeout=60, env=dict(os.environ, **SAN_ENV), cwd=p.workdir)
    assert bad.returncode == 2 and "HOST:PORT" in bad.stdout, bad.stdout + bad.stderr
