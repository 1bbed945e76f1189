"""SIGHUP: a valid config is applied, an invalid one is reported and changes nothing."""
import re

import pytest

import rawpg
from conftest import ALICE, ALICE_PW, app_connstr
from pooler import is_pgbouncer, tokenbouncer_only
from test_pool import BackendMonitor, sleepers


def test_reload_changes_pool_size(make_pooler, pg, new_role):
    role = new_role("hup")
    p = make_pooler(databases={"appdb": app_connstr(pg, user=role, pool_size=2)})
    with BackendMonitor(pg, role) as mon:
        sleepers(p, 6, 0.4)
    assert mon.max_seen == 2, "before reload: max backends %d" % mon.max_seen

    p.databases["appdb"] = app_connstr(pg, user=role, pool_size=4)
    p.write_files()
    p.reload()
    with BackendMonitor(pg, role) as mon:
        pids, _ = sleepers(p, 6, 0.4)
    assert mon.max_seen == 4, "after reload to pool_size=4: max backends %d" % mon.max_seen
    assert len(set(pids)) == 4


def test_reload_adds_alias_and_auth_file_user(make_pooler, pg):
    p = make_pooler()
    with pytest.raises(rawpg.PgError):
        rawpg.try_login("127.0.0.1", p.port, "carol", "newdb", "Carol-Pw-1").close()
    p.databases["newdb"] = app_connstr(pg)
    p.users["carol"] = rawpg.scram_secret("Carol-Pw-1") if not is_pgbouncer() else "Carol-Pw-1"
    p.write_files()
    p.reload()
    with p.connect("newdb", "carol", "Carol-Pw-1") as conn:
        assert conn.execute("select 9").fetchone() == (9,)
    # the old alias and user are still there
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute("select 10").fetchone() == (10,)


def test_invalid_reload_keeps_old_config(make_pooler, pg):
    tokenbouncer_only("PgBouncer only warns about unknown keys")
    p = make_pooler()
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    # the new config renames the alias and holds an unknown key: it must not be applied at all
    p.databases = {"renamed": app_connstr(pg)}
    p.extra_lines = ["no_such_setting_xyz = 1"]
    p.write_files()
    line = p.ini_line_of("no_such_setting_xyz")
    log = p.reload(expect=re.escape("%s:%d:" % (p.ini, line)))
    assert "no_such_setting_xyz" in log, log
    # old settings still in force
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute("select 2").fetchone() == (2,)
    with pytest.raises(rawpg.PgError) as ei:
        rawpg.try_login("127.0.0.1", p.port, ALICE, "renamed", ALICE_PW).close()
    assert ei.value.code == "3D000"
    assert p.alive()


def test_invalid_value_on_reload(make_pooler, pg):
    tokenbouncer_only()
    p = make_pooler()
    p.settings["pool_mode"] = "not-a-mode"
    p.write_files()
    line = p.ini_line_of("pool_mode")
    p.reload(expect=re.escape("%s:%d:" % (p.ini, line)))
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute("select 3").fetchone() == (3,)
