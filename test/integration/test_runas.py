"""`user` (PgBouncer's): a pooler started as root binds its ports, writes its pidfile and then runs
as the named Unix user for good; one not started as root cannot switch and says so."""
import os
import pathlib
import pwd
import shutil
import subprocess
import tempfile

import pytest

import pooler as pooler_mod
from conftest import ALICE, ALICE_PW
from pooler import SAN_ENV, binary
from util import free_port

RUN_AS = "postgres"      # the harness's unprivileged user (it runs PostgreSQL)


@pytest.fixture(autouse=True)
def _root_only():
    pooler_mod.tokenbouncer_only("the harness starts PgBouncer as postgres already")
    if os.geteuid() != 0:
        pytest.skip("switching users needs a test run as root")


def ids(pid):
    with open("/proc/%d/status" % pid) as f:
        fields = dict(line.split(":", 1) for line in f)
    return ([int(x) for x in fields["Uid"].split()], [int(x) for x in fields["Gid"].split()],
            fields["Groups"].split())


def test_started_as_root_it_runs_as_the_user(make_pooler, pg):
    pw = pwd.getpwnam(RUN_AS)
    p = make_pooler(settings={"user": RUN_AS})
    # the port accepts as soon as the listeners are open, which is before the switch (they
    # may be privileged ports); the start-up line is logged after it
    p.wait_log(r"listening on")
    uids, gids, groups = ids(p.pid)
    assert uids == [pw.pw_uid] * 4, uids          # real, effective, saved, filesystem: no way back
    assert gids == [pw.pw_gid] * 4, gids
    assert "0" not in groups, groups               # root's supplementary groups are gone too
    assert os.path.exists(p.pidfile)               # written before the switch, as root
    with p.connect("appdb", ALICE, ALICE_PW) as c:
        assert c.execute("select 1").fetchone() == (1,)


def run_binary(ini_lines, as_user=None):
    # not pytest's tmp_path: its parents are root's alone, and the pooler may run as someone else
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="tbrunas"))
    os.chmod(tmp_path, 0o755)
    ul = tmp_path / "userlist.txt"
    ul.write_text('"alice" "x"\n')
    ini = tmp_path / "tb.ini"
    ini.write_text("[tokenbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n"
                   "auth_file = %s\n%s\n[databases]\nappdb = host=127.0.0.1\n"
                   % (free_port(), ul, "\n".join(ini_lines)))
    argv = [binary(), str(ini)]
    if as_user:
        argv = ["setpriv", "--reuid", as_user, "--regid", as_user, "--clear-groups", "--"] + argv
    env = dict(os.environ)
    env.update(SAN_ENV)
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_only_root_can_switch():
    res = run_binary(["user = nobody"], as_user=RUN_AS)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "user = nobody: only a pooler started as root can switch users" in res.stdout + res.stderr


def test_unknown_user_is_refused():
    res = run_binary(["user = no-such-user-tb"])
    assert res.returncode == 1, res.stdout + res.stderr
    assert "user = no-such-user-tb: no such Unix user" in res.stdout + res.stderr
