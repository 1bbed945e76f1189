"""PgBouncer-style configuration files: indented lines, long lines, a parameter given twice,
%include, and PgBouncer 1.25 parameters that tokenbouncer accepts."""
import os

import pytest

from conftest import ALICE, ALICE_PW, app_connstr
from pooler import is_pgbouncer, run_check


def long_connect_query(size):
    """A connect_query of about size bytes whose effect shows only if it arrives whole: the
    padding comes first, the SET last."""
    pad = "x" * max(0, size - 60)
    return "connect_query='/* %s */ SET search_path TO marker_%d'" % (pad, size)


def show_config(p):
    with p.connect("pgbouncer", ALICE, ALICE_PW, prepare_threshold=None) as admin:
        return dict((r[0], r[1]) for r in admin.execute("show config").fetchall())


def pgbouncer_style_file(p, pg, extra_db_lines=(), include=None):
    """Everything indented, [pgbouncer] as the section, one parameter twice, one file
    included (relative to the working directory, as PgBouncer resolves it)."""
    lines = [
        "  ; a PgBouncer file as people write them",
        "  [pgbouncer]",
        "    listen_addr = 127.0.0.1",
        "    listen_port = %d" % p.port,
        "    auth_type = scram-sha-256",
        "    auth_file = %s" % p.userlist,
        "    logfile = %s" % p.logfile,
        "    pidfile = %s" % p.pidfile,
        "    admin_users = %s" % ALICE,
        "    pool_mode = transaction",
        "    default_pool_size = 3",
        "    default_pool_size = 5",
        "    pool_mode = session",
    ]
    if include:
        lines.append("  %%include %s" % include)
    lines += ["", "  [databases]"] + ["    " + line for line in extra_db_lines]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("size", [300, 4096, 65536])
def test_indented_file_with_long_lines(make_pooler, pg, size):
    p = make_pooler(start=False)
    entry = "appdb = %s %s" % (app_connstr(pg), long_connect_query(size))
    assert len(entry) > size
    with open(p.ini, "w") as f:
        f.write(pgbouncer_style_file(p, pg, [entry]))
    p.start()
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute("show search_path").fetchone() == ("marker_%d" % size,)
    if is_pgbouncer():
        return
    log = p.log_text()
    line = p.ini_line_of("default_pool_size = 5")
    assert ("%s:%d: default_pool_size is set again (first at %s:%d); the last value is used"
            % (p.ini, line, p.ini, line - 1)) in log, log
    rows = show_config(p)
    assert rows["default_pool_size"] == "5" and rows["pool_mode"] == "session"


def test_include_and_duplicate_entries(make_pooler, pg):
    p = make_pooler(start=False)
    with open(os.path.join(p.workdir, "more.ini"), "w") as f:
        f.write("  max_client_conn = 50\n[databases]\n  other = %s\n" % app_connstr(pg, dbname="postgres"))
    db_lines = ["appdb = host=127.0.0.1 port=1 dbname=nowhere",
                "appdb = %s" % app_connstr(pg)]
    with open(p.ini, "w") as f:
        f.write(pgbouncer_style_file(p, pg, db_lines, include="more.ini"))
    p.start()
    for db, want in (("appdb", "app"), ("other", "postgres")):
        with p.connect(db, ALICE, ALICE_PW) as conn:
            assert conn.execute("select current_database()").fetchone() == (want,)
    if is_pgbouncer():
        return
    rows = show_config(p)
    assert rows["max_client_conn"] == "50"
    log = p.log_text()
    assert "[databases] entry \"appdb\" is defined again (first at %s:%d); the last one is used" % (
        p.ini, p.ini_line_of("dbname=nowhere")) in log, log


def test_check_reports_warnings_for_pgbouncer_only_parameters(make_pooler, pg):
    if is_pgbouncer():
        pytest.skip("tokenbouncer --check")
    p = make_pooler(start=False)
    with open(p.ini, "a") as f:
        f.write("[pgbouncer]\ndns_zone_check_period = 60\nservice_name = pgbouncer\n")
    res = run_check(p.ini)
    assert res.returncode == 0, res.stderr
    line = p.ini_line_of("dns_zone_check_period")
    assert ("%s:%d: dns_zone_check_period has no effect: it needs the c-ares DNS library"
            % (p.ini, line)) in res.stderr, res.stderr
    # a value equal to PgBouncer's default changes nothing and says nothing
    assert "service_name" not in res.stderr
