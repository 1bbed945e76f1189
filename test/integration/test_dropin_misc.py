"""PgBouncer 1.25 parameters that tokenbouncer used to accept and ignore (issue 12):
log_stats, login_notify_message, track_extra_parameters, resolv_conf, dns_max_ttl,
dns_nxdomain_ttl, and SHOW FDS."""
import os
import re
import subprocess
import time

import psycopg
import pytest

from conftest import ALICE, ALICE_PW
from pg import PG_BIN
from pooler import is_pgbouncer
from util import wait_for

PSQL = os.path.join(PG_BIN, "psql")

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="tokenbouncer's own log lines and console")

STATS_LINE = re.compile(r"LOG stats: (\d+) xacts/s, (\d+) queries/s, (\d+) client parses/s, "
                        r"(\d+) server parses/s, (\d+) binds/s, in (\d+) B/s, out (\d+) B/s, "
                        r"xact (\d+) us, query (\d+) us, wait (\d+) us$", re.M)


def alice(p, **kw):
    return p.connect("appdb", ALICE, ALICE_PW, prepare_threshold=None, **kw)


# ---------------------------------------------------------------- log_stats


def test_log_stats_line_every_period(make_pooler):
    quiet = make_pooler(settings={"stats_period": 1, "log_stats": 0})
    p = make_pooler(settings={"stats_period": 1})          # log_stats defaults to on
    with alice(p) as a, alice(quiet) as q:
        deadline = time.monotonic() + 30
        busy = []
        # queries until a line reports them (the averages cover the last stats_period)
        while time.monotonic() < deadline:
            a.execute("select 1")
            q.execute("select 1")
            busy = [m for m in STATS_LINE.finditer(p.log_text()) if int(m.group(1)) > 0]
            if busy:
                break
        assert busy, "no stats line with transactions:\n" + p.log_text()[-2000:]
        m = busy[0]
        assert int(m.group(2)) >= int(m.group(1)) and int(m.group(6)) > 0 and int(m.group(7)) > 0
    # one line per period while idle too, and all-zero once the period is quiet
    wait_for(lambda: len(STATS_LINE.findall(p.log_text())) >= 3, 15, "three stats lines")
    wait_for(lambda: STATS_LINE.findall(p.log_text())[-1][:2] == ("0", "0"), 15, "a zero line")
    assert not STATS_LINE.search(quiet.log_text()), quiet.log_text()


# ---------------------------------------------------------------- login_notify_message


def psql(p, sql, db="appdb", user=ALICE, password=ALICE_PW):
    env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
    return subprocess.run([PSQL, "-X", "-At", "-h", "127.0.0.1", "-p", str(p.port), "-U", user,
                           "-d", db, "-c", sql], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


def test_login_notify_message(make_pooler):
    text = "Maintenance tonight at 22:00 UTC: it's a 'quoted' notice"
    p = make_pooler(settings={"login_notify_message": text})
    res = psql(p, "select 42")
    assert res.returncode == 0 and res.stdout.strip() == "42", res
    # libpq prints a NOTICE that arrives during the login (before ReadyForQuery) on stderr
    assert res.stderr.count("NOTICE:  " + text) == 1, res.stderr
    # a reload that empties it stops it
    p.settings["login_notify_message"] = ""
    p.write_files()
    p.reload()
    res = psql(p, "select 43")
    assert res.returncode == 0 and "NOTICE" not in res.stderr, res


# ---------------------------------------------------------------- track_extra_parameters


def show(conn, name):
    return conn.execute("SHOW %s" % name).fetchone()[0]


def test_track_extra_parameters(make_pooler):
    # one server shared by every client: each must find its own values on it
    p = make_pooler(settings={"pool_mode": "transaction", "default_pool_size": 1,
                              "track_extra_parameters": "IntervalStyle, default_transaction_read_only"})
    ro = alice(p, options="-c default_transaction_read_only=on")
    rw = alice(p)
    for _ in range(3):
        assert show(ro, "default_transaction_read_only") == "on"
        assert show(rw, "default_transaction_read_only") == "off"
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        ro.execute("create temp table t_ro (i int)")
    rw.execute("create temp table t_rw (i int)")    # the shared server is writable for rw
    rw.execute("drop table t_rw")
    # SET by a client is kept for it too (the server reports it with ParameterStatus)
    rw.execute("set default_transaction_read_only = on")
    ro.execute("set default_transaction_read_only = off")
    for _ in range(3):
        assert show(rw, "default_transaction_read_only") == "on"
        assert show(ro, "default_transaction_read_only") == "off"
    ro.close()
    rw.close()
    # not tracked: refused as a startup parameter, as PgBouncer does
    p.settings["track_extra_parameters"] = "IntervalStyle"
    p.write_files()
    p.reload()
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
        alice(p, options="-c default_transaction_read_only=on")
    # a malformed list fails the reload and changes nothing
    p.settings["track_extra_parameters"] = "a b c"
    p.write_files()
    p.reload(expect="reload failed")


# ---------------------------------------------------------------- resolv_conf, dns_*_ttl


@pytest.fixture
def dns_stub():
    from dnsstub import DnsStub
    stub = DnsStub({"db.tbtest": "127.0.0.1"})
    yield stub
    stub.stop()


def test_resolv_conf_and_dns_ttls(make_pooler, pg, dns_stub, tmp_path):
    from conftest import app_connstr
    ttl = 4
    conf = dns_stub.resolv_conf(str(tmp_path / "resolv.conf"))
    good = app_connstr(pg).replace("host=127.0.0.1", "host=db.tbtest")
    bad = app_connstr(pg).replace("host=127.0.0.1", "host=missing.tbtest")
    p = make_pooler(settings={"resolv_conf": conf, "dns_max_ttl": ttl, "dns_nxdomain_ttl": ttl,
                              "server_login_retry": 0, "default_pool_size": 60,
                              "admin_users": ALICE},
                    databases={"appdb": good, "baddb": bad})
    def hold():
        # session mode: a client holds its own server from its first query on
        c = alice(p)
        assert c.execute("select 1").fetchone()[0] == 1
        held.append(c)
    held = []
    t0 = time.monotonic()                   # the lookup is not earlier than this
    hold()                                  # the name came from the stub (resolv_conf)
    t_first = time.monotonic()              # ... nor later than this
    assert dns_stub.count("db.tbtest") == 1
    hold()                                  # more servers: the cached address
    hold()
    if time.monotonic() - t_first < ttl - 0.5:
        assert dns_stub.count("db.tbtest") == 1, "looked up again within dns_max_ttl"
    # once dns_max_ttl has passed, the next new server looks the name up again
    def new_lookup():
        hold()
        return dns_stub.count("db.tbtest") >= 2
    wait_for(new_lookup, ttl + 15, "a lookup after dns_max_ttl", interval=0.3)
    assert time.monotonic() - t0 >= ttl - 0.2
    for c in held:
        c.close()
    # a failed lookup is remembered for dns_nxdomain_ttl
    t1 = time.monotonic()
    for _ in range(3):
        with pytest.raises(psycopg.OperationalError):
            p.connect("baddb", ALICE, ALICE_PW, connect_timeout=20)
    assert dns_stub.count("missing.tbtest") >= 1
    if time.monotonic() - t1 < ttl - 0.5:
        assert dns_stub.count("missing.tbtest") == 1, "NXDOMAIN looked up again within its ttl"
    # SHOW DNS_HOSTS lists what is cached, with the seconds left
    with p.connect("pgbouncer", ALICE, ALICE_PW, prepare_threshold=None) as adm:
        rows = {r[0]: r[1:] for r in adm.execute("SHOW DNS_HOSTS").fetchall()}
        lists = dict(adm.execute("SHOW LISTS").fetchall())
    assert rows["db.tbtest:%d" % pg.port][1] == "127.0.0.1", rows
    assert rows["missing.tbtest:%d" % pg.port][1] == "", rows
    assert all(0 < r[0] <= ttl for r in rows.values()), rows
    assert lists["dns_names"] == len(rows)


# ---------------------------------------------------------------- SHOW FDS


def test_show_fds_refused_console_continues(make_pooler):
    # Refused, not answered empty: the only user of SHOW FDS is PgBouncer's online restart
    # (pgbouncer -R sends SUSPEND, SHOW FDS, then SHUTDOWN); an empty answer would let it shut
    # this process down and drop every client, an error stops it first.
    p = make_pooler(settings={"admin_users": ALICE})
    with p.connect("pgbouncer", ALICE, ALICE_PW, prepare_threshold=None) as adm:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="so_reuseport"):
            adm.execute("SHOW FDS")
        assert adm.execute("SHOW VERSION").fetchone()[0]


# ---------------------------------------------------------------- auth_ident_file


def unix_login(p, user, db="appdb"):
    """psql over the pooler's Unix socket as this process's OS user (peer credentials)."""
    env = {"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "10"}
    return subprocess.run([PSQL, "-X", "-At", "-h", p.workdir, "-p", str(p.port), "-U", user,
                           "-d", db, "-c", "select current_user"], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_auth_ident_file_peer_map(make_pooler, tmp_path):
    import pwd
    me = pwd.getpwuid(os.geteuid()).pw_name          # root when the suite runs as root
    ident = tmp_path / "ident.conf"
    ident.write_text("# MAPNAME SYSTEM-USERNAME DATABASE-USERNAME\n"
                     "ops   %s          alice\n"
                     "ops   \"%s\"        carol\n"
                     "rx    /^(%s)$      \\1_dba\n" % (me, me, me))
    hba = ("local appdb all peer map=ops\n"
           "local all   all peer map=rx\n")
    users = {ALICE: "x", "carol": "x", "bob": "x", me + "_dba": "x"}
    p = make_pooler(settings={"auth_type": "hba", "auth_ident_file": str(ident),
                              "unix_socket_dir": None}, hba=hba, users=users, start=False)
    p.settings["unix_socket_dir"] = p.workdir
    p.write_files()
    p.start()
    # the map lets this OS user log in as alice and carol, not as bob (a server logs in as the
    # alias's user: current_user is appuser)
    for user in (ALICE, "carol"):
        res = unix_login(p, user)
        assert res.returncode == 0 and res.stdout.strip() == "appuser", (user, res)
    res = unix_login(p, "bob")
    assert res.returncode != 0 and 'peer authentication failed for user "bob"' in res.stderr, res
    # the regex map: \1 is the OS user's name, on another database's rule
    p.databases["other"] = p.databases["appdb"]
    p.write_files()
    p.reload()
    res = unix_login(p, me + "_dba", db="other")
    assert res.returncode == 0, res
    res = unix_login(p, ALICE, db="other")
    assert res.returncode != 0 and "peer authentication failed" in res.stderr, res
    # map= on a method that has no system user is refused, as PostgreSQL does
    p.hba = "local all all md5 map=ops\n"
    p.write_files()
    log = p.reload(expect="reload failed")
    assert 'authentication option "map" is only valid' in log
