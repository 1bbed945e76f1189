"""`make install` into a DESTDIR, with the prefix overridden: the binary, both man pages (the
generated ones, rendering without warnings), the sample configuration, the systemd unit (paths of
the install, Type=notify when built with libsystemd, the sandboxing options) checked by
`systemd-analyze verify`, and the sysusers entry; `make uninstall` removes them again."""
import os
import re
import shutil
import subprocess

import pytest

import pooler as pooler_mod
from pooler import REPO_ROOT, binary

PREFIX = "/opt/tokenbouncer"


@pytest.fixture(autouse=True)
def _tokenbouncer_only():
    pooler_mod.tokenbouncer_only("make install is tokenbouncer's")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    build = os.path.dirname(os.path.abspath(binary()))
    if not os.path.exists(os.path.join(build, "Makefile")):
        pytest.fail("%s has no Makefile: TOKENBOUNCER_BIN must be in a configured build directory" % build)
    dest = str(tmp_path_factory.mktemp("destdir"))
    res = subprocess.run(["make", "-C", build, "install", "prefix=" + PREFIX, "DESTDIR=" + dest],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    yield build, dest, dest + PREFIX
    shutil.rmtree(dest, ignore_errors=True)


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_tree(installed):
    _, _, root = installed
    assert files_under(root) == [
        "bin/tokenbouncer",
        "etc/tokenbouncer/tokenbouncer.ini",
        "lib/systemd/system/tokenbouncer.service",
        "lib/sysusers.d/tokenbouncer.conf",
        "share/doc/tokenbouncer/examples/tokenbouncer.ini",
        "share/man/man1/tokenbouncer.1",
        "share/man/man5/tokenbouncer.ini.5",
    ]
    out = subprocess.run([root + "/bin/tokenbouncer", "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("tokenbouncer "), out
    sample = open(os.path.join(REPO_ROOT, "etc", "tokenbouncer.ini")).read()
    assert open(root + "/etc/tokenbouncer/tokenbouncer.ini").read() == sample
    assert oct(os.stat(root + "/etc/tokenbouncer/tokenbouncer.ini").st_mode & 0o777) == "0o640"
    assert "[credential." in sample and "auth=aws-dsql" in sample and "auth=entra" in sample


@pytest.mark.parametrize("page,section", [("tokenbouncer.1", 1), ("tokenbouncer.ini.5", 5)])
def test_man_pages_are_the_generated_ones_and_render(installed, page, section):
    _, _, root = installed
    path = "%s/share/man/man%d/%s" % (root, section, page)
    gen = subprocess.run([binary(), "--print-man", page], capture_output=True, text=True, timeout=30)
    assert gen.returncode == 0
    assert open(path).read() == gen.stdout
    res = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, MANWIDTH="100", LC_ALL="C"))
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr
    text = re.sub(r".\x08", "", res.stdout)   # overstrike bold and underline
    if section == 5:
        for needle in ("server_lifetime", "[CREDENTIAL.NAME]", "type = azure-workload-identity", "role_arn"):
            assert needle in text, needle
    else:
        assert "check FILE.ini" in text and "/readyz" in text, text


def test_systemd_unit(installed, tmp_path):
    build, dest, root = installed
    unit = open(root + "/lib/systemd/system/tokenbouncer.service").read()
    settings = dict(re.findall(r"^(\w+)=(.*)$", unit, re.M))
    with_systemd = "#define HAVE_LIBSYSTEMD 1" in open(os.path.join(build, "config.h")).read()
    assert settings["Type"] == ("notify" if with_systemd else "simple")
    assert settings["ExecStart"] == "%s/bin/tokenbouncer %s/etc/tokenbouncer/tokenbouncer.ini" % (PREFIX, PREFIX)
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    for key, want in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("CapabilityBoundingSet", ""),
                      ("User", "tokenbouncer")):
        assert settings.get(key) == want, (key, settings.get(key))
    assert "u tokenbouncer " in open(root + "/lib/sysusers.d/tokenbouncer.conf").read()
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    # verify checks that the commands exist and that the man pages of Documentation= open:
    # point both at the staged tree
    staged = tmp_path / "tokenbouncer.service"
    staged.write_text(unit.replace(PREFIX + "/", root + "/"))
    res = subprocess.run(["systemd-analyze", "verify", str(staged)], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, MANPATH=root + "/share/man"))
    assert res.returncode == 0 and not res.stderr.strip(), res.stdout + res.stderr
    sec = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(staged)], capture_output=True,
                         text=True, timeout=60)
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", sec.stdout)
    print("systemd-analyze security: exposure %s" % (score.group(1) if score else "?"))
    assert score and float(score.group(1)) <= 2.5, sec.stdout[-1500:]


def test_uninstall_removes_what_install_put(installed):
    build, dest, root = installed
    res = subprocess.run(["make", "-C", build, "uninstall", "prefix=" + PREFIX, "DESTDIR=" + dest],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert files_under(root) == []


def test_sd_notify_ready_reloading_stopping(make_pooler, pg, tmp_path):
    """Type=notify: READY=1 once listening, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on
    SIGINT, sent to $NOTIFY_SOCKET as systemd would receive them."""
    import signal
    import socket
    from conftest import app_connstr
    build = os.path.dirname(os.path.abspath(binary()))
    if "#define HAVE_LIBSYSTEMD 1" not in open(os.path.join(build, "config.h")).read():
        pytest.skip("built without libsystemd: the unit is Type=simple")
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(15)
    try:
        p = make_pooler(databases={"appdb": app_connstr(pg)}, env={"NOTIFY_SOCKET": path})
        assert sock.recv(4096).decode().startswith("READY=1")
        p.signal(signal.SIGHUP)
        assert sock.recv(4096).decode() == "RELOADING=1"
        assert sock.recv(4096).decode().startswith("READY=1")
        p.expected_exit = True
        p.signal(signal.SIGINT)
        assert sock.recv(4096).decode() == "STOPPING=1"
    finally:
        sock.close()


def test_configure_prefix_and_sysconfdir(tmp_path):
    """configure --prefix and --sysconfdir decide where the data files go and the paths in the
    unit (install-data needs no compile, so this is a fresh configure only)."""
    build = tmp_path / "b"
    build.mkdir()
    res = subprocess.run([os.path.join(REPO_ROOT, "configure"), "--prefix=/usr", "--sysconfdir=/etc",
                          "--without-systemd"], cwd=str(build), capture_output=True, text=True, timeout=300)
    if res.returncode != 0 and "source directory already configured" in res.stderr:
        pytest.skip("the source tree is configured in place: a second build directory cannot be")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    dest = tmp_path / "dest"
    res = subprocess.run(["make", "install-data", "DESTDIR=" + str(dest)], cwd=str(build), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert files_under(str(dest)) == [
        "etc/tokenbouncer/tokenbouncer.ini",
        "usr/lib/systemd/system/tokenbouncer.service",
        "usr/lib/sysusers.d/tokenbouncer.conf",
        "usr/share/doc/tokenbouncer/examples/tokenbouncer.ini",
        "usr/share/man/man1/tokenbouncer.1",
        "usr/share/man/man5/tokenbouncer.ini.5",
    ]
    unit = open(str(dest / "usr/lib/systemd/system/tokenbouncer.service")).read()
    assert "\nExecStart=/usr/bin/tokenbouncer /etc/tokenbouncer/tokenbouncer.ini\n" in unit
    assert "\nType=simple\n" in unit, "--without-systemd: no sd_notify, so Type=simple"
