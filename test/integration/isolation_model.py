"""A randomised, seeded isolation checker: many clients over a few shared server connections,
each tagging every request with its own id (in the SQL text and so in the expected answer),
sending random sequences -- simple queries, pipelines, extended-protocol batches with and
without Sync, errors, COPY in both directions, transactions, cancels -- and disconnecting at
random points. Every client checks that it receives exactly the answers to its own requests,
in order: the message types, the values and the error texts.

Used by test_isolation.py (bounded, in the README's test command) and by
bench/isolation_soak.py (long runs over a range of seeds).

    stats = asyncio.run(run(port, seed=1, clients=40, max_requests=20000, seconds=60))
"""
import asyncio
import random
import struct
import time


class Mismatch(AssertionError):
    pass


def msg(t, body=b""):
    return t.encode() + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def startup(user, db):
    body = struct.pack("!I", 3 << 16) + cstr("user") + cstr(user) + cstr("database") + cstr(db) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def Q(sql):
    return msg("Q", cstr(sql))


def P(sql):
    return msg("P", b"\0" + cstr(sql) + struct.pack("!H", 0))


B = msg("B", b"\0\0" + struct.pack("!HHH", 0, 0, 0))
D = msg("D", b"P\0")
E = msg("E", b"\0" + struct.pack("!I", 0))
S = msg("S")
H = msg("H")


class Client:
    """One connection. `expect` is the queue of expected answers: (type, check) pairs, where
    check is None, a value the DataRow/CopyData must hold, or a text the error must contain."""

    def __init__(self, cid, rng, port, user, db, stats):
        self.cid, self.rng, self.port, self.user, self.db, self.stats = cid, rng, port, user, db, stats
        self.seq = 0
        self.expect = []
        self.history = []
        self.ops = []
        self.key = None

    def tag(self):
        self.seq += 1
        return "c%d-%d" % (self.cid, self.seq)

    async def open(self):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        self.w.write(startup(self.user, self.db))
        while True:
            t, p = await self.read()
            if t == "R" and struct.unpack("!I", p[:4])[0] != 0:
                raise Mismatch("client %d: the checker needs auth_type=trust" % self.cid)
            if t == "K":
                self.key = struct.unpack("!II", p[:8])
            if t == "E":
                raise Mismatch("client %d: login failed: %r" % (self.cid, p))
            if t == "Z":
                return

    async def read(self):
        hdr = await self.r.readexactly(5)
        (n,) = struct.unpack("!I", hdr[1:])
        return chr(hdr[0]), await self.r.readexactly(n - 4)

    # ---- requests: each appends what it sends and what must come back
    def simple(self, out):
        t = self.tag()
        out.append(Q("select '%s'" % t))
        self.expect += [("T", None), ("D", t), ("C", None), ("Z", None)]

    def error(self, out):
        t = self.tag()
        out.append(Q("select '%s'::int" % t))
        self.expect += [("E", t), ("Z", None)]

    def extended(self, out, sync=True):
        t = self.tag()
        out.append(P("select '%s'::text" % t) + B + D + E)
        self.expect += [("1", None), ("2", None), ("T", None), ("D", t), ("C", None)]
        if sync:
            out.append(S)
            self.expect.append(("Z", None))

    def extended_error(self, out):
        """An error inside a batch: the rest of it up to Sync is skipped, Queries included."""
        t = self.tag()
        out.append(P('select 1 from "%s"' % t) + B + E + Q("select 'skipped'") + S)
        self.expect += [("E", t), ("Z", None)]

    def copy_out(self, out):
        t = self.tag()
        n = self.rng.randint(1, 50)
        out.append(Q("copy (select '%s' from generate_series(1, %d)) to stdout" % (t, n)))
        self.expect += [("H", None)] + [("d", t + "\n")] * n + [("c", None), ("C", None), ("Z", None)]

    def transaction(self, out):
        t = self.tag()
        out.append(Q("begin") + Q("select '%s'" % t) + Q("commit"))
        self.expect += [("C", None), ("Z", None), ("T", None), ("D", t), ("C", None), ("Z", None),
                        ("C", None), ("Z", None)]

    REQUESTS = ("simple", "simple", "simple", "error", "extended", "extended", "extended_error",
                "copy_out", "transaction")

    async def check_one(self):
        want_t, want = self.expect.pop(0)
        t, p = await asyncio.wait_for(self.read(), 30)
        self.history = (self.history + [t])[-40:]
        while t in ("N", "S"):           # notices and parameter changes come where they come
            t, p = await asyncio.wait_for(self.read(), 30)
        if t != want_t:
            raise Mismatch("client %d (pooler key %r): expected %r, got %r %r; ops %r" % (
                self.cid, self.key, want_t, t, p[:120], self.ops[-10:]))
        if want is None:
            return
        if t == "D":
            got = p[6:].decode()
            if got != want:
                raise Mismatch("client %d: expected row %r, got %r" % (self.cid, want, got))
        elif t == "d":
            if p.decode() != want:
                raise Mismatch("client %d: expected copy data %r, got %r" % (self.cid, want, p))
        elif t == "E" and want.encode() not in p:
            raise Mismatch("client %d: expected an error about %r, got %r" % (self.cid, want, p))

    async def turn(self):
        """One batch of requests; returns False when the client disconnected on purpose."""
        self.ops.append("turn")
        out = []
        kind = self.rng.random()
        n = 1 if kind < 0.5 else self.rng.randint(2, 8)
        unsynced_tail = False
        for _ in range(n):
            name = self.rng.choice(self.REQUESTS)
            if name == "extended" and self.rng.random() < 0.3:
                self.extended(out, sync=False)
                unsynced_tail = True
            else:
                if unsynced_tail and name in ("extended_error",):
                    name = "simple"
                getattr(self, name)(out)
                unsynced_tail = False
        if unsynced_tail:
            out.append(S)
            self.expect.append(("Z", None))
        self.stats["requests"] += n
        self.w.write(b"".join(out))
        leave = self.rng.random() < 0.08
        if leave:
            # read a random part of the answers, then vanish with the rest owed
            for _ in range(self.rng.randint(0, len(self.expect))):
                await self.check_one()
            self.w.close()
            self.stats["departures"] += 1
            return False
        while self.expect:
            await self.check_one()
        return True

    async def copy_in(self):
        self.ops.append("copy_in")
        t = self.tag()
        self.w.write(Q("copy iso_sink from stdin"))
        tt, _ = await asyncio.wait_for(self.read(), 30)
        if tt != "G":
            raise Mismatch("client %d: expected CopyInResponse, got %r" % (self.cid, tt))
        self.w.write(msg("d", (t + "\n").encode()) + msg("c"))
        self.expect += [("C", None), ("Z", None)]
        while self.expect:
            await self.check_one()
        self.stats["requests"] += 1

    async def cancel_turn(self):
        self.ops.append("cancel")
        t = self.tag()
        self.w.write(Q("select pg_sleep(%.3f), '%s'" % (self.rng.uniform(0.01, 0.2), t)))
        await asyncio.sleep(self.rng.uniform(0, 0.1))
        cr, cw = await asyncio.open_connection("127.0.0.1", self.port)
        cw.write(struct.pack("!IIII", 16, 80877102, *self.key))
        await cr.read()
        cw.close()
        # either the row (the cancel came too late) or 57014, then ReadyForQuery
        tt, p = await asyncio.wait_for(self.read(), 30)
        if tt == "E":
            if b"57014" not in p:
                raise Mismatch("client %d: unexpected error %r" % (self.cid, p))
        else:
            if tt != "T":
                raise Mismatch("client %d: expected RowDescription or 57014, got %r" % (self.cid, tt))
            tt, p = await asyncio.wait_for(self.read(), 30)
            if tt == "E" and b"57014" in p:
                pass                   # cancelled after the RowDescription went out
            elif tt != "D" or not p.endswith(t.encode()):
                raise Mismatch("client %d: expected its row %r, got %r %r" % (self.cid, t, tt, p))
            else:
                tt, p = await asyncio.wait_for(self.read(), 30)
        tt, p = await asyncio.wait_for(self.read(), 30)
        if tt != "Z":
            raise Mismatch("client %d: expected ReadyForQuery after the cancelled query, got %r" % (self.cid, tt))
        self.stats["requests"] += 1
        self.stats["cancels"] += 1


async def run(port, seed, clients=40, max_requests=20000, seconds=60, user="alice", db="appdb",
              cancel_share=0.03, copy_in_share=0.03):
    rng = random.Random(seed)
    stats = {"requests": 0, "departures": 0, "cancels": 0, "clients": 0}
    deadline = time.monotonic() + seconds
    next_id = [0]

    async def worker(wid):
        wrng = random.Random(rng.random())
        while stats["requests"] < max_requests and time.monotonic() < deadline:
            next_id[0] += 1
            c = Client(next_id[0], wrng, port, user, db, stats)
            stats["clients"] += 1
            await c.open()
            try:
                while stats["requests"] < max_requests and time.monotonic() < deadline:
                    x = wrng.random()
                    if x < cancel_share:
                        await c.cancel_turn()
                    elif x < cancel_share + copy_in_share:
                        await c.copy_in()
                    elif not await c.turn():
                        break
            finally:
                c.w.close()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    return stats
