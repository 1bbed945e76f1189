"""Malformed and unusual startup traffic, login timeouts. The pooler must answer with the right
SQLSTATE, close, stay alive, and not disturb a well-behaved client meanwhile."""
import socket
import struct
import time

import pytest

import rawpg
from conftest import ALICE, ALICE_PW, app_connstr
from pooler import is_pgbouncer
from util import Bounded

MAX_PACKET = 1048576


def send_and_collect(port, data, shut_wr=False, timeout=5):
    """Send raw bytes; return the parsed messages the pooler sent before closing."""
    with rawpg.RawConn("127.0.0.1", port, timeout=timeout) as c:
        c.send(data)
        if shut_wr:
            c.sock.shutdown(socket.SHUT_WR)
        got, _ = c.wait_closed(timeout)
    return rawpg.parse_messages(got)


def error_code(msgs):
    """SQLSTATE of the single ErrorResponse the pooler sent; AssertionError otherwise."""
    assert msgs, "connection closed without an ErrorResponse"
    assert msgs[0][0] == "E", "expected an ErrorResponse first, got %r" % (msgs,)
    return rawpg.parse_error_fields(msgs[0][1])["C"]


# (name, bytes, accepted SQLSTATEs; None in the set = a silent close is accepted)
def malformed_cases():
    user_db = b"user\0alice\0database\0appdb\0\0"
    return [
        ("length below 8", struct.pack("!I", 4) + b"\0\0\0\0", {"08P01"}),
        ("length 7", struct.pack("!II", 7, 196608), {"08P01"}),
        ("length 0x7fffffff", struct.pack("!II", 0x7FFFFFFF, 196608) + user_db, {"08P01"}),
        ("length over max_packet_size", struct.pack("!II", MAX_PACKET + 1, 196608) + user_db, {"08P01"}),
        ("http request", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", {"08P01"}),
        ("unknown protocol 9.0", struct.pack("!II", 8, 9 << 16), {"0A000"}),
        ("protocol 2.0", rawpg.startup_packet({"user": ALICE, "database": "appdb"}, 2 << 16), {"0A000"}),
        ("unterminated parameters", struct.pack("!II", 8 + 10, 196608) + b"user\0alice", {"08P01"}),
        ("parameter without value", struct.pack("!II", 8 + 6, 196608) + b"user\0\0", {"08P01", "28000"}),
        ("no user", rawpg.startup_packet({"database": "appdb"}), {"08P01", "28000"}),
        ("cancel request too short", struct.pack("!III", 12, 80877102, 1), {"08P01", None}),
    ]


@pytest.fixture
def proto_pooler(make_pooler, pg):
    return make_pooler(settings={"max_packet_size": MAX_PACKET},
                       databases={"appdb": app_connstr(pg)})


@pytest.mark.parametrize("case", malformed_cases(), ids=[c[0] for c in malformed_cases()])
def test_malformed_startup(proto_pooler, case):
    name, data, codes = case
    msgs = send_and_collect(proto_pooler.port, data)
    if not msgs and None in codes:
        pass
    else:
        code = error_code(msgs)
        if is_pgbouncer():
            assert code in codes | {"08P01"}, (name, msgs)
        else:
            assert code in codes, (name, msgs)
        assert len(msgs) == 1, "more than one message before close: %r" % (msgs,)
    assert proto_pooler.alive()
    with rawpg.try_login("127.0.0.1", proto_pooler.port, ALICE, "appdb", ALICE_PW) as c:
        assert c.query_ok("select 1").rows == [("1",)]


def test_truncated_startup_then_eof(proto_pooler):
    # declares 100 bytes, sends 20, then closes its side: the pooler closes too (maybe with 08P01)
    data = struct.pack("!II", 100, 196608) + b"user\0alice\0data"
    assert len(data) == 23
    msgs = send_and_collect(proto_pooler.port, data[:20], shut_wr=True)
    if msgs:
        assert error_code(msgs) == "08P01"
    assert proto_pooler.alive()


def test_truncated_startup_abrupt_close(proto_pooler):
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", proto_pooler.port), timeout=5)
        s.sendall(struct.pack("!II", 100, 196608) + b"user\0alice\0")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        s.close()
    assert proto_pooler.alive()
    with rawpg.try_login("127.0.0.1", proto_pooler.port, ALICE, "appdb", ALICE_PW) as c:
        assert c.query_ok("select 1").rows == [("1",)]


def test_protocol_3_1_is_negotiated_down(proto_pooler):
    with rawpg.RawConn("127.0.0.1", proto_pooler.port) as c:
        c.login(ALICE, "appdb", ALICE_PW, version=(3 << 16) | 1)
        assert c.negotiate is not None, "no NegotiateProtocolVersion for a 3.1 client"
        assert c.negotiate["minor"] == 0
        assert c.query_ok("select 31").rows == [("31",)]


def test_protocol_3_1_with_pq_option(proto_pooler):
    with rawpg.RawConn("127.0.0.1", proto_pooler.port) as c:
        c.login(ALICE, "appdb", ALICE_PW, version=(3 << 16) | 1, **{"_pq_.tb_test": "on"})
        assert c.negotiate is not None and c.negotiate["minor"] == 0
        assert c.negotiate["unsupported"] == ["_pq_.tb_test"]
        assert c.query_ok("select 1").rows == [("1",)]


def test_unknown_database_is_3D000(proto_pooler):
    with pytest.raises(rawpg.PgError) as ei:
        rawpg.try_login("127.0.0.1", proto_pooler.port, ALICE, "nosuchdb", ALICE_PW).close()
    assert ei.value.code == ("08P01" if is_pgbouncer() else "3D000")


def test_gssenc_then_startup_on_same_socket(proto_pooler):
    with rawpg.RawConn("127.0.0.1", proto_pooler.port) as c:
        assert c.request_gssenc() == "N"
        assert c.request_ssl() == "N"  # client TLS is off in this config
        c.login(ALICE, "appdb", ALICE_PW)
        assert c.query_ok("select 'gss'").rows == [("gss",)]


def test_unknown_cancel_key_closes_silently(proto_pooler):
    msgs = send_and_collect(proto_pooler.port, rawpg.cancel_request(1, 2))
    assert msgs == []


def test_oversized_message_after_login(proto_pooler):
    """A regular message longer than max_packet_size after login: 08P01 and close."""
    with rawpg.try_login("127.0.0.1", proto_pooler.port, ALICE, "appdb", ALICE_PW) as c:
        c.send(b"Q" + struct.pack("!I", 0x7FFFFFF0) + b"select 1")
        got, _ = c.wait_closed(5)
    msgs = rawpg.parse_messages(got)
    assert msgs and msgs[0][0] == "E", msgs
    assert rawpg.parse_error_fields(msgs[0][1])["C"] == "08P01"
    assert proto_pooler.alive()


def test_garbage_does_not_disturb_a_working_client(proto_pooler):
    p = proto_pooler
    stop_at = [None]

    def worker():
        n = 0
        with p.connect("appdb", ALICE, ALICE_PW) as conn:
            deadline = time.monotonic() + 60
            while n < 2000 and time.monotonic() < deadline and (stop_at[0] is None or n < 20):
                got = conn.execute("select sum(x) from generate_series(1, 1000) x").fetchone()
                assert got == (500500,), got
                n += 1
        return n

    w = Bounded(worker)
    rounds = 0
    for _ in range(10):
        for name, data, codes in malformed_cases():
            msgs = send_and_collect(p.port, data)
            if msgs:
                assert msgs[0][0] == "E", (name, msgs)
        rounds += 1
    stop_at[0] = True
    n = w.result(60, "well-behaved client")
    assert rounds == 10 and n >= 20
    assert p.alive()


def test_login_timeout_idle_socket(make_pooler):
    p = make_pooler(settings={"client_login_timeout": 1})
    with rawpg.RawConn("127.0.0.1", p.port, timeout=10) as c:
        got, elapsed = c.wait_closed(6)
    assert 0.9 <= elapsed <= 3.5, "closed after %.2fs" % elapsed
    msgs = rawpg.parse_messages(got)
    if msgs:
        assert error_code(msgs) == "08P01"


def test_login_timeout_during_auth(make_pooler):
    """Sends the StartupMessage, then never answers the SASL request."""
    p = make_pooler(settings={"client_login_timeout": 1})
    with rawpg.RawConn("127.0.0.1", p.port, timeout=10) as c:
        c.startup(ALICE, "appdb")
        code, _ = c.read_auth_request()
        assert code == rawpg.AUTH_SASL
        got, elapsed = c.wait_closed(6)
    assert 0.9 <= elapsed <= 3.5, "closed after %.2fs" % elapsed
    msgs = rawpg.parse_messages(got)
    if msgs:
        assert error_code(msgs) == "08P01"
