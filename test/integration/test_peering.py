"""so_reuseport with peer_id and [peers] (issue 12), as PgBouncer 1.23+: several processes share
one TCP port, each cancel key carries the peer that issued it, and a cancel request that the
kernel hands to another process is forwarded to the owner. A rolling restart (start a new
process, SIGTERM the old one) drops no client."""
import os
import signal
import threading
import time

import psycopg
import pytest

from conftest import ALICE, ALICE_PW, app_connstr
from pgbench import Pgbench
from pooler import tokenbouncer_only
from rawpg import scram_secret
from util import Bounded, wait_for

ADMIN, ADMIN_PW = "admin", "Admin-Pw-peer1"


@pytest.fixture(autouse=True)
def _tokenbouncer_only():
    tokenbouncer_only("Debian's PgBouncer 1.18 has no peering")


def peer_group(make_pooler, pg, role, ids, port=None, start=True):
    """Poolers with peer ids `ids` on one port; [peers] lists every id of the group (1..max),
    each process with its own Unix socket directory. Returns {id: Pooler}."""
    made = {}
    first = None
    for i in ids:
        p = make_pooler(settings={"pool_mode": "transaction", "so_reuseport": 1, "peer_id": i,
                                  "admin_users": ADMIN, "default_pool_size": 4},
                        users={ALICE: scram_secret(ALICE_PW), ADMIN: scram_secret(ADMIN_PW)},
                        databases={"benchdb": app_connstr(pg, dbname="bench", user=role, pool_size=24)},
                        start=False)
        if port is None:
            port = p.port
        p.port = port
        p.settings["listen_port"] = port
        p.settings["unix_socket_dir"] = p.workdir
        made[i] = p
        first = first or p
    for i, p in made.items():
        p.extra_lines = ["", "[peers]"] + ["%d = host=%s port=%d" % (j, q.workdir, port)
                                           for j, q in sorted(made.items())]
        p.write_files()
    if start:
        for p in made.values():
            start_member(p)
    return made


def start_member(p):
    marks = p._log_marks()
    p.start()
    p.wait_log(r"listening on", 20, marks)
    wait_for(lambda: os.path.exists(os.path.join(p.workdir, ".s.PGSQL.%d" % p.port)), 10, "its socket")


def console(p):
    return psycopg.connect(host=p.workdir, port=p.port, dbname="pgbouncer", user=ADMIN, password=ADMIN_PW,
                           autocommit=True, prepare_threshold=None, connect_timeout=10)


def xacts_of(p):
    with console(p) as c:
        cur = c.execute("SHOW STATS")
        names = [d.name for d in cur.description]
        return sum(dict(zip(names, r))["total_xact_count"] for r in cur.fetchall()
                   if dict(zip(names, r))["database"] == "benchdb")


def cancel_many(pg, role, port, n):
    """n clients each run pg_sleep(30) (on a server: the pools have room); each is cancelled
    through a new connection to the shared port. -> (cancelled count, other outcomes)."""
    conns = [psycopg.connect(host="127.0.0.1", port=port, dbname="benchdb", user=ALICE, password=ALICE_PW,
                             sslmode="disable", autocommit=True, connect_timeout=10) for _ in range(n)]
    outcomes = [None] * n
    try:
        def run(i):
            try:
                conns[i].execute("select pg_sleep(30)")
                outcomes[i] = "finished"
            except psycopg.errors.QueryCanceled:
                outcomes[i] = "cancelled"
            except psycopg.Error as e:
                outcomes[i] = "error: %s" % e
        threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        wait_for(lambda: pg.scalar("select count(*) from pg_stat_activity where usename = %s and "
                                   "query = 'select pg_sleep(30)' and state = 'active'", (role,)) == n,
                 20, "%d pg_sleep queries to run" % n)
        for c in conns:
            c.cancel()
        for t in threads:
            t.join(20)
    finally:
        for c in conns:
            c.close()
    return outcomes.count("cancelled"), [o for o in outcomes if o != "cancelled"]


def check_group(make_pooler, pg, bench_role, n):
    role = bench_role("peer%d" % n)
    group = peer_group(make_pooler, pg, role, list(range(1, n + 1)))
    port = group[1].port
    with console(group[1]) as c:
        peers = c.execute("SHOW PEERS").fetchall()
        assert [r[0] for r in peers] == list(range(1, n + 1)), peers
        assert len(c.execute("SHOW PEER_POOLS").fetchall()) == n - 1
    # The kernel spreads connections by a hash: 8 per process make one left without any
    # (1 in 10^4) and 12 cancels that never land on another process than the owner
    # (1 in 4096 for two processes) unlikely enough.
    ncancel = 12
    run = Pgbench(port, "benchdb", ALICE, ALICE_PW, ["-n", "-S", "-c", str(8 * n), "-j", "2", "-T", "6"]).start()
    cancelled, others = cancel_many(pg, role, port, ncancel)
    res = run.result(timeout=90)
    ok, why = res.ok()
    assert ok, why
    per = {i: xacts_of(p) for i, p in group.items()}
    # (log_for_report: the log once; log_text holds stderr and the logfile)
    forwarded = sum(p.log_for_report().count("forwarding it there") for p in group.values())
    print("%d processes on port %d: pgbench %d transactions, 0 failed; per process %s; %d cancels, "
          "%d cancelled, %d forwarded to the owning peer" % (n, port, res.processed, per, ncancel, cancelled,
                                                             forwarded))
    assert res.failed == 0
    assert all(v > 0 for v in per.values()), "a process got no clients: %s" % per
    assert cancelled == ncancel, others
    assert forwarded >= 1, "no cancel landed on another process (kernel spread too narrow?)"


def test_two_processes_share_a_port_with_cancels(make_pooler, pg, bench_role):
    check_group(make_pooler, pg, bench_role, 2)


def test_four_processes_share_a_port_with_cancels(make_pooler, pg, bench_role):
    check_group(make_pooler, pg, bench_role, 4)


def test_rolling_restart_drops_no_client(make_pooler, pg, bench_role):
    """Process 1 serves pgbench (persistent connections) and pgbench -C (a new connection per
    transaction); process 2 starts on the same port, process 1 gets SIGTERM: its TCP listener
    closes, its connected clients carry on, new connections go to process 2, and process 1
    exits once its last client has left. No transaction fails."""
    role = bench_role("roll")
    group = peer_group(make_pooler, pg, role, [1, 2], start=False)
    old, new = group[1], group[2]
    start_member(old)
    port = old.port
    steady = Pgbench(port, "benchdb", ALICE, ALICE_PW, ["-n", "-S", "-c", "4", "-j", "2", "-T", "12"]).start()
    churn = Pgbench(port, "benchdb", ALICE, ALICE_PW, ["-n", "-S", "-C", "-c", "2", "-j", "1", "-T", "10"]).start()
    wait_for(lambda: xacts_of(old) > 200, 20, "load on the old process")
    start_member(new)
    t_term = time.monotonic()
    old.signal(signal.SIGTERM)
    wait_for(lambda: xacts_of(new) > 100, 20, "new connections to reach the new process")
    r_churn = churn.result(timeout=60)
    r_steady = steady.result(timeout=60)
    code = Bounded(old.proc.wait, 20).result(25, "the old process to exit after its clients left")
    took = time.monotonic() - t_term
    for r in (r_steady, r_churn):
        ok, why = r.ok()
        assert ok, why
    print("rolling restart: steady %d transactions, churn (-C) %d transactions, 0 failed; old process "
          "exited %.1fs after SIGTERM with code %s; new process served %d transactions" % (
              r_steady.processed, r_churn.processed, took, code, xacts_of(new)))
    assert r_steady.failed == 0 and r_churn.failed == 0
    assert code == 0
    assert "all clients are gone" in old.log_text()
    assert new.alive()
