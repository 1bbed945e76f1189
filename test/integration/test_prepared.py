"""Protocol-level named prepared statements in transaction and statement mode
(max_prepared_statements), with a raw client: every answer is compared token by token with what
PostgreSQL itself sends for the same messages on a direct connection.

A client's statement names are its own; the pooler prepares each unique (text, parameter types)
once per server under its own name (TB_<n>), injects the Parse when the client's Bind or Describe
lands on a server that lacks it, and answers ParseComplete/CloseComplete itself where the server
must not see the message.
"""
import time

import pytest

import rawpg
from conftest import ALICE, ALICE_PW, APP_DB, APP_PW, app_connstr
from extproto import (FLUSH, SYNC, bind, close, describe, execute, parse, query, tokens,
                      tokens_until)
from pooler import is_pgbouncer
from util import wait_for

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: tokenbouncer-specific counters and names")


def ps_pooler(make_pooler, pg, role, pool_size=2, settings=None, **kw):
    s = {"pool_mode": "transaction", "max_prepared_statements": 200}
    s.update(settings or {})
    return make_pooler(settings=s, databases={"appdb": app_connstr(pg, user=role, pool_size=pool_size)}, **kw)


def login(p):
    return rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW)


def direct(pg, role):
    return rawpg.try_login("127.0.0.1", pg.port, role, APP_DB, APP_PW)


def pid_of(conn):
    return int(conn.query_ok("select pg_backend_pid()").rows[0][0])


def run(conn, data, ready=1, errors=None):
    conn.send(data)
    return tokens(conn, ready, errors)


class ServerSwitch:
    """Moves a client to another server between its transactions: a holder client takes the
    server the client used last (the most recently used idle one) inside BEGIN."""

    def __init__(self, p):
        self.holder = login(p)
        self.holding = False

    def switch(self, conn):
        self.release()
        before = pid_of(conn)
        self.holder.query_ok("begin")
        self.holding = True
        assert pid_of(self.holder) == before
        after = pid_of(conn)
        assert after != before
        return after

    def release(self):
        if self.holding:
            self.holder.query_ok("commit")
            self.holding = False

    def close(self):
        self.release()
        self.holder.close()


def server_statements(conn):
    return sorted(r[0] for r in conn.query_ok("select name from pg_prepared_statements").rows)


# ---------------------------------------------------------------------------- basics
def test_statement_follows_the_client_to_another_server(make_pooler, pg, new_role):
    role = new_role("ps1")
    p = ps_pooler(make_pooler, pg, role)
    with login(p) as a:
        sw = ServerSwitch(p)
        assert run(a, parse("s1", "select $1::int + 1") + SYNC) == ["1", "Z:I"]
        first = server_statements(a)
        assert len(first) == 1 and first[0].startswith("TB_"), first
        sw.switch(a)
        assert server_statements(a) == []
        # the Bind lands on a server without the statement: the Parse is injected and absorbed
        assert run(a, bind("s1", ["41"]) + execute() + SYNC) == ["2", "D:42", "C:SELECT 1", "Z:I"]
        assert server_statements(a) == first
        sw.switch(a)
        assert run(a, describe("S", "s1") + bind("s1", ["1"]) + execute() + SYNC) == \
            ["t:1", "T:?column?", "2", "D:2", "C:SELECT 1", "Z:I"]
        sw.close()


def test_two_clients_same_name_different_texts(make_pooler, pg, new_role):
    role = new_role("ps2")
    p = ps_pooler(make_pooler, pg, role, pool_size=1)
    with login(p) as a, login(p) as b:
        assert run(a, parse("q", "select 'a:' || $1::text") + SYNC) == ["1", "Z:I"]
        assert run(b, parse("q", "select $1::int * 2") + SYNC) == ["1", "Z:I"]
        for i in range(3):
            assert run(a, bind("q", [str(i)]) + execute() + SYNC) == ["2", "D:a:%d" % i, "C:SELECT 1", "Z:I"]
            assert run(b, bind("q", [str(i)]) + execute() + SYNC) == ["2", "D:%d" % (2 * i), "C:SELECT 1", "Z:I"]
        # the same text from two clients is one statement on the server
        assert run(b, parse("other", "select 'a:' || $1::text") + SYNC) == ["1", "Z:I"]
        assert len(server_statements(a)) == 2


# ------------------------------------------------------------ same answers as PostgreSQL
PHASE1 = (parse("s1", "select $1::int + 1 as x") + parse("s2", "select $1::text || 'z' as y", (25,)) +
          describe("S", "s1") + bind("s1", ["1"]) + execute() + bind("s2", ["a"]) + describe("P", "") +
          execute() + SYNC + bind("s1", ["5"]) + execute() + FLUSH + SYNC)
PHASE2 = (describe("S", "s2") + bind("s2", ["q"]) + execute() + bind("s1", ["10"]) + execute() + SYNC +
          bind("s1", ["x"]) + execute() + bind("s2", ["never"]) + execute() + SYNC +
          bind("s2", ["after"]) + execute() + SYNC)


def test_pipelines_answer_as_postgres(make_pooler, pg, new_role):
    role = new_role("ps3")
    with direct(pg, role) as d:
        want1 = run(d, PHASE1, ready=2)
        want2 = run(d, PHASE2, ready=3)
    assert want2[-4:] == ["2", "D:afterz", "C:SELECT 1", "Z:I"]
    assert "E:22P02" in want2
    p = ps_pooler(make_pooler, pg, role)
    with login(p) as a:
        sw = ServerSwitch(p)
        assert run(a, PHASE1, ready=2) == want1
        sw.switch(a)
        assert run(a, PHASE2, ready=3) == want2
        sw.switch(a)
        assert run(a, PHASE2, ready=3) == want2
        sw.close()


def test_flush_without_sync(make_pooler, pg, new_role):
    role = new_role("ps4")
    steps = [(parse("f1", "select $1::int") + FLUSH, 1),
             (bind("f1", ["3"]) + execute() + FLUSH, 3),
             (SYNC, 1)]
    want = []
    with direct(pg, role) as d:
        for data, n in steps:
            d.send(data)
            want.append(tokens_until(d, n))
    p = ps_pooler(make_pooler, pg, role)
    with login(p) as a:
        sw = ServerSwitch(p)
        assert run(a, parse("f0", "select 1") + SYNC) == ["1", "Z:I"]
        sw.switch(a)
        got = []
        for data, n in steps:
            a.send(data)
            got.append(tokens_until(a, n))
        assert got == want
        # f0 was prepared on another server: its Bind after a Flush-only batch injects it here
        a.send(bind("f0") + execute() + FLUSH)
        assert tokens_until(a, 3) == ["2", "D:1", "C:SELECT 1"]
        assert run(a, SYNC) == ["Z:I"]
        sw.close()


def test_errors_answer_as_postgres(make_pooler, pg, new_role):
    """Duplicate names, unknown names in Bind and Describe, Close of unknown names, and the
    batch an error skips, all as PostgreSQL answers them."""
    role = new_role("ps5")
    script = [
        parse("e1", "select 1") + SYNC,
        parse("e1", "select 2") + bind("e1") + execute() + SYNC,              # 42P05, batch skipped
        describe("S", "nope") + SYNC,                                         # 26000
        bind("nope") + execute() + SYNC,                                      # 26000
        close("S", "nope") + close("S", "e1") + SYNC,                         # 3 3
        bind("e1") + execute() + SYNC,                                        # 26000 after Close
        parse("e1", "select 3") + bind("e1") + execute() + SYNC,              # a fresh e1
        parse("bad", "select * from no_such_table") + bind("bad") + execute() + SYNC,
        bind("bad") + SYNC,                                                   # never prepared
        parse("", "select 4") + bind("") + execute() + SYNC,
    ]
    want_msgs, got_msgs = [], []
    with direct(pg, role) as d:
        want = [run(d, s, errors=want_msgs) for s in script]
    assert want[1] == ["E:42P05", "Z:I"] and want[7] == ["E:42P01", "Z:I"]
    assert want_msgs[0] == 'prepared statement "e1" already exists'
    p = ps_pooler(make_pooler, pg, role)
    with login(p) as a:
        sw = ServerSwitch(p)
        got = []
        for i, s in enumerate(script):
            if i % 3 == 2:
                sw.switch(a)
            got.append(run(a, s, errors=got_msgs))
        assert got == want
        # the texts too: errors about a statement name the client's statement
        assert got_msgs == want_msgs
        sw.close()


def test_failing_injected_parse(make_pooler, pg, new_role):
    """A statement whose table went away: the injected Parse fails with PostgreSQL's own error in
    place of the Bind's answer, the rest of the batch is skipped, and nothing stays prepared, so
    the statement works again once the table is back."""
    role = new_role("ps6")
    pg.sql('create table fi_%s (a int)' % role, dbname=APP_DB)
    pg.sql('grant all on fi_%s to "%s"' % (role, role), dbname=APP_DB)
    stmt = parse("s", "select count(*) from fi_%s" % role)
    use = parse("", "select 'x'") + bind("") + execute() + bind("s") + execute() + SYNC + \
        bind("") + execute() + SYNC
    p = ps_pooler(make_pooler, pg, role)
    with direct(pg, role) as d, login(p) as a:
        sw = ServerSwitch(p)
        assert run(d, stmt + SYNC) == run(a, stmt + SYNC) == ["1", "Z:I"]
        pg.sql('drop table fi_%s' % role, dbname=APP_DB)
        want = run(d, use, ready=2)
        assert want[:4] == ["1", "2", "D:x", "C:SELECT 1"] and want[4] == "E:42P01", want
        sw.switch(a)
        assert run(a, use, ready=2) == want
        assert [n for n in server_statements(a) if n.startswith("TB_")] == []
        assert run(a, use, ready=2) == want       # injected again, fails again the same way
        pg.sql('create table fi_%s (a int)' % role, dbname=APP_DB)
        pg.sql('grant all on fi_%s to "%s"' % (role, role), dbname=APP_DB)
        ok = run(d, use, ready=2)
        assert "D:0" in ok
        assert run(a, use, ready=2) == ok
        sw.close()


# ------------------------------------------------------------------ Close, DISCARD, DEALLOCATE
def test_close_discard_deallocate(make_pooler, pg, new_role):
    role = new_role("ps7")
    script = [
        parse("c1", "select 'c1'") + parse("c2", "select 'c2'") + SYNC,
        close("S", "c1") + SYNC,
        bind("c1") + execute() + SYNC,
        bind("c2") + execute() + SYNC,
        query("DEALLOCATE c2"),
        bind("c2") + execute() + SYNC,
        parse("c1", "select 'c1 again'") + parse("c2", "select 'c2 again'") + SYNC,
        query("deallocate prepare \"c1\";"),
        bind("c2") + execute() + SYNC,
        query("DISCARD ALL"),
        bind("c2") + execute() + SYNC,
        parse("c2", "select 'c2 third'") + bind("c2") + execute() + SYNC,
        query("DEALLOCATE ALL"),
        bind("c2") + execute() + SYNC,
        parse("c2", "select 'c2 fourth'") + bind("c2") + execute() + SYNC,
        query("DEALLOCATE nosuch"),
        # psycopg sends its DEALLOCATE ALL and DEALLOCATE name as unnamed extended statements
        parse("x1", "select 'x1'") + parse("x2", "select 'x2'") + SYNC,
        parse("", "DEALLOCATE x1") + bind("") + describe("P", "") + execute() + SYNC,
        bind("x1") + execute() + SYNC,
        bind("x2") + execute() + SYNC,
        parse("", "deallocate all") + bind("") + describe("P", "") + execute() + SYNC,
        bind("x2") + execute() + SYNC,
        parse("x2", "select 'x2 again'") + bind("x2") + execute() + SYNC,
    ]
    with direct(pg, role) as d:
        want = [run(d, s) for s in script]
    assert want[4] == ["C:DEALLOCATE", "Z:I"] and want[9] == ["C:DISCARD ALL", "Z:I"]
    assert want[15] == ["E:26000", "Z:I"]
    assert want[17] == ["1", "2", "n", "C:DEALLOCATE", "Z:I"] and want[18] == ["E:26000", "Z:I"]
    p = ps_pooler(make_pooler, pg, role)
    with login(p) as a:
        sw = ServerSwitch(p)
        got = []
        for i, s in enumerate(script):
            if i % 4 == 3:
                sw.switch(a)
            got.append(run(a, s))
        assert got == want
        sw.close()


# ------------------------------------------------------------------ eviction and lifetime
def test_eviction_at_max_prepared_statements(make_pooler, pg, new_role):
    role = new_role("ps8")
    p = ps_pooler(make_pooler, pg, role, pool_size=1, settings={"max_prepared_statements": 2})
    with login(p) as a:
        batch = b"".join(parse("r%d" % k, "select $1::int + %d" % k) for k in range(5)) + SYNC
        assert run(a, batch) == ["1"] * 5 + ["Z:I"]
        assert len(server_statements(a)) <= 2
        for rnd in range(4):
            # one statement per transaction, then all five in one pipeline
            for k in range(5):
                assert run(a, bind("r%d" % k, [rnd]) + execute() + SYNC) == \
                    ["2", "D:%d" % (rnd + k), "C:SELECT 1", "Z:I"]
            pipeline = b"".join(bind("r%d" % k, [rnd * 10]) + execute() for k in range(5)) + SYNC
            want = []
            for k in range(5):
                want += ["2", "D:%d" % (rnd * 10 + k), "C:SELECT 1"]
            assert run(a, pipeline) == want + ["Z:I"]
            names = server_statements(a)
            assert len(names) <= 2 and all(n.startswith("TB_") for n in names), names


def test_reprepare_after_server_lifetime(make_pooler, pg, new_role):
    role = new_role("ps9")
    p = ps_pooler(make_pooler, pg, role, pool_size=1, settings={"server_lifetime": 1})
    with login(p) as a:
        assert run(a, parse("L", "select $1::int * 3") + SYNC) == ["1", "Z:I"]
        first = pid_of(a)
        assert run(a, bind("L", ["2"]) + execute() + SYNC) == ["2", "D:6", "C:SELECT 1", "Z:I"]
        wait_for(lambda: pg.backends(role) == 0 or pid_of(a) != first, 20, "the server to be retired")
        assert run(a, bind("L", ["5"]) + execute() + SYNC) == ["2", "D:15", "C:SELECT 1", "Z:I"]
        assert pid_of(a) != first


# ------------------------------------------------------------------ statement mode, counters
def test_statement_mode(make_pooler, pg, new_role):
    role = new_role("ps10")
    p = ps_pooler(make_pooler, pg, role, settings={"pool_mode": "statement"})
    with login(p) as a, login(p) as b:
        assert run(a, parse("m", "select $1::int - 1") + SYNC) == ["1", "Z:I"]
        assert run(b, parse("m", "select $1::int + 100") + SYNC) == ["1", "Z:I"]
        for i in range(4):
            assert run(a, bind("m", [i]) + execute() + SYNC) == ["2", "D:%d" % (i - 1), "C:SELECT 1", "Z:I"]
            assert run(b, bind("m", [i]) + execute() + SYNC) == ["2", "D:%d" % (i + 100), "C:SELECT 1", "Z:I"]


def test_counters_and_console(make_pooler, pg, new_role):
    import urllib.request
    from util import free_port
    role = new_role("ps11")
    users = {ALICE: rawpg.scram_secret(ALICE_PW), "admin": rawpg.scram_secret("Adm-1")}
    mport = free_port()
    p = ps_pooler(make_pooler, pg, role, pool_size=1, users=users,
                  settings={"admin_users": "admin", "metrics_listen": "127.0.0.1:%d" % mport})
    with login(p) as a:
        run(a, parse("k1", "select 1") + parse("k2", "select 2") + SYNC)
        for _ in range(3):
            run(a, bind("k1") + execute() + bind("k2") + execute() + SYNC)
        with rawpg.try_login("127.0.0.1", p.port, "admin", "pgbouncer", "Adm-1") as adm:
            def show(what):
                r = adm.query_ok("SHOW " + what)
                return r
            r = show("STATS")
            cols = r.columns
            row = [x for x in r.rows if x[0] == "appdb"][0]
            st = dict(zip(cols, row))
            assert int(st["total_client_parse_count"]) == 2
            assert int(st["total_server_parse_count"]) == 2
            assert int(st["total_bind_count"]) == 6
            for what in ("SERVERS", "CLIENTS"):
                r = show(what)
                col = r.columns.index("prepared_statements")
                vals = sorted(int(x[col]) for x in r.rows if x[2] == "appdb")
                assert vals[-1] == 2, (what, vals)
            r = show("MEM")
            mem = {x[0]: x for x in r.rows}
            assert int(mem["prepared_statement_cache"][2]) == 2
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10) as resp:
            text = resp.read().decode()
        for line in ('tokenbouncer_client_parses_total{database="appdb"} 2',
                     'tokenbouncer_server_parses_total{database="appdb"} 2',
                     'tokenbouncer_binds_total{database="appdb"} 6',
                     'tokenbouncer_prepared_statement_cache_entries 2'):
            assert line in text, line


def test_client_leaving_mid_pipeline(make_pooler, pg, new_role):
    """A client that leaves with answers owed leaves a server the pooler drains; what that server
    has prepared is then uncertain, and the next clients' statements still work on it."""
    role = new_role("ps12")
    p = ps_pooler(make_pooler, pg, role, pool_size=1)
    with login(p) as b:
        assert run(b, parse("q", "select $1::int * 7") + SYNC) == ["1", "Z:I"]
        b_pid = pid_of(b)
    for k in range(3):
        a = login(p)
        # Parse of a new statement and of b's text, then gone before any answer
        a.send(parse("x%d" % k, "select pg_sleep(0.2), %d" % k) + parse("q", "select $1::int * 7") +
               bind("x%d" % k) + execute() + bind("q", ["1"]) + execute() + SYNC)
        a.close()
        with login(p) as c:
            assert run(c, parse("q", "select $1::int * 7") + bind("q", ["6"]) + execute() + SYNC) == \
                ["1", "2", "D:42", "C:SELECT 1", "Z:I"]
            assert run(c, parse("x", "select pg_sleep(0.2), %d" % k) + bind("x") + execute() + SYNC) == \
                ["1", "2", "D:|%d" % k, "C:SELECT 1", "Z:I"]
            assert pid_of(c) == b_pid     # the same server, drained, not replaced


def test_statements_dropped_behind_the_poolers_back(make_pooler, pg, new_role):
    """A DEALLOCATE ALL the pooler cannot see (in a multi-statement query) drops its statements:
    the next Bind fails once with PostgreSQL's 26000, naming the client's statement, and the
    one after prepares it again."""
    role = new_role("ps13")
    p = ps_pooler(make_pooler, pg, role, pool_size=1)
    with login(p) as a:
        assert run(a, parse("h", "select 'h'::text") + SYNC) == ["1", "Z:I"]
        assert a.query_ok("select 1; deallocate all").tags == ["SELECT 1", "DEALLOCATE ALL"]
        errors = []
        assert run(a, bind("h") + execute() + SYNC, errors=errors) == ["E:26000", "Z:I"]
        assert errors == ['prepared statement "h" does not exist']
        assert run(a, bind("h") + execute() + SYNC) == ["2", "D:h", "C:SELECT 1", "Z:I"]


def test_big_statements_and_parameters(make_pooler, pg, new_role):
    """Parse and Bind are read whole: a statement text and a parameter larger than the network
    buffer (pkt_buf) go through intact, also when the Parse is injected on another server."""
    role = new_role("ps14")
    p = ps_pooler(make_pooler, pg, role)
    big_sql = "select length($1::text) /* %s */" % ("x" * 200000)
    big_param = "y" * 300000
    with login(p) as a:
        sw = ServerSwitch(p)
        assert run(a, parse("big", big_sql) + bind("big", [big_param]) + execute() + SYNC) == \
            ["1", "2", "D:300000", "C:SELECT 1", "Z:I"]
        sw.switch(a)
        assert run(a, bind("big", ["z" * 70000]) + execute() + SYNC) == ["2", "D:70000", "C:SELECT 1", "Z:I"]
        sw.close()
