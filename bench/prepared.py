#!/usr/bin/python3
"""Named prepared statements through tokenbouncer's transaction pooling: what they cost.

    python3 bench/prepared.py            # 3 rounds of 10 s per cell
    python3 bench/prepared.py --quick    # 1 round of 3 s

`pgbench -S -M prepared` through tokenbouncer (statement tracking on, the default
max_prepared_statements = 200) against `-M extended` through tokenbouncer and against
`-M prepared` on PostgreSQL directly, with 10, 50 and 200 clients over a pool of 20: TPS and the
pooler's CPU per transaction. Also the memory the pooler holds per cached statement (SHOW MEM).
The goal: `-M prepared` through the pooler costs no more pooler CPU per transaction than
`-M extended` through it (prepared sends less: Bind/Execute/Sync, no Parse).

Reuses bench/run.py (PostgreSQL set-up, pinning pgbench and the pooler to separate cores, CPU
from /proc). Run as root on Debian 12 from the repository root; every loop is bounded.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402


def console(pooler, sql):
    r = subprocess.run([os.path.join(bench.PG_BIN, "psql"), "-h", "127.0.0.1", "-p", str(pooler.port),
                        "-U", bench.BENCH_USER, "-d", "pgbouncer", "-At", "-F", "|", "-c", sql],
                       capture_output=True, text=True, timeout=30, env=bench.pgbench_env())
    if r.returncode != 0:
        raise RuntimeError("console %s: %s" % (sql, r.stderr))
    return [line.split("|") for line in r.stdout.splitlines()]


class TbPooler(bench.Pooler):
    def settings(self):
        return super().settings() + [("admin_users", bench.BENCH_USER)]


def measure(target, mode, clients, duration):
    args = ["-S", "-M", mode, "-c", str(clients), "-j", "1" if clients <= 10 else "2"]
    if target is None:
        res = bench.run_pgbench(target_port[0], args, duration)
        res["cpu_us_per_tx"] = None
        return res
    wl = dict(key="%s-%d" % (mode, clients), args=args)
    return bench.measured_run(target, wl, duration)


target_port = [None]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=int)
    ap.add_argument("--tokenbouncer", default=os.path.join(bench.REPO, "build-bench", "tokenbouncer"))
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    rounds = a.rounds or (1 if a.quick else 3)
    duration = a.duration or (3 if a.quick else 10)
    if not (1 <= rounds <= 20 and 1 <= duration <= 600):
        raise SystemExit("rounds 1..20, duration 1..600")
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    bench.ensure_binary(a.tokenbouncer, a.no_build)
    os.sched_setaffinity(0, {int(bench.PGBENCH_CPU)})
    basedir = tempfile.mkdtemp(prefix="tbprep")
    os.chmod(basedir, 0o755)
    pg = tb = None
    try:
        pg = bench.Postgres(basedir, bench.POOLER_CPU).init().start()
        target_port[0] = pg.port
        pg.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (bench.BENCH_USER, bench.BENCH_PASS))
        pg.psql("CREATE DATABASE %s OWNER %s" % (bench.DB, bench.BENCH_USER))
        secret = pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % bench.BENCH_USER)
        r = subprocess.run([bench.PGBENCH, "-i", "-q", "-s", "10", "-h", "127.0.0.1", "-p", str(pg.port),
                            "-U", bench.BENCH_USER, bench.DB], capture_output=True, text=True, timeout=600,
                           env=bench.pgbench_env())
        if r.returncode != 0:
            raise RuntimeError(r.stdout + r.stderr)
        tb = TbPooler("tokenbouncer", a.tokenbouncer, basedir, pg, secret)
        tb.start()
        bench.run_pgbench(tb.port, ["-S", "-M", "prepared", "-c", "20", "-j", "1"], 2)  # warm-up
        rows = []
        for clients in (10, 50, 200):
            cells = {}
            for name, target, mode in (("tb prepared", tb, "prepared"), ("tb extended", tb, "extended"),
                                       ("direct prepared", None, "prepared")):
                runs = [measure(target, mode, clients, duration) for _ in range(rounds)]
                cells[name] = dict(tps=statistics.median(x["tps"] for x in runs),
                                   cpu=statistics.median(x["cpu_us_per_tx"] for x in runs)
                                   if target is not None else None)
                bench.log("%d clients, %s: %s" % (clients, name, cells[name]))
            rows.append((clients, cells))
        mem = {r[0]: r for r in console(tb, "SHOW MEM")}
        stats = console(tb, "SHOW STATS")
        print("\n| clients | tokenbouncer -M prepared: TPS, pooler µs/tx | tokenbouncer -M extended: TPS, "
              "pooler µs/tx | PostgreSQL direct -M prepared: TPS |")
        print("|---|---|---|---|")
        for clients, c in rows:
            print("| %d | %.0f, %.1f | %.0f, %.1f | %.0f |" % (
                clients, c["tb prepared"]["tps"], c["tb prepared"]["cpu"], c["tb extended"]["tps"],
                c["tb extended"]["cpu"], c["direct prepared"]["tps"]))
        ps = mem.get("prepared_statement_cache")
        if ps:
            print("\nStatement cache: %s entries, %s bytes in all, %s bytes per statement "
                  "(entry, name and the Parse message with its text)." % (ps[2], ps[4], ps[1]))
        print("SHOW STATS (bench): %s" % [s for s in stats if s and s[0] == bench.DB])
    finally:
        if tb:
            tb.stop()
        if pg:
            pg.stop()
        shutil.rmtree(basedir, ignore_errors=True)


if __name__ == "__main__":
    main()
