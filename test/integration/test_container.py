"""The container image (Dockerfile), built and run here with podman, on a Debian 12 base image
this test makes itself (no registry is reachable): debootstrap a minimal bookworm root file
system from the mirror apt uses, import it with podman, build the Dockerfile on it, and run the
image with host networking against the test PostgreSQL: a query through it, /healthz, the image's
HEALTHCHECK, and a SIGTERM shutdown.

Slow (minutes: the base, then a compile in the build stage), so it runs only with
TB_CONTAINER_TEST=1; bash scripts/deps.sh --container installs podman and debootstrap. The root
file system is cached as $TB_CONTAINER_CACHE/debian12-rootfs.tar (default
/var/cache/tokenbouncer-test), so later runs only rebuild the image."""
import json
import os
import re
import shutil
import subprocess
import time

import psycopg
import pytest

import pooler as pooler_mod
from conftest import ALICE, ALICE_PW, app_connstr
from pooler import REPO_ROOT, quote_userlist
from rawpg import scram_secret
from util import free_port, port_accepts, wait_for

BASE = "localhost/tb-debian12:base"
IMAGE = "localhost/tokenbouncer:test"
CACHE = os.environ.get("TB_CONTAINER_CACHE", "/var/cache/tokenbouncer-test")

pytestmark = pytest.mark.skipif(os.environ.get("TB_CONTAINER_TEST") != "1",
                                reason="slow (debootstrap + podman build): run with TB_CONTAINER_TEST=1")


def run(cmd, timeout, check=True, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    if check:
        assert res.returncode == 0, "%s failed (%d):\n%s\n%s" % (" ".join(cmd), res.returncode,
                                                                 res.stdout[-3000:], res.stderr[-3000:])
    return res


def apt_mirror():
    """The Debian mirror apt uses (deb822 or one-line sources)."""
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        if os.path.exists(path):
            text = open(path).read()
            m = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or \
                re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s+bookworm", text, re.M)
            if m:
                return m.group(1)
    return "http://deb.debian.org/debian"


@pytest.fixture(scope="module")
def podman():
    pooler_mod.tokenbouncer_only("the container image is tokenbouncer's")
    exe = shutil.which("podman")
    if not exe:
        pytest.skip("podman is not installed (bash scripts/deps.sh --container)")
    info = run([exe, "info", "--format", "json"], 120, check=False)
    if info.returncode != 0:
        pytest.skip("podman cannot run here: %s" % info.stderr.strip()[-300:])
    return exe


@pytest.fixture(scope="module")
def base_image(podman):
    if run([podman, "image", "exists", BASE], 60, check=False).returncode == 0:
        return BASE
    tar = os.path.join(CACHE, "debian12-rootfs.tar")
    if not os.path.exists(tar):
        if not shutil.which("debootstrap"):
            pytest.skip("debootstrap is not installed (bash scripts/deps.sh --container)")
        os.makedirs(CACHE, exist_ok=True)
        root = os.path.join(CACHE, "rootfs-build")
        shutil.rmtree(root, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", "bookworm", root, apt_mirror()], 1800)
        run(["tar", "-C", root, "-cf", tar + ".tmp", "."], 600)
        os.rename(tar + ".tmp", tar)
        shutil.rmtree(root, ignore_errors=True)
    run([podman, "import", tar, BASE], 600)
    return BASE


OCI_TROUBLE = ("OCI permission denied", "cgroups in hybrid mode", "setrlimit", "OCI runtime error")


def cannot_run_containers(res):
    return res.returncode != 0 and any(t in res.stderr for t in OCI_TROUBLE)


@pytest.fixture(scope="module")
def image(podman, base_image):
    """Built with podman's default isolation, or with chroot isolation where this machine cannot
    start OCI containers (RUN steps then run in a chroot of the image)."""
    t = time.monotonic()
    cmd = [podman, "build", "--format", "docker", "--network", "host", "--build-arg", "BASE_IMAGE=" + base_image,
           "-t", IMAGE, REPO_ROOT]
    res = run(cmd, 2400, check=False)
    if cannot_run_containers(res):
        print("podman cannot start OCI containers here; building with --isolation chroot")
        res = run(cmd[:2] + ["--isolation", "chroot"] + cmd[2:], 2400, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    print("podman build: %.0f s" % (time.monotonic() - t))
    return IMAGE


@pytest.fixture(scope="module")
def image_root(podman, image):
    """The image's file system, mounted (root only)."""
    res = run([podman, "image", "mount", image], 120, check=False)
    if res.returncode != 0:
        pytest.skip("cannot mount the image: %s" % res.stderr.strip()[-300:])
    yield res.stdout.strip()
    run([podman, "image", "unmount", image], 120, check=False)


def pooler_files(pg, tmp_path, port, mport):
    ini = tmp_path / "tokenbouncer.ini"
    ini.write_text("[tokenbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n"
                   "metrics_listen = 127.0.0.1:%d\nauth_type = scram-sha-256\n"
                   "auth_file = /etc/tokenbouncer/secret/userlist.txt\npool_mode = transaction\n\n"
                   "[databases]\nappdb = %s\n" % (port, mport, app_connstr(pg)))
    users = tmp_path / "userlist.txt"
    users.write_text("%s %s\n" % (quote_userlist(ALICE), quote_userlist(scram_secret(ALICE_PW))))
    for f in (ini, users):
        os.chmod(str(f), 0o644)   # readable by the image's user 10001 (test files only)
    os.chmod(str(tmp_path), 0o755)
    return ini, users


def query_through(port, mport):
    wait_for(lambda: port_accepts(port), 30, "the pooler from the image to listen")
    with psycopg.connect(host="127.0.0.1", port=port, dbname="appdb", user=ALICE, password=ALICE_PW,
                         sslmode="disable", connect_timeout=10) as c:
        assert c.execute("select 40 + 2").fetchone() == (42,)
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % mport, timeout=10) as r:
        assert r.status == 200


def test_image_metadata(podman, image):
    (meta,) = json.loads(run([podman, "image", "inspect", image], 60).stdout)
    cfg = meta["Config"]
    health = meta.get("Healthcheck") or cfg.get("Healthcheck")   # where podman / docker keep it
    assert health and "TB_HEALTH_URL" in " ".join(health["Test"]), meta
    assert cfg["User"] == "10001:10001"
    assert cfg["Entrypoint"][:2] == ["/usr/bin/tini", "--"]
    assert cfg["StopSignal"] in ("SIGINT", "2")
    assert "TB_HEALTH_URL=http://127.0.0.1:9127/healthz" in cfg["Env"]
    print("image size: %.0f MB" % (meta["Size"] / 1e6))


def test_runtime_stage_has_the_libraries_and_no_compiler(image_root):
    for tool in ("usr/bin/gcc", "usr/bin/cc", "usr/bin/make"):
        assert not os.path.exists(os.path.join(image_root, tool)), tool
    for f in ("usr/bin/tokenbouncer", "usr/bin/tini", "usr/bin/curl", "etc/ssl/certs/ca-certificates.crt"):
        assert os.path.exists(os.path.join(image_root, f)), f
    res = run(["chroot", image_root, "/usr/bin/tokenbouncer", "--version"], 60)
    assert res.stdout.startswith("tokenbouncer ")


def test_image_serves_in_a_chroot_then_sigterm(image_root, pg, tmp_path):
    """The image's own file system and binary, run as its user 10001 in a chroot (what podman
    run does, without the namespaces): a query, /healthz, then SIGTERM ends it with status 0.
    This runs where podman cannot start containers (the next test then skips)."""
    import signal
    port, mport = free_port(), free_port()
    ini, users = pooler_files(pg, tmp_path, port, mport)
    cfg_dir, sec_dir = os.path.join(image_root, "etc/tokenbouncer/config"), os.path.join(image_root, "etc/tokenbouncer/secret")
    run(["mount", "--bind", str(tmp_path), cfg_dir], 30)
    try:
        run(["mount", "--bind", str(tmp_path), sec_dir], 30)
        try:
            proc = subprocess.Popen(["chroot", "--userspec=10001:10001", image_root, "/usr/bin/tini", "--",
                                     "/usr/bin/tokenbouncer", "/etc/tokenbouncer/config/tokenbouncer.ini"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
            try:
                try:
                    query_through(port, mport)
                except Exception:
                    proc.kill()
                    print(proc.communicate(timeout=10)[0])
                    raise
                proc.send_signal(signal.SIGTERM)
                out, _ = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            assert proc.returncode == 0, out
            assert "SIGTERM" in out, out
        finally:
            run(["umount", sec_dir], 30, check=False)
    finally:
        run(["umount", cfg_dir], 30, check=False)


def test_query_through_the_container_then_sigterm(podman, image, pg, tmp_path):
    probe = run([podman, "run", "--rm", "--network", "host", image, "--version"], 120, check=False)
    if cannot_run_containers(probe):
        pytest.skip("podman cannot start containers on this machine: %s" % probe.stderr.strip()[-300:])
    assert probe.returncode == 0 and probe.stdout.startswith("tokenbouncer "), probe
    port, mport = free_port(), free_port()
    ini, users = pooler_files(pg, tmp_path, port, mport)
    name = "tb-test-%d" % os.getpid()
    run([podman, "run", "-d", "--name", name, "--network", "host", "--env", "TB_HEALTH_URL=http://127.0.0.1:%d/healthz" % mport,
         "-v", "%s:/etc/tokenbouncer/config/tokenbouncer.ini:ro" % ini,
         "-v", "%s:/etc/tokenbouncer/secret/userlist.txt:ro" % users, image], 120)
    try:
        query_through(port, mport)
        hc = run([podman, "healthcheck", "run", name], 60, check=False)
        assert hc.returncode == 0, hc.stdout + hc.stderr
        t = time.monotonic()
        run([podman, "kill", "--signal", "TERM", name], 60)
        status = wait_for(lambda: (lambda s: s if s in ("exited", "stopped") else None)(
            run([podman, "inspect", "-f", "{{.State.Status}}", name], 30).stdout.strip()), 30,
            "the container to exit after SIGTERM")
        code = run([podman, "inspect", "-f", "{{.State.ExitCode}}", name], 30).stdout.strip()
        print("SIGTERM to exit: %.1f s, exit code %s (%s)" % (time.monotonic() - t, code, status))
        assert code == "0"
        logs = run([podman, "logs", name], 30).stdout + run([podman, "logs", name], 30).stderr
        assert "SIGTERM" in logs, logs[-2000:]
    finally:
        run([podman, "rm", "-f", name], 60, check=False)
