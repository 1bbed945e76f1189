"""Command line (--check, --version, --help), signals and the pidfile."""
import os
import signal
import subprocess
import time

import psycopg
import pytest

from conftest import ALICE, ALICE_PW
from pooler import SAN_ENV, SANITIZER_PATTERNS, Pooler, binary, is_pgbouncer, run_check, tokenbouncer_only
from util import Bounded, port_accepts, wait_for


@pytest.fixture(autouse=True)
def _tokenbouncer_cli_only():
    tokenbouncer_only("tokenbouncer command line")
    if not os.path.exists(binary()):
        pytest.fail("tokenbouncer binary not found at %s" % binary())


def no_sanitizer_output(text):
    found = [p for p in SANITIZER_PATTERNS if p in text]
    assert not found, "sanitizer report:\n" + text


def make_config(pg, **kw):
    from conftest import app_connstr
    from rawpg import scram_secret
    return Pooler(databases={"appdb": app_connstr(pg)}, users={ALICE: scram_secret(ALICE_PW)}, **kw)


def test_check_valid_config(pg):
    p = make_config(pg)
    try:
        res = run_check(p.ini)
        no_sanitizer_output(res.stderr + res.stdout)
        assert res.returncode == 0, res.stderr
    finally:
        p.cleanup()


@pytest.mark.parametrize("bad", [
    ("unknown key", "extra", "no_such_key_abc = 1", "no_such_key_abc"),
    ("bad enum", "setting", ("pool_mode", "sometimes"), "pool_mode"),
    ("bad number", "setting", ("default_pool_size", "lots"), "default_pool_size"),
    ("bad port", "setting", ("listen_port", "70000"), "listen_port"),
], ids=lambda b: b[0])
def test_check_invalid_config(pg, bad):
    _, kind, what, needle = bad
    p = make_config(pg)
    try:
        if kind == "extra":
            p.extra_lines = [what]
        else:
            p.settings[what[0]] = what[1]
        p.write_files()
        line = p.ini_line_of(needle)
        res = run_check(p.ini)
        no_sanitizer_output(res.stderr + res.stdout)
        assert res.returncode == 1, (res.returncode, res.stderr)
        assert "%s:%d:" % (p.ini, line) in res.stderr, res.stderr
    finally:
        p.cleanup()


def test_check_bad_database_entry(pg):
    p = make_config(pg)
    try:
        p.databases["broken"] = "host=127.0.0.1 port=notaport dbname=x"
        p.write_files()
        line = p.ini_line_of("broken =")
        res = run_check(p.ini)
        assert res.returncode == 1, res.stderr
        assert "%s:%d:" % (p.ini, line) in res.stderr, res.stderr
    finally:
        p.cleanup()


def test_check_missing_file(tmp_path):
    res = run_check(str(tmp_path / "nope.ini"))
    assert res.returncode == 1
    assert "nope.ini" in res.stderr


def test_long_database_entry_on_one_line(make_pooler, pg, new_role):
    """An entry over Debian libinih's 198-byte line buffer, on one line as PgBouncer takes it."""
    from conftest import app_connstr
    pw = "Pw" + "0123456789abcdef" * 9 + "-end"
    role = new_role("longline", password=pw)
    entry = app_connstr(pg, user=role, password=pw) + " pool_size=3"
    assert len(entry) > 198
    p = make_pooler(databases={"appdb": entry})
    with open(p.ini) as f:
        text = f.read()
    assert max(len(line) for line in text.splitlines()) > 198
    res = run_check(p.ini)
    assert res.returncode == 0, res.stderr
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute("select current_user").fetchone() == (role,)


@pytest.mark.parametrize("arg", ["--version", "--help"])
def test_version_and_help(arg):
    env = dict(os.environ)
    env.update(SAN_ENV)
    res = subprocess.run([binary(), arg], capture_output=True, text=True, timeout=30, env=env)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "tokenbouncer" in out.lower()
    no_sanitizer_output(out)


def test_version_matches_show_version(make_pooler):
    """--version and the console's SHOW VERSION say the same thing."""
    import rawpg
    env = dict(os.environ)
    env.update(SAN_ENV)
    res = subprocess.run([binary(), "--version"], capture_output=True, text=True, timeout=30, env=env)
    p = make_pooler(settings={"admin_users": ALICE})
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, "pgbouncer", ALICE_PW)
    try:
        assert c.query_ok("SHOW VERSION").rows == [(res.stdout.strip(),)]
    finally:
        c.terminate()
    assert "PgBouncer 1.25" in res.stdout


def test_pidfile_and_sigint_with_no_clients(make_pooler):
    p = make_pooler()
    assert wait_for(lambda: os.path.exists(p.pidfile), 5, "pidfile")
    with open(p.pidfile) as f:
        assert int(f.read().strip()) == p.proc.pid
    p.signal(signal.SIGINT)
    assert p.proc.wait(10) == 0
    assert not os.path.exists(p.pidfile), "pidfile left behind after SIGINT"


def test_sigint_waits_for_session_clients(make_pooler):
    """SIGINT in session mode: a client holds its server, so it goes on until it leaves."""
    p = make_pooler()
    conn = p.connect("appdb", ALICE, ALICE_PW)
    assert conn.execute("select 1").fetchone() == (1,)
    p.signal(signal.SIGINT)
    # stops accepting new connections ...
    wait_for(lambda: not port_accepts(p.port), 5, "listener to close after SIGINT")
    # ... but the connected client goes on
    assert conn.execute("select 2").fetchone() == (2,)
    assert p.proc.poll() is None
    conn.close()
    assert p.proc.wait(10) == 0
    assert not os.path.exists(p.pidfile)


def test_sigquit_exits_at_once(make_pooler):
    sig = signal.SIGTERM if is_pgbouncer() else signal.SIGQUIT   # PgBouncer 1.18: SIGTERM
    p = make_pooler()
    conn = p.connect("appdb", ALICE, ALICE_PW)
    assert conn.execute("select 1").fetchone() == (1,)
    start = time.monotonic()
    p.signal(sig)
    p.proc.wait(5)
    assert time.monotonic() - start < 5
    assert not os.path.exists(p.pidfile)
    with pytest.raises(psycopg.OperationalError):
        Bounded(conn.execute, "select 2").result(10, "query after %s" % sig.name)
    conn.close()


def test_startup_fails_on_invalid_config(pg):
    p = make_config(pg, extra_lines=["no_such_key_abc = 1"])
    try:
        env = dict(os.environ)
        env.update(SAN_ENV)
        res = subprocess.run([binary(), p.ini], capture_output=True, text=True, timeout=30, env=env,
                             stdin=subprocess.DEVNULL)
        assert res.returncode != 0
        assert "%s:%d:" % (p.ini, p.ini_line_of("no_such_key_abc")) in res.stderr, res.stderr
        assert not port_accepts(p.port)
    finally:
        p.cleanup()
