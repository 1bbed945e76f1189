"""Large results and COPY through the pooler (forwarding with backpressure, no truncation)."""
import time

from conftest import ALICE, ALICE_PW, APP_DB

ROWS = 110_000
WIDTH = 1000
BIG_QUERY = "select repeat('x', %d) from generate_series(1, %d)" % (WIDTH, ROWS)


def test_large_result_streamed(make_pooler):
    p = make_pooler()
    rows = nbytes = 0
    start = time.monotonic()
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        cur = conn.cursor()
        for (val,) in cur.stream(BIG_QUERY):  # one query, rows read as they arrive
            rows += 1
            nbytes += len(val)
        assert conn.execute("select 'after'").fetchone() == ("after",)
    assert rows == ROWS
    assert nbytes == ROWS * WIDTH  # 110,000,000 bytes of payload
    assert time.monotonic() - start < 120


def test_large_result_buffered(make_pooler):
    """The same result read whole by libpq (client-side buffering, reader slower to start)."""
    p = make_pooler()
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        cur = conn.execute("select length(string_agg(x, '')), count(*) from (%s) s(x)" % BIG_QUERY)
        assert cur.fetchone() == (ROWS * WIDTH, ROWS)
        rows = conn.execute("select repeat('y', 100000) from generate_series(1, 300)").fetchall()
        assert len(rows) == 300 and all(r[0] == "y" * 100000 for r in rows)


def test_copy_out(make_pooler):
    p = make_pooler()
    total = 0
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        with conn.cursor().copy("copy (%s) to stdout" % BIG_QUERY) as copy:
            for data in copy:
                total += len(data)
        assert conn.execute("select 1").fetchone() == (1,)
    assert total == ROWS * (WIDTH + 1)  # each line ends with a newline: 110,110,000 bytes


def test_copy_in(make_pooler, pg):
    table = "copy_in_%d" % time.monotonic_ns()
    pg.sql("create table %s (a int, b text)" % table, dbname=APP_DB)
    pg.sql("grant all on %s to appuser" % table, dbname=APP_DB)
    p = make_pooler()
    n = 100_000
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        with conn.cursor().copy("copy %s (a, b) from stdin" % table) as copy:
            for i in range(n):
                copy.write_row((i, "row %d" % i))
        assert conn.execute("select count(*) from %s" % table).fetchone() == (n,)
    # checked on PostgreSQL directly
    assert pg.sql("select count(*), sum(a), max(b) from %s" % table, dbname=APP_DB) == [
        (n, n * (n - 1) // 2, "row 99999")]


def test_copy_in_error_keeps_session(make_pooler):
    """A COPY FROM STDIN that fails mid-way (bad data) returns an error and the session goes on."""
    import psycopg
    p = make_pooler()
    with p.connect("appdb", ALICE, ALICE_PW) as conn:
        conn.execute("create temp table ci (a int)")
        try:
            with conn.cursor().copy("copy ci (a) from stdin") as copy:
                copy.write(b"1\n2\nnot-a-number\n")
        except psycopg.errors.InvalidTextRepresentation:
            pass
        else:
            raise AssertionError("COPY with bad data did not fail")
        assert conn.execute("select count(*) from ci").fetchone() == (0,)
