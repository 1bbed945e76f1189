#!/usr/bin/env python3
"""Long run of the randomised isolation checker (test/integration/isolation_model.py): a real
PostgreSQL, the real binary in transaction mode with pool_size 3, N clients sending random
requests and leaving at random points, every answer checked against the request that asked for
it. Runs seed after seed until --requests are done; prints one line per seed and the totals.

    python3 bench/isolation_soak.py --binary build-plain/tokenbouncer --requests 1000000
"""
import argparse
import asyncio
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))

import isolation_model  # noqa: E402
from conftest import ALICE, APP_DB, _make_pg  # noqa: E402
from pooler import Pooler  # noqa: E402
from conftest import app_connstr  # noqa: E402
import certs as certs_mod  # noqa: E402
import tempfile  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build-plain", "tokenbouncer"))
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--per-seed", type=int, default=50000)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--clients", type=int, default=60)
    ap.add_argument("--pool-size", type=int, default=3)
    ap.add_argument("--cancel-share", type=float, default=0.03)
    args = ap.parse_args()
    os.environ["TOKENBOUNCER_BIN"] = os.path.abspath(args.binary)
    pg = _make_pg(certs_mod.make_certs(tempfile.mkdtemp(prefix="tbcerts")))
    role = "soak_%d" % os.getpid()
    pg.create_role(role, "Soak-Pw-1")
    pg.sql('GRANT ALL ON SCHEMA public TO "%s"' % role, dbname=APP_DB)
    pg.sql("create table if not exists iso_sink (v text)", dbname=APP_DB)
    if os.environ.get("TB_PG_DEBUG"):
        pg.sql("alter system set log_min_messages = debug2")
        pg.sql("alter system set log_line_prefix = '%m [%p] '")
        pg.sql("select pg_reload_conf()")
        print("postgres log %s" % pg.logpath, flush=True)
    pg.sql('grant all on iso_sink to "%s"' % role, dbname=APP_DB)
    p = Pooler(settings={"pool_mode": "transaction", "auth_type": "trust", "verbose": os.environ.get("TB_VERBOSE", "0")},
               users={ALICE: "x"},
               databases={"appdb": app_connstr(pg, user=role, password="Soak-Pw-1", pool_size=args.pool_size)})
    p.start()
    print("pooler work dir %s" % p.workdir, flush=True)
    total = {"requests": 0, "departures": 0, "cancels": 0, "clients": 0}
    seed = args.first_seed
    t0 = time.monotonic()
    try:
        while total["requests"] < args.requests:
            n = min(args.per_seed, args.requests - total["requests"])
            st = asyncio.run(isolation_model.run(p.port, seed, clients=args.clients, max_requests=n,
                                                 seconds=3600, cancel_share=args.cancel_share))
            for k in total:
                total[k] += st[k]
            print("seed %d: %r (total %d requests, %.0f s)" % (seed, st, total["requests"],
                                                              time.monotonic() - t0), flush=True)
            seed += 1
    finally:
        p.stop()
        if not os.environ.get("TB_PG_DEBUG"):
            pg.destroy()
    print("seeds %d-%d: %r in %.0f s, 0 mismatches" % (args.first_seed, seed - 1, total, time.monotonic() - t0))


if __name__ == "__main__":
    main()
