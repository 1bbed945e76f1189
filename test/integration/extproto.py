"""Extended-protocol messages and a reader that turns answers into short tokens, for tests that
compare exact message sequences (through the pooler against PostgreSQL directly).

    c.send(parse("s1", "select $1::int") + bind("s1", ["7"]) + execute() + SYNC)
    tokens(c)  ->  ["1", "2", "D:7", "C:SELECT 1", "Z:I"]

Tokens: "1" ParseComplete, "2" BindComplete, "3" CloseComplete, "t:N" ParameterDescription with N
parameters, "T:a,b" RowDescription, "n" NoData, "D:v|v" DataRow (NULL as \\N), "C:tag",
"I" EmptyQuery, "s" PortalSuspended, "E:SQLSTATE" ErrorResponse, "Z:status" ReadyForQuery.
Notices and parameter status messages are left out.
"""
import struct

from rawpg import message, parse_error_fields

SYNC = message("S")
FLUSH = message("H")


def _c(s):
    return s.encode() + b"\0"


def parse(name, sql, oids=()):
    return message("P", _c(name) + _c(sql) + struct.pack("!H", len(oids)) +
                   b"".join(struct.pack("!I", o) for o in oids))


def bind(stmt, params=(), portal=""):
    body = _c(portal) + _c(stmt) + struct.pack("!H", 0) + struct.pack("!H", len(params))
    for p in params:
        if p is None:
            body += struct.pack("!i", -1)
        else:
            v = str(p).encode()
            body += struct.pack("!i", len(v)) + v
    return message("B", body + struct.pack("!H", 0))


def describe(kind, name):
    return message("D", kind.encode() + _c(name))


def execute(portal="", max_rows=0):
    return message("E", _c(portal) + struct.pack("!I", max_rows))


def close(kind, name):
    return message("C", kind.encode() + _c(name))


def query(sql):
    return message("Q", _c(sql))


def token(t, p):
    if t == "t":
        return "t:%d" % struct.unpack("!H", p[:2])[0]
    if t == "T":
        (n,) = struct.unpack("!H", p[:2])
        cols, i = [], 2
        for _ in range(n):
            end = p.index(b"\0", i)
            cols.append(p[i:end].decode())
            i = end + 1 + 18
        return "T:" + ",".join(cols)
    if t == "D":
        (n,) = struct.unpack("!H", p[:2])
        i, row = 2, []
        for _ in range(n):
            (ln,) = struct.unpack("!i", p[i:i + 4])
            i += 4
            if ln < 0:
                row.append("\\N")
            else:
                row.append(p[i:i + ln].decode())
                i += ln
        return "D:" + "|".join(row)
    if t == "C":
        return "C:" + p.rstrip(b"\0").decode()
    if t == "E":
        return "E:" + parse_error_fields(p).get("C", "?")
    if t == "Z":
        return "Z:" + p.decode()
    return t


def tokens(conn, ready=1, errors=None):
    """Read up to the `ready`-th ReadyForQuery; -> list of tokens. Error messages are appended
    to `errors` (a list) when given."""
    out = []
    while ready:
        t, p = conn.read_message()
        if t in ("N", "S", "A"):
            continue
        if t == "E" and errors is not None:
            errors.append(parse_error_fields(p).get("M", ""))
        out.append(token(t, p))
        if t == "Z":
            ready -= 1
    return out


def tokens_until(conn, n):
    """Read exactly n tokens (for Flush tests, where no ReadyForQuery comes)."""
    out = []
    while len(out) < n:
        t, p = conn.read_message()
        if t in ("N", "S", "A"):
            continue
        out.append(token(t, p))
    return out
