"""Server lifetime under load, reload of aliases under load, SIGINT (wait for servers) under
load and immediate (SIGQUIT) shutdown. The whole signal matrix is in test_shutdown.py."""
import signal
import tempfile
import shutil
import threading
import time

import psycopg
import pytest

import rawpg
from conftest import ALICE, ALICE_PW, APP_DB, app_connstr
from pg import BackendSampler
from pgbench import Pgbench
from pooler import is_pgbouncer, tokenbouncer_only
from util import Bounded, port_accepts, wait_for


def test_server_lifetime_under_pgbench(make_pooler, pg, bench_role):
    """server_lifetime=3 is a hard cap (minus up to 10% jitter): idle servers close in the
    janitor, busy ones when released. Under 20 s of pgbench no backend of the pool may get
    older than 3 s + the longest transaction + 1 s slack, and no transaction may fail."""
    role = bench_role("life")
    lifetime = 3
    p = make_pooler(settings={"pool_mode": "transaction", "server_lifetime": lifetime},
                    databases={"benchdb": app_connstr(pg, dbname="bench", user=role, pool_size=5)})
    logdir = tempfile.mkdtemp(prefix="tbpgbl")
    try:
        with BackendSampler(pg, role, interval=0.2, max_seconds=90) as poll:
            run = Pgbench(p.port, "benchdb", ALICE, ALICE_PW,
                          ["-n", "-c", "10", "-j", "2", "-T", "20", "-M", "extended"], log_dir=logdir).start()
            res = run.result(timeout=60)
            longest = run.max_latency()
            # after the load, idle servers reach their lifetime and close in the janitor
            wait_for(lambda: pg.backends(role) == 0, lifetime + 2, "idle servers past server_lifetime to close")
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    ok, why = res.ok()
    assert ok, why
    cap = lifetime + longest + 1
    print("server_lifetime=%d: %d transactions, %d failed, max backend age %.2fs (cap %.2fs, longest "
          "transaction %.3fs), %d distinct backends, %d samples" % (
              lifetime, res.processed, res.failed, poll.max_age, cap, longest, len(poll.pids), poll.samples))
    assert res.failed == 0
    assert poll.samples >= 50
    if not is_pgbouncer():   # PgBouncer 1.18's server_lifetime is not a hard cap (5 s seen for 3)
        assert poll.max_age <= cap, "a backend lived %.2fs with server_lifetime=%d" % (poll.max_age, lifetime)
    # 5 servers replaced about every 3 s for 20 s: many more than 5 backends over the run
    assert len(poll.pids) >= 5 * 20 // lifetime // 2, "only %d distinct backends" % len(poll.pids)


def test_successors_open_ahead_so_min_pool_size_holds(make_pooler, pg, new_role):
    """With min_pool_size=2 and server_lifetime=3, servers roll over every ~3 s; successors are
    opened shortly before each cap, so an idle pool never shows fewer than 2 backends, and a
    client arriving at any moment finds a server without waiting for a login."""
    tokenbouncer_only("opening successors ahead of server_lifetime is tokenbouncer's")
    role = new_role("ahead")
    lifetime = 3
    p = make_pooler(settings={"pool_mode": "transaction", "server_lifetime": lifetime},
                    databases={"aheaddb": app_connstr(pg, user=role, pool_size=4, min_pool_size=2)})
    with psycopg.connect(host="127.0.0.1", port=p.port, dbname="aheaddb", user=ALICE, password=ALICE_PW,
                         sslmode="disable", autocommit=True) as c:
        c.execute("select 1")
    wait_for(lambda: pg.backends(role) >= 2, 10, "min_pool_size=2 servers")
    conn = pg.connect()
    samples, low, pids = 0, 99, set()
    deadline = time.monotonic() + 4 * lifetime
    try:
        while time.monotonic() < deadline:
            rows = conn.execute("select pid from pg_stat_activity where usename = %s "
                                "and backend_type = 'client backend' and state = 'idle'", (role,)).fetchall()
            low = min(low, len(rows))
            pids.update(r[0] for r in rows)
            samples += 1
            time.sleep(0.05)  # sampling interval of a poller, not a synchronisation wait
    finally:
        conn.close()
    print("min_pool_size=2, server_lifetime=%d: %d samples, lowest idle backends %d, %d distinct" % (
        lifetime, samples, low, len(pids)))
    assert samples > 50
    assert len(pids) >= 4, "servers were not replaced (%d distinct backends)" % len(pids)
    assert low >= 2, "the pool fell to %d idle servers while rolling over" % low


def test_reload_adds_and_removes_aliases_under_load(make_pooler, pg, bench_role):
    role = bench_role("rl")
    bench = app_connstr(pg, dbname="bench", user=role, pool_size=3)
    p = make_pooler(settings={"pool_mode": "transaction"},
                    databases={"benchdb": bench,
                               "olddb": app_connstr(pg, user=role, pool_size=2),
                               "chgdb": app_connstr(pg, user=role, pool_size=2, pool_mode="session",
                                                    application_name="before_reload")})
    with p.connect("benchdb", ALICE, ALICE_PW, prepare_threshold=None) as untouched, \
            p.connect("chgdb", ALICE, ALICE_PW) as held:
        assert untouched.execute("select 1").fetchone() == (1,)
        held_pid, app = held.execute("select pg_backend_pid(), current_setting('application_name')").fetchone()
        assert app == "before_reload"
        run = Pgbench(p.port, "benchdb", ALICE, ALICE_PW,
                      ["-n", "-c", "6", "-j", "2", "-T", "8", "-M", "extended"]).start()
        wait_for(lambda: pg.backends(role) >= 3, 10, "pgbench load on benchdb")

        # 1: add an alias
        with pytest.raises(rawpg.PgError):
            rawpg.try_login("127.0.0.1", p.port, ALICE, "newdb", ALICE_PW).close()
        p.databases["newdb"] = app_connstr(pg, user=role, pool_size=1)
        p.write_files()
        p.reload()
        with p.connect("newdb", ALICE, ALICE_PW) as conn:
            assert conn.execute("select current_database()").fetchone() == (APP_DB,)

        # 2: remove one alias, change another; benchdb is left as it is
        del p.databases["olddb"]
        p.databases["chgdb"] = app_connstr(pg, user=role, pool_size=2, pool_mode="session",
                                           application_name="after_reload")
        p.write_files()
        p.reload()
        with pytest.raises(rawpg.PgError) as ei:
            rawpg.try_login("127.0.0.1", p.port, ALICE, "olddb", ALICE_PW).close()
        assert ei.value.code == ("08P01" if is_pgbouncer() else "3D000"), ei.value.fields
        # the client of the changed alias keeps its server until it lets go of it
        assert held.execute("select pg_backend_pid()").fetchone() == (held_pid,)
        with p.connect("chgdb", ALICE, ALICE_PW) as conn:
            pid2, app2 = conn.execute("select pg_backend_pid(), current_setting('application_name')").fetchone()
        assert pid2 != held_pid
        if not is_pgbouncer():   # PgBouncer 1.18 keeps the client-side application_name
            assert app2 == "after_reload"
        assert untouched.execute("select 2").fetchone() == (2,)
        res = run.result(timeout=60)
    ok, why = res.ok()
    assert ok, why
    assert res.failed == 0
    print("pgbench during two reloads: %d transactions, 0 failed" % res.processed)
    # the changed alias's old server retires once its client is gone (PgBouncer 1.18 does not
    # count an application_name change as a changed database)
    if not is_pgbouncer():
        wait_for(lambda: pg.scalar("select count(*) from pg_stat_activity where pid = %s", (held_pid,)) == 0,
                 5, "the changed alias's old server to close")
    with p.connect("benchdb", ALICE, ALICE_PW) as conn:
        assert conn.execute("select count(*) > 0 from pgbench_branches").fetchone() == (True,)


def test_sigint_finishes_transactions_in_flight(make_pooler, pg, new_role):
    """SIGINT (SHUTDOWN WAIT_FOR_SERVERS) under load: clients inside a transaction finish it,
    idle ones get 57P01, then the process exits once no server is in use. Every commit a client saw succeed is in the table, and nothing else is."""
    tokenbouncer_only("PgBouncer's SIGINT waits for session-like idle clients")
    role = new_role("sigint")
    table = '"tb_sigint_%s"' % role
    pg.sql("create table %s (worker int, seq int)" % table, dbname=APP_DB)
    pg.sql('grant all on %s to "%s"' % (table, role), dbname=APP_DB)
    p = make_pooler(settings={"pool_mode": "transaction"},
                    databases={"appdb": app_connstr(pg, user=role, pool_size=4)})
    nworkers = 8
    committed = [[] for _ in range(nworkers)]    # (seq, monotonic time of the commit's return)
    errors = [None] * nworkers
    stop = threading.Event()

    def worker(w):
        deadline = time.monotonic() + 30
        try:
            with p.connect("appdb", ALICE, ALICE_PW, autocommit=False, prepare_threshold=None) as conn:
                seq = 0
                while not stop.is_set() and time.monotonic() < deadline:
                    seq += 1
                    conn.execute("insert into " + table + " values (%s, %s)", (w, seq))
                    conn.execute("select pg_sleep(0.02)")
                    conn.commit()
                    committed[w].append((seq, time.monotonic()))
        except psycopg.Error as e:
            errors[w] = e

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(nworkers)]
    for t in threads:
        t.start()
    wait_for(lambda: sum(len(c) for c in committed) >= 80 or not any(t.is_alive() for t in threads),
             20, "80 commits through the pooler")
    assert all(e is None for e in errors), errors
    idle = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)   # logged in, no transaction
    t_sig = time.monotonic()
    p.signal(signal.SIGINT)
    try:
        got, _ = idle.wait_closed(10)
    finally:
        idle.close()
    idle_errs = [rawpg.parse_error_fields(b) for t, b in rawpg.parse_messages(got) if t == "E"]
    for t in threads:
        t.join(20)
    stop.set()
    assert not any(t.is_alive() for t in threads), "clients still running 20 s after SIGINT"
    try:
        code = p.proc.wait(15)
    except Exception:
        raise AssertionError("tokenbouncer still running 15 s after SIGINT with no clients left:\n" +
                             p.log_text()[-3000:])
    assert not port_accepts(p.port)
    rows = set(pg.sql("select worker, seq from %s" % table, dbname=APP_DB))
    seen = {(w, s) for w in range(nworkers) for s, _ in committed[w]}
    after = sum(1 for w in range(nworkers) for _, t in committed[w] if t > t_sig)
    kinds = sorted({type(e).__name__ + ":" + (getattr(getattr(e, "diag", None), "sqlstate", None) or "-")
                    for e in errors if e is not None})
    print("SIGINT: %d commits seen by clients (%d finished after the signal), %d rows in the table, "
          "exit code %s, client errors %s" % (len(seen), after, len(rows), code, kinds))
    assert rows - seen == set(), "rows committed but reported as failed: %r" % sorted(rows - seen)[:10]
    assert seen - rows == set(), "commits reported but missing: %r" % sorted(seen - rows)[:10]
    assert after >= 1, "no transaction in flight was allowed to finish after SIGINT"
    assert idle_errs and idle_errs[0]["C"] == "57P01", "idle client at SIGINT got %r" % idle_errs
    assert code == 0, "exit code %s" % code
    assert "no server is in use any more" in p.log_text()


def test_immediate_shutdown_signal_exits_at_once(make_pooler, pg, new_role):
    """SIGQUIT (PgBouncer 1.23+; the reference PgBouncer 1.18 uses SIGTERM for this)."""
    sig = signal.SIGTERM if is_pgbouncer() else signal.SIGQUIT
    role = new_role("sigterm")
    p = make_pooler(settings={"pool_mode": "transaction"},
                    databases={"appdb": app_connstr(pg, user=role, pool_size=2)})
    with p.connect("appdb", ALICE, ALICE_PW) as busy, p.connect("appdb", ALICE, ALICE_PW) as idle:
        assert idle.execute("select 1").fetchone() == (1,)
        run = Bounded(busy.execute, "select pg_sleep(20)")
        wait_for(lambda: run.done() or pg.scalar(
            "select count(*) from pg_stat_activity where usename = %s and state = 'active'", (role,)) == 1,
            10, "pg_sleep(20) to run")
        start = time.monotonic()
        p.signal(sig)
        try:
            p.proc.wait(5)
        except Exception:
            raise AssertionError("tokenbouncer still running 5 s after %s" % sig.name)
        took = time.monotonic() - start
        with pytest.raises(psycopg.OperationalError):
            run.result(5, "pg_sleep(20) after %s" % sig.name)
    print("%s: exited in %.2fs with code %s" % (sig.name, took, p.proc.returncode))
    assert took < 2
    # exit code 1 with an AddressSanitizer report means the teardown itself went wrong
    assert p.proc.returncode == (1 if is_pgbouncer() else 0), "exit code %s after %s:\n%s" % (
        p.proc.returncode, sig.name, p.log_text()[-3000:])


def test_removed_alias_clients_closed_by_janitor(make_pooler, pg, new_role):
    """Clients still connected to an alias that a reload removed are later closed by a
    timeout (here client_idle_timeout, set by the same reload): the retired database must
    stay valid until the last of them is freed."""
    role = new_role("gone")
    p = make_pooler(settings={"pool_mode": "transaction"},
                    databases={"appdb": app_connstr(pg, user=role, pool_size=2),
                               "olddb": app_connstr(pg, user=role, pool_size=2)})
    clients = [rawpg.try_login("127.0.0.1", p.port, ALICE, "olddb", ALICE_PW) for _ in range(3)]
    try:
        for c in clients:
            assert c.query_ok("select 1").rows == [("1",)]
        del p.databases["olddb"]
        p.settings["client_idle_timeout"] = 1
        p.write_files()
        p.reload()
        for c in clients:
            got, _ = c.wait_closed(5)
            errs = [rawpg.parse_error_fields(b) for t, b in rawpg.parse_messages(got) if t == "E"]
            # (PgBouncer closes a removed database's clients at the reload: "database removed")
            want = "database removed" if is_pgbouncer() else "client_idle_timeout"
            assert errs and want in errs[0]["M"], (errs, p.log_text()[-3000:])
    finally:
        for c in clients:
            c.close()
    assert p.alive(), "tokenbouncer died:\n" + p.log_text()[-5000:]
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        assert conn.execute("select 'still serving'").fetchone() == ("still serving",)
