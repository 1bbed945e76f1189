"""10,000 idle clients connected at once: the pooler keeps serving, and an idle client costs
little memory (target 1 KB, must stay below 2 KB).

What the pooler needs for this: one file descriptor per client, one per server connection, and
a few more (listening socket, log file, libevent's epoll and signal pipes, DNS): here
RLIMIT_NOFILE >= 10,000 + pool_size + ~16. The test process needs one per client as well. Both
limits are raised to the hard limit (or to 32768 where root may raise the hard limit), the
pooler's through prlimit(1) around its exec.

auth_type=trust keeps the 10,000 logins cheap (SCRAM would cost 10,000 PBKDF2 runs).

Memory is VmRSS from /proc/PID/status before and after. Under AddressSanitizer every malloc
carries redzones and freed blocks sit in a quarantine (256 MB by default), which would count
the login's temporary buffers as if idle clients held them; the quarantine is switched off for
this pooler (quarantine_size_mb=0), the redzones stay, so the sanitizer build's figure is an
upper bound of the plain build's.
"""
import asyncio
import os
import resource
import struct
import time

import pytest

import rawpg
from conftest import app_connstr
from pooler import SAN_ENV, is_pgbouncer

N = 10000
WANT_NOFILE = 32768
# A bound on the whole connect / check / close sequence, not a speed goal (bench/ measures login
# time against PgBouncer): about 20 s on 2 busy cores, 50 s was exceeded at a load average of 10+.
DEADLINE = 150


def raise_nofile(want):
    """Raise this process's RLIMIT_NOFILE towards want; returns (soft, hard) now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < want and os.geteuid() == 0:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return resource.getrlimit(resource.RLIMIT_NOFILE)
        except (ValueError, OSError):
            pass
    if soft < min(want, hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


async def login(port, user, db, timeout):
    """Open a connection, send the startup packet, read until ReadyForQuery. -> (reader, writer)"""
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    w.write(rawpg.startup_packet({"user": user, "database": db}))
    while True:
        hdr = await asyncio.wait_for(r.readexactly(5), timeout)
        (ln,) = struct.unpack("!I", hdr[1:5])
        body = await asyncio.wait_for(r.readexactly(ln - 4), timeout)
        t = hdr[:1]
        if t == b"E":
            w.close()
            raise rawpg.PgError(rawpg.parse_error_fields(body))
        if t == b"R" and struct.unpack("!I", body[:4])[0] != 0:
            w.close()
            raise AssertionError("pooler asked for a password (auth_type should be trust)")
        if t == b"Z":
            return r, w


async def query(r, w, sql, timeout=10):
    """Simple query on an asyncio connection; -> first column of the rows."""
    w.write(rawpg.query_message(sql))
    rows = []
    while True:
        hdr = await asyncio.wait_for(r.readexactly(5), timeout)
        (ln,) = struct.unpack("!I", hdr[1:5])
        body = await asyncio.wait_for(r.readexactly(ln - 4), timeout)
        if hdr[:1] == b"E":
            raise rawpg.PgError(rawpg.parse_error_fields(body))
        if hdr[:1] == b"D":
            (n,) = struct.unpack("!i", body[2:6])
            rows.append(body[6:6 + n].decode())
        if hdr[:1] == b"Z":
            return rows


def test_ten_thousand_idle_clients(make_pooler, pg, new_role):
    soft, hard = raise_nofile(WANT_NOFILE)
    if soft < N + 200:
        pytest.skip("RLIMIT_NOFILE hard limit %d is too low for %d clients" % (hard, N))
    role = new_role("idle10k")
    env = {}
    if not is_pgbouncer():
        env["ASAN_OPTIONS"] = SAN_ENV["ASAN_OPTIONS"] + ":quarantine_size_mb=0"
    p = make_pooler(settings={"auth_type": "trust", "pool_mode": "transaction", "max_client_conn": N + 100,
                              "log_connections": 0, "log_disconnections": 0},
                    databases={"appdb": app_connstr(pg, user=role, pool_size=2)},
                    users={"idle": "unused"},      # PgBouncer's trust still wants the user listed
                    nofile=(soft, soft), env=env)
    assert int(p.status_field("Pid")) == p.pid
    with open("/proc/%d/limits" % p.pid) as f:
        lim = [l for l in f if l.startswith("Max open files")][0].split()
    assert int(lim[3]) >= N + 100, "pooler's RLIMIT_NOFILE: %s" % lim
    with open("/proc/%d/maps" % p.pid) as f:
        sanitized = "libasan" in f.read()

    async def main():
        start = time.monotonic()
        # warm up: the pool's first server login, the allocator's first chunks
        warm = [await login(p.port, "idle", "appdb", 10) for _ in range(20)]
        assert await query(*warm[0], "select 'warm'") == ["warm"]
        for _, w in warm:
            w.write(rawpg.terminate_message())
            w.close()
        rss_before = p.rss()

        sem = asyncio.Semaphore(256)     # below the listen backlog (1024)
        conns = []

        async def one():
            async with sem:
                conns.append(await login(p.port, "idle", "appdb", 20))
        t0 = time.monotonic()
        results = await asyncio.gather(*(one() for _ in range(N)), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        connect_time = time.monotonic() - t0
        assert not failed, "%d of %d logins failed, first: %r" % (len(failed), N, failed[0])
        assert len(conns) == N

        # every login has had its ReadyForQuery: the pooler's work for them is done
        rss_after = p.rss()
        per_client = (rss_after - rss_before) / N
        print("%d idle clients: logins took %.1fs; VmRSS %.1f MB -> %.1f MB: %.0f bytes per idle client%s" % (
            N, connect_time, rss_before / 2**20, rss_after / 2**20, per_client,
            " (AddressSanitizer build, quarantine off)" if sanitized else ""))

        # a normal query still works, from a new client and from one of the idle ones (not
        # psycopg here: its select()-based wait fails on descriptors above 1023)
        extra = await login(p.port, "idle", "appdb", 10)
        assert await query(*extra, "select 40 + 2") == ["42"]
        assert await query(*conns[N // 2], "select 'idle one'") == ["idle one"]
        assert await query(*conns[-1], "select count(*) from pg_stat_activity where usename = "
                                       "current_user") in (["1"], ["2"])

        for r, w in conns + [extra]:
            w.close()
        await asyncio.sleep(0)
        return per_client, time.monotonic() - start

    per_client, total = asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert p.alive()
    with p.connect("appdb", "idle") as conn:
        assert conn.execute("select 7").fetchone() == (7,)
    assert per_client < 2048, "%.0f bytes per idle client (limit 2048, target 1024)" % per_client
    assert total < DEADLINE
