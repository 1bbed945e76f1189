"""Isolation between clients that share a server connection (transaction mode, pool_size=1):
a client that leaves with answers still owed must never pass them on to the next client, and
nothing the pooler generates for one client reaches another. Also: cancels that arrive after
their query is over, a server lost during parameter sync, malformed input, the 53300 answer to
a connection flood, and memory returned after a storm.

Every reproduction here leaked on the code before the fix (see the note of the commit that
added this file).
"""
import asyncio
import os
import random
import resource
import signal
import socket
import struct
import threading
import time

import pytest

import rawpg
from conftest import ALICE, ALICE_PW, app_connstr
from rawpg import scram_secret
from pooler import is_pgbouncer
from util import wait_for

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="tokenbouncer's isolation guarantees")


ADMIN, ADMIN_PW = "isoadmin", "Iso-Admin-Pw-1"


def iso_pooler(make_pooler, pg, role, pool_size=1, settings=None, **kw):
    s = {"pool_mode": "transaction", "admin_users": ADMIN}
    s.update(settings or {})
    users = {ALICE: scram_secret(ALICE_PW), ADMIN: scram_secret(ADMIN_PW)}
    return make_pooler(settings=s, users=users,
                       databases={"appdb": app_connstr(pg, user=role, pool_size=pool_size)}, **kw)


def console(p, sql):
    """Rows of a console command as dicts."""
    with p.connect("pgbouncer", ADMIN, ADMIN_PW, prepare_threshold=None) as conn:
        cur = conn.execute(sql)
        names = [d.name for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def login(p, timeout=10.0, **extra):
    return rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, timeout=timeout, **extra)


# ---------------------------------------------------------------- wire helpers
def q(sql):
    return rawpg.query_message(sql)


def parse(sql, name=b""):
    return rawpg.message("P", name + b"\0" + sql.encode() + b"\0" + struct.pack("!H", 0))


def bind(portal=b"", stmt=b""):
    return rawpg.message("B", portal + b"\0" + stmt + b"\0" + struct.pack("!HHH", 0, 0, 0))


def execute(portal=b""):
    return rawpg.message("E", portal + b"\0" + struct.pack("!I", 0))


def sync():
    return rawpg.message("S")


def describe_portal(portal=b""):
    return rawpg.message("D", b"P" + portal + b"\0")


def read_answer(c):
    """Messages up to and including the next ReadyForQuery: [(type, payload)]."""
    out = []
    while True:
        t, p = c.read_message()
        out.append((t, p))
        if t == "Z":
            return out


def data_values(msgs):
    vals = []
    for t, p in msgs:
        if t == "D":
            (n,) = struct.unpack("!H", p[:2])
            i = 2
            for _ in range(n):
                (ln,) = struct.unpack("!i", p[i:i + 4])
                i += 4
                vals.append(None if ln < 0 else p[i:i + ln].decode())
                i += max(ln, 0)
    return vals


def expect_own_answer(c, tag):
    """c sends a query for `tag` and must get exactly its own row: nothing of anyone else's
    before it. A second query proves that nothing stray was queued after it either."""
    for k in (1, 2):
        want = "%s-%d" % (tag, k)
        c.send(q("select '%s'" % want))
        msgs = read_answer(c)
        types = "".join(t for t, _ in msgs)
        assert types == "TDCZ" and data_values(msgs) == [want], \
            "client %s got %r (values %r) instead of its own answer" % (tag, types, data_values(msgs))


def waiting_client(p, tag):
    """A logged-in client whose query is queued behind the busy server, and a thread that
    runs expect_own_answer once it gets the server."""
    c = login(p)
    result = {}

    def run():
        try:
            expect_own_answer(c, tag)
            result["ok"] = True
        except BaseException as e:  # reported by the caller
            result["error"] = e
    return c, result, threading.Thread(target=run, daemon=True)


def admin_waiting(p):
    """SHOW POOLS cl_waiting of appdb through the console."""
    rows = console(p, "show pools")
    return sum(int(r["cl_waiting"]) for r in rows if r["database"] == "appdb")


def leave_with_answers_owed(p, pipeline, first_answer_types="Z"):
    """Client 1 sends `pipeline` in one write, reads up to its first ReadyForQuery (or the
    message types given), then disconnects without reading the rest."""
    c1 = login(p)
    c1.send(pipeline)
    while True:
        t, _ = c1.read_message()
        if t in first_answer_types:
            break
    return c1


def run_leak_rounds(p, make_pipeline, rounds, first_answer_types="Z", require_wait=True):
    """require_wait=False for pipelines fast enough that the server may be done with them
    before client 2 queues: those rounds test whatever interleaving happens."""
    for r in range(rounds):
        c1 = login(p)
        c1.send(make_pipeline(r))
        # client 2 queues its query while client 1 holds the only server
        c2, res, th = waiting_client(p, "client-2-round-%d" % r)
        c2.send(q("select 'client-2-round-%d-0'" % r))
        if require_wait:
            wait_for(lambda: admin_waiting(p) >= 1, 10, "client 2 to wait for the server")
        while True:
            t, _ = c1.read_message()
            if t in first_answer_types:
                break
        c1.close()
        msgs = read_answer(c2)
        assert data_values(msgs) == ["client-2-round-%d-0" % r] and "".join(t for t, _ in msgs) == "TDCZ", \
            "round %d: client 2 received %r" % (r, [(t, data_values([(t, pl)])) for t, pl in msgs])
        th.start()
        th.join(15)
        assert res.get("ok"), "round %d: %r" % (r, res.get("error"))
        c2.close()


# ---------------------------------------------------------------- the leaks of the issue
def test_pipelined_simple_queries_of_a_departed_client_never_reach_the_next(make_pooler, pg, new_role):
    p = iso_pooler(make_pooler, pg, new_role("iso"))
    secret = "secret-of-client-1"
    # a sleep early in the pipeline makes sure answers are still owed when client 1 leaves
    pipe = lambda r: q("select 'first'") + q("select pg_sleep(0.5)") + q("select '%s'" % secret) * 200
    run_leak_rounds(p, pipe, 6)
    # the exact reproduction: 200 fast queries, no sleep
    run_leak_rounds(p, lambda r: q("select '%s'" % secret) * 200, 20, require_wait=False)


def test_pipelined_extended_queries_of_a_departed_client_never_reach_the_next(make_pooler, pg, new_role):
    p = iso_pooler(make_pooler, pg, new_role("iso"))
    one = lambda sql: parse(sql) + bind() + describe_portal() + execute() + sync()
    pipe = lambda r: one("select 'first'") + one("select pg_sleep(0.5)") + one("select 'secret-1'") * 200
    run_leak_rounds(p, pipe, 6)
    run_leak_rounds(p, lambda r: one("select 'secret-1'") * 200, 14, require_wait=False)


def test_unsynced_extended_messages_get_the_poolers_sync(make_pooler, pg, new_role):
    """Client 1 leaves after Parse/Bind/Execute without Sync: the pooler syncs and drains."""
    p = iso_pooler(make_pooler, pg, new_role("iso"))
    pipe = lambda r: q("select 'first'") + parse("select pg_sleep(0.3), 'unsynced-secret'") + bind() \
        + execute() + rawpg.message("H")
    run_leak_rounds(p, pipe, 4)


def test_sync_flood_of_a_departed_client_leaves_no_stray_ready_for_query(make_pooler, pg, new_role):
    p = iso_pooler(make_pooler, pg, new_role("iso"))
    run_leak_rounds(p, lambda r: q("select pg_sleep(0.3)") + sync() * 3000, 10)


def test_copy_out_abandoned_midway_is_drained(make_pooler, pg, new_role):
    p = iso_pooler(make_pooler, pg, new_role("iso"))
    pipe = lambda r: q("copy (select repeat('x', 100) from generate_series(1, 300000)) to stdout")
    run_leak_rounds(p, pipe, 6, first_answer_types="d")


def test_copy_in_abandoned_gets_copy_fail_and_the_server_is_reused(make_pooler, pg, new_role):
    role = new_role("iso")
    pg.sql('create table if not exists iso_copy_in (v text)', dbname="app")
    pg.sql('grant all on iso_copy_in to "%s"' % role, dbname="app")
    p = iso_pooler(make_pooler, pg, role)
    pids = set()
    for r in range(5):
        c1 = login(p)
        c1.send(q("copy iso_copy_in from stdin") )
        t, _ = c1.read_message()
        assert t == "G"
        c1.send(rawpg.message("d", b"half a row"))   # part of the data, then leave
        c1.close()
        c2 = login(p)
        expect_own_answer(c2, "after-copy-%d" % r)
        c2.send(q("select pg_backend_pid()"))
        pids.add(data_values(read_answer(c2))[0])
        c2.close()
    assert pg.scalar("select count(*) from iso_copy_in", dbname="app") == 0
    assert len(pids) == 1, "the drained server should have been reused, got backends %r" % pids


def test_client_gone_mid_message_closes_the_server(make_pooler, pg, new_role):
    """Half a Query message was forwarded: the server's state is unknowable, so it is closed."""
    p = iso_pooler(make_pooler, pg, new_role("iso"))
    c1 = login(p)
    c1.send(q("select 1"))
    read_answer(c1)
    body = b"select '" + b"x" * 100000 + b"'\0"
    c1.send(b"Q" + struct.pack("!I", len(body) + 4) + body[:50000])
    wait_for(lambda: any(r["database"] == "appdb" and r["state"] == "active" for r in console(p, "show servers")),
             10, "client 1 to hold the server")
    c1.close()
    c2 = login(p)
    expect_own_answer(c2, "after-half-message")
    c2.close()


# ---------------------------------------------------------------- malformed input
MALFORMED = [
    ("length below 4", b"Q\x00\x00\x00\x02"),
    ("unknown message type", rawpg.message("Y", b"junk")),
    ("startup-phase message after login", rawpg.message("p", b"password\0")),
    ("length above max_packet_size", b"Q" + struct.pack("!I", 0x7ffffff0)),
    ("type zero", b"\0\0\0\0\x08\0\0\0\0"),
]


@pytest.mark.parametrize("what,data", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_message_gets_08P01_and_close_never_a_lone_ready(make_pooler, pg, new_role, what, data):
    p = iso_pooler(make_pooler, pg, new_role("iso"))
    c = login(p)
    c.send(q("select 'before'"))
    assert data_values(read_answer(c)) == ["before"]
    c.send(data)
    got, _ = c.wait_closed(10)
    msgs = rawpg.parse_messages(got)
    types = [t for t, _ in msgs]
    assert types and types[0] == "E" and "Z" not in types, "%s: got %r" % (what, msgs)
    assert rawpg.parse_error_fields(msgs[0][1]).get("C") == "08P01", msgs
    c2 = login(p)
    expect_own_answer(c2, "after-malformed")
    c2.close()


def test_wire_fuzz_never_answers_with_a_lone_ready_for_query(make_pooler, pg, new_role):
    """Random input after login, each client gone without reading its answers: a client
    sharing the pool (pool_size=1) keeps getting exactly its own answers, never a stray
    ReadyForQuery or row of a fuzz client."""
    p = iso_pooler(make_pooler, pg, new_role("iso"))
    rng = random.Random(9405)
    good = login(p)
    valid = [q("select 'fuzz-secret'"), sync(), parse("select 'fuzz-p'") + bind() + execute(),
             q("select pg_sleep(0.01)"), rawpg.message("H"), describe_portal()]
    for i in range(200):
        c = login(p)
        data = b"".join(rng.choice(valid) for _ in range(rng.randrange(1, 12)))
        if rng.random() < 0.5:
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        c.send(data)
        if rng.random() < 0.5:
            c.read_message_within(0.2)
        c.close()
        expect_own_answer(good, "good-%d" % i)
    good.close()


# ---------------------------------------------------------------- cancel
def test_cancel_after_its_query_is_over_never_cancels_the_next_client(make_pooler, pg, new_role):
    """Client A's cancel races the end of its own query while B waits for A's server. The
    cancel may cancel A's query, but never B's."""
    p = iso_pooler(make_pooler, pg, new_role("iso"))
    rng = random.Random(57014)
    b_cancelled = 0
    for r in range(25):
        a = login(p)
        b = login(p)
        a.send(q("select pg_sleep(0.1)"))
        b.send(q("select pg_sleep(0.3), 'b'"))   # queued behind A on the one server
        time.sleep(rng.uniform(0.05, 0.15))  # the race itself: a random moment around A's end
        cc = rawpg.RawConn("127.0.0.1", p.port)
        cc.send(rawpg.cancel_request(a.backend_pid, a.backend_key))
        cc.wait_closed(10)
        read_answer(a)
        bmsgs = read_answer(b)
        errs = [rawpg.parse_error_fields(pl) for t, pl in bmsgs if t == "E"]
        if errs:
            b_cancelled += 1
            assert False, "round %d: B was cancelled by A's cancel: %r" % (r, errs)
        a.close()
        b.close()
    assert b_cancelled == 0


def test_cancel_while_running_still_works(make_pooler, pg, new_role):
    p = iso_pooler(make_pooler, pg, new_role("iso"))
    a = login(p)
    a.send(q("select pg_sleep(20)"))
    wait_for(lambda: pg.scalar("select count(*) from pg_stat_activity where query = 'select pg_sleep(20)' "
                               "and state = 'active'") == 1, 10, "the sleep to run")
    cc = rawpg.RawConn("127.0.0.1", p.port)
    cc.send(rawpg.cancel_request(a.backend_pid, a.backend_key))
    cc.wait_closed(10)
    msgs = read_answer(a)
    errs = [rawpg.parse_error_fields(pl) for t, pl in msgs if t == "E"]
    assert errs and errs[0]["C"] == "57014", msgs
    expect_own_answer(a, "after-cancel")


# ---------------------------------------------------------------- recovery
def test_server_terminated_during_parameter_sync_is_replaced_transparently(make_pooler, pg, new_role):
    """The idle server dies (pg_terminate_backend) while the pooler is stopped; the client's
    first query then meets it during parameter sync: the client gets a new server instead of
    the FATAL."""
    role = new_role("iso")
    p = iso_pooler(make_pooler, pg, role)
    warm = login(p)
    warm.send(q("select 1"))
    read_answer(warm)
    for r in range(10):
        c = login(p, application_name="sync-%d" % r)    # forces a SET on the shared server
        os.kill(p.proc.pid, signal.SIGSTOP)
        try:
            # the query is readable before the server's FATAL, so the pooler links the client
            # and sends its SET before it learns that the server is gone
            c.send(q("select current_setting('application_name')"))
            pg.sql("select pg_terminate_backend(pid) from pg_stat_activity where usename = %s", (role,))
            wait_for(lambda: pg.scalar("select count(*) from pg_stat_activity where usename = %s", (role,)) == 0,
                     10, "the backend to exit")
        finally:
            os.kill(p.proc.pid, signal.SIGCONT)
        msgs = read_answer(c)
        errs = [rawpg.parse_error_fields(pl) for t, pl in msgs if t == "E"]
        assert not errs, "round %d: %r" % (r, errs)
        assert data_values(msgs) == ["sync-%d" % r]
        c.close()


# ---------------------------------------------------------------- flood and memory
async def _refused(port, n):
    """n connections at once, each sends a startup packet; -> (got 53300, other outcomes)."""
    ok, other = 0, []
    pkt = rawpg.startup_packet({"user": ALICE, "database": "appdb"})

    async def one():
        nonlocal ok
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 20)
        except OSError as e:
            other.append("connect: %s" % e)
            return None
        try:
            w.write(pkt)
            data = await asyncio.wait_for(r.read(65536), 20)
            while data and len(data) < 5 + struct.unpack("!I", data[1:5])[0] - 4 + 4:
                more = await asyncio.wait_for(r.read(65536), 20)
                if not more:
                    break
                data += more
            if data[:1] == b"E" and b"C53300\0" in data:
                ok += 1
                w.close()
                return None
            return (r, w, data)
        except (OSError, asyncio.TimeoutError) as e:
            other.append(type(e).__name__)
            w.close()
            return None
    res = await asyncio.gather(*(one() for _ in range(n)))
    kept = [x for x in res if x]
    for r, w, _ in kept:
        w.close()
    return ok, other, len(kept)


def test_flooded_connections_read_their_53300_before_the_close(make_pooler, pg):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    p = make_pooler(settings={"max_client_conn": "20", "auth_type": "trust"}, nofile=(20000, 20000))
    holders = [login(p) for _ in range(20)]
    n = int(os.environ.get('TB_FLOOD_N', '5000'))
    ok, other, kept = asyncio.run(_refused(p.port, n))
    for h in holders:
        h.close()
    assert ok == n and not other and kept == 0, "%d of %d read 53300; other outcomes: %r" % (
        ok, n, sorted(set(other))[:5])


async def _stalled_logins(port, n):
    pkt = rawpg.startup_packet({"user": ALICE, "database": "appdb"})
    conns = []
    for i in range(0, n, 200):
        batch = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(min(200, n - i))))
        for r, w in batch:
            w.write(pkt)           # then never answer the SCRAM challenge
        conns += batch
    for r, _ in conns:
        await asyncio.wait_for(r.read(5), 20)   # the challenge arrived: the login is stalled
    return conns


def test_memory_returns_after_a_storm_of_stalled_logins(make_pooler, pg):
    """Measured on the plain build (TB_PLAIN_BIN, built by scripts/run-tests.sh): under
    AddressSanitizer freed memory sits in its own allocator's quarantine, which says nothing
    about what the pooler hands back to the system.

    The first storm also leaves what libevent keeps for good: a small slot for every file
    descriptor number ever used, scattered between the freed login buffers (about 1-2 MB of
    pages for 2,000 descriptors). The baseline is therefore taken after a first storm, and the
    second storm must hand back everything it took, to within 2 MB."""
    plain = os.environ.get("TB_PLAIN_BIN") or os.path.join(os.path.dirname(__file__), "..", "..",
                                                            "build-plain", "tokenbouncer")
    if not os.path.exists(plain):
        pytest.fail("the plain build %s is missing (scripts/run-tests.sh builds it)" % plain)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    p = make_pooler(settings={"max_client_conn": "5000", "pool_mode": "transaction"}, nofile=(20000, 20000),
                    binary=plain)
    c = login(p)
    c.send(q("select 1"))
    read_answer(c)
    start = p.rss()

    async def storm():
        conns = await _stalled_logins(p.port, 2000)
        peak = p.rss()
        for _, w in conns:
            w.close()
        await asyncio.sleep(0)
        return peak

    def settle(base, peak):
        """RSS once it is within 2 MB of base (polled; at most 30 s)."""
        got = wait_for(lambda: (p.rss() - base <= 2 * 1024 * 1024) and p.rss(), 30,
                       "RSS back within 2 MB of %d (peak %d)" % (base, peak), interval=0.25)
        return got

    peak1 = asyncio.run(storm())
    after1 = wait_for(lambda: (p.rss() < peak1 - 4 * 1024 * 1024) and p.rss(), 30,
                      "RSS to fall after the first storm (peak %d)" % peak1, interval=0.25)
    time.sleep(1.5)  # one more janitor trim pass (it trims at most once a second)
    base = p.rss()
    peak2 = asyncio.run(storm())
    got = settle(base, peak2)
    print("RSS at start %d kB; storm 1 peak %d kB, after %d kB; storm 2 peak %d kB, after %d kB" % (
        start // 1024, peak1 // 1024, base // 1024, peak2 // 1024, got // 1024))
    assert peak2 - base > 4 * 1024 * 1024, "the storm should have cost memory (peak %d, base %d)" % (peak2, base)
    expect_own_answer(c, "after-storm")


def test_refused_connection_with_unread_startup_packet_reads_its_53300(make_pooler, pg):
    """The worst case of the flood: the client's startup packet is already in the pooler's
    receive buffer when the refusal is written (the pooler was busy: here it is stopped while
    the clients connect). Closing with unread input makes the kernel send a reset; the
    ErrorResponse must still be read, not "connection reset by peer"."""
    p = make_pooler(settings={"max_client_conn": "2", "auth_type": "trust"})
    holders = [login(p), login(p)]
    pkt = rawpg.startup_packet({"user": ALICE, "database": "appdb"})
    socks = []
    os.kill(p.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(60):
            s = socket.create_connection(("127.0.0.1", p.port), timeout=10)
            s.sendall(pkt)
            socks.append(s)
    finally:
        os.kill(p.proc.pid, signal.SIGCONT)
    got, resets = 0, 0
    for s in socks:
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            resets += 1
        if data[:1] == b"E" and b"C53300\0" in data:
            got += 1
        s.close()
    for h in holders:
        h.close()
    assert got == len(socks), "%d of %d read their 53300 (%d resets)" % (got, len(socks), resets)


# ---------------------------------------------------------------- the randomised checker
def test_randomised_clients_over_shared_servers_each_see_only_their_own_answers(make_pooler, pg, new_role):
    """40 clients over 3 servers, random requests (simple, pipelines, extended with and without
    Sync, errors, COPY both ways, transactions, cancels) and random departures with answers
    owed; every answer checked against the request that asked for it. Seeded (TB_ISO_SEED),
    bounded in requests and time; bench/isolation_soak.py runs it for millions of requests."""
    import isolation_model
    role = new_role("iso")
    pg.sql("create table if not exists iso_sink (v text)", dbname="app")
    pg.sql('grant all on iso_sink to "%s"' % role, dbname="app")
    p = iso_pooler(make_pooler, pg, role, pool_size=3, settings={"auth_type": "trust"})
    seed = int(os.environ.get("TB_ISO_SEED", "20261203"))
    stats = asyncio.run(isolation_model.run(p.port, seed, clients=40, max_requests=12000, seconds=60))
    print("seed %d: %r" % (seed, stats))
    assert stats["requests"] >= 1500, stats
    assert stats["departures"] > 10 and stats["cancels"] > 5, stats


@pytest.mark.parametrize("always", [False, True])
def test_reset_query_runs_only_in_session_mode_unless_always(make_pooler, pg, new_role, always):
    """PgBouncer's rule: server_reset_query (DISCARD ALL) when a session-mode client leaves;
    in transaction mode only with server_reset_query_always. A temporary table shows which."""
    settings = {"server_reset_query_always": "1"} if always else {}
    p = iso_pooler(make_pooler, pg, new_role("iso"), settings=settings)
    a = login(p)
    a.send(q("create temp table tb_reset_probe (v int)"))
    read_answer(a)
    a.send(q("select pg_sleep(0.2)"))   # leaves while linked: the server is drained, then released
    wait_for(lambda: any(r["database"] == "appdb" and r["state"] == "active" for r in console(p, "show servers")),
             10, "A's sleep to hold the server")
    a.close()
    b = login(p)
    b.send(q("select to_regclass('pg_temp.tb_reset_probe') is not null"))
    assert data_values(read_answer(b)) == ["f" if always else "t"]
    b.close()
