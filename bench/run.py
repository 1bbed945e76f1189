#!/usr/bin/python3
"""tokenbouncer vs PgBouncer, side by side on one throwaway PostgreSQL 15.

Run as root on Debian 12 from the repository root:

    python3 bench/run.py            # full run: 3 rounds of 15 s per workload, memory at 1k/10k clients
    python3 bench/run.py --quick    # smoke run: 1 round of 3 s per workload

What it does (see doc/benchmarks.md for the method):
  1. `bash scripts/deps.sh` (the only thing that installs anything), then builds an optimised
     tokenbouncer in build-bench/ if there is none (../configure CFLAGS='-O2 -g').
  2. initdb a PostgreSQL 15 into a temp dir as the `postgres` user (scram-sha-256, loopback,
     fsync=off, max_connections=300), `pgbench -i -s 10`.
  3. starts tokenbouncer and PgBouncer (both as `postgres`, pinned to core 1) with equivalent
     settings: transaction pooling, pool size 20, SCRAM secrets in the userlist, password in the
     [databases] entry, max_client_conn 12000, minimal logging.
  4. for every workload and round, runs pgbench (pinned to core 0) in the order A B B A and reads
     TPS from pgbench and the pooler's CPU (utime+stime, /proc/<pid>/stat) around each run.
  5. memory: a fresh pooler per measurement, N = 1,000 and 10,000 raw asyncio clients logging in
     with SCRAM, VmRSS (baseline subtracted) while idle and while all of them run a query loop.
  6. prints a Markdown table and writes bench/results/<date>.md and .json.

Standard library only, so it runs under Debian's /usr/bin/python3 or any python3 >= 3.9.
Every loop is bounded in count and time; every address is 127.0.0.1.
"""
import argparse
import asyncio
import base64
import datetime
import hashlib
import hmac
import json
import os
import platform
import pwd
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PG_BIN = os.environ.get("TB_PG_BIN", "/usr/lib/postgresql/15/bin")
PGBENCH = os.path.join(PG_BIN, "pgbench")  # the real binary, not Debian's wrapper
RUN_USER = "postgres"
DB = "bench"
BENCH_USER = "bench"
BENCH_PASS = "bench-Pw-7f3a91"          # ASCII: no SASLprep questions
SUPERPASS = "super-Pw-2b8e44"
PORT_RANGE = (20000, 32000)             # outside the ephemeral range 32768-60999
CLK_TCK = os.sysconf("SC_CLK_TCK")
POOL_SIZE = 20
PLAIN_USER = "bench_plain"              # userlist entry with the plain password (the SCRAM storm)
MANY_POOLS = 50                         # aliases b00..b49, pool_size 2 each
ONE_POOL = "bench100"                   # one alias, pool_size 100: the same servers as the 50 pools
MAX_CLIENT_CONN = 12000
PGBENCH_CPU = "0"
POOLER_CPU = "1"

T0 = time.monotonic()


def log(msg):
    sys.stderr.write("[%7.1fs] %s\n" % (time.monotonic() - T0, msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------- small helpers
def free_port(taken=set()):
    for _ in range(500):
        port = random.randint(*PORT_RANGE)
        if port in taken:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        taken.add(port)
        return port
    raise RuntimeError("no free port in %r" % (PORT_RANGE,))


def wait_for(cond, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def proc_cpu_ticks(pid):
    """(utime, stime) of the whole process (all threads), in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state); utime is field 14, stime field 15
    return int(rest[11]), int(rest[12])


def proc_status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def proc_nofile(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return line.split()[3:5]
    return None


def as_user_kw():
    pw = pwd.getpwnam(RUN_USER)
    return dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])


def chown_user(path):
    pw = pwd.getpwnam(RUN_USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def raise_nofile():
    """Soft RLIMIT_NOFILE up to the hard limit (inherited by every child we start)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1048576
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def stop_proc(proc, sigs, what):
    """Send each (signal, wait) in turn until the process is gone. Bounded."""
    if proc is None or proc.poll() is not None:
        return
    for sig, t in sigs:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(t)
            return
        except subprocess.TimeoutExpired:
            continue
    log("warning: %s (pid %d) did not stop" % (what, proc.pid))


# --------------------------------------------------------------------------- PostgreSQL
class Postgres:
    def __init__(self, basedir, cpus):
        self.basedir = basedir
        self.datadir = os.path.join(basedir, "pgdata")
        self.sockdir = os.path.join(basedir, "pgsock")
        self.logpath = os.path.join(basedir, "postgres.log")
        self.port = free_port()
        self.cpus = cpus
        self.proc = None

    def init(self):
        os.makedirs(self.sockdir)
        chown_user(self.sockdir)
        os.makedirs(self.datadir, mode=0o700)
        chown_user(self.datadir)
        pwfile = os.path.join(self.basedir, "pwfile")
        with open(pwfile, "w") as f:
            f.write(SUPERPASS + "\n")
        chown_user(pwfile)
        os.chmod(pwfile, 0o600)
        r = subprocess.run([os.path.join(PG_BIN, "initdb"), "-D", self.datadir, "--auth=scram-sha-256",
                            "--username=postgres", "--pwfile=" + pwfile, "-E", "UTF8", "--locale=C",
                            "--no-sync"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, cwd=self.basedir, timeout=180, **as_user_kw())
        os.unlink(pwfile)
        if r.returncode != 0:
            raise RuntimeError("initdb failed:\n" + r.stdout.decode(errors="replace"))
        conf = [
            "listen_addresses = '127.0.0.1'",
            "port = %d" % self.port,
            "unix_socket_directories = '%s'" % self.sockdir,
            "max_connections = 600",   # both poolers' pools: 2 x (20 + 100 + 50 x 2) servers
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
            "shared_buffers = 256MB",
            "max_wal_size = 4GB",
            "checkpoint_timeout = 30min",
            "autovacuum = off",
            "password_encryption = 'scram-sha-256'",
            "log_min_messages = warning",
            "log_connections = off",
            "log_disconnections = off",
        ]
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write("\n# tokenbouncer benchmark\n" + "\n".join(conf) + "\n")
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as f:
            f.write("local all postgres trust\n"
                    "host all all 127.0.0.1/32 scram-sha-256\n")
        return self

    def start(self):
        logf = open(self.logpath, "ab")
        try:
            # taskset execs postgres: the PID we get is the postmaster's.
            self.proc = subprocess.Popen(
                ["taskset", "-c", self.cpus, os.path.join(PG_BIN, "postgres"), "-D", self.datadir],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, cwd=self.basedir,
                start_new_session=True, **as_user_kw())
        finally:
            logf.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited:\n" + self.log_tail())
            return subprocess.run([os.path.join(PG_BIN, "pg_isready"), "-q", "-h", self.sockdir,
                                   "-p", str(self.port)], timeout=10).returncode == 0
        wait_for(ready, 60, "postgres on port %d" % self.port, 0.2)
        return self

    def log_tail(self, n=30):
        try:
            with open(self.logpath, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def psql(self, sql, db="postgres"):
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", self.sockdir, "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                           cwd=self.basedir, **as_user_kw())
        if r.returncode != 0:
            raise RuntimeError("psql failed (%s): %s" % (sql, r.stderr))
        return r.stdout.strip()

    def stop(self):
        stop_proc(self.proc, [(signal.SIGINT, 60), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)], "postgres")


# --------------------------------------------------------------------------- poolers
class Pooler:
    """kind: 'tokenbouncer' or 'pgbouncer'. Runs as postgres, pinned to POOLER_CPU; self.proc.pid is
    the daemon itself (taskset execs it, Popen(user=) sets the ids without a wrapper process)."""

    def __init__(self, kind, binary, basedir, pg, secret):
        self.kind = kind
        self.binary = binary
        self.workdir = os.path.join(basedir, kind)
        self.port = free_port()
        self.pg = pg
        self.secret = secret
        self.proc = None
        self.ini = os.path.join(self.workdir, kind + ".ini")
        self.userlist = os.path.join(self.workdir, "userlist.txt")
        self.logfile = os.path.join(self.workdir, kind + ".log")
        self.stdout = os.path.join(self.workdir, "stdout.txt")

    def settings(self):
        s = [
            ("listen_addr", "127.0.0.1"),
            ("listen_port", self.port),
            ("unix_socket_dir", ""),
            ("auth_type", "scram-sha-256"),
            ("auth_file", self.userlist),
            ("pool_mode", "transaction"),
            ("default_pool_size", POOL_SIZE),
            ("max_client_conn", MAX_CLIENT_CONN),
            ("verbose", 0),
            ("log_connections", 0),
            ("log_disconnections", 0),
            ("logfile", self.logfile),
            ("pidfile", os.path.join(self.workdir, self.kind + ".pid")),
        ]
        if self.kind == "pgbouncer":
            # PgBouncer-only knobs that would add periodic log lines; tokenbouncer has no equivalent.
            s += [("log_stats", 0)]
        return s

    def write_files(self):
        os.makedirs(self.workdir, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        section = "pgbouncer" if self.kind == "pgbouncer" else "tokenbouncer"
        lines = ["[%s]" % section] + ["%s = %s" % kv for kv in self.settings()]
        up = "host=127.0.0.1 port=%d dbname=%s user=%s password=%s" % (self.pg.port, DB, BENCH_USER, BENCH_PASS)
        lines += ["", "[databases]", "%s = %s" % (DB, up), "%s = %s pool_size=%d" % (ONE_POOL, up, 100)]
        lines += ["b%02d = %s pool_size=2" % (i, up) for i in range(MANY_POOLS)] + [""]
        with open(self.ini, "w") as f:
            f.write("\n".join(lines))
        with open(self.userlist, "w") as f:
            # one SCRAM verifier (what pg_authid holds) and one plain password
            f.write('"%s" "%s"\n"%s" "%s"\n' % (BENCH_USER, self.secret, PLAIN_USER, BENCH_PASS))
        for p in (self.workdir, self.ini, self.userlist):
            chown_user(p)
        os.chmod(self.userlist, 0o600)

    def start(self):
        assert self.proc is None or self.proc.poll() is not None
        self.write_files()
        for p in (self.logfile,):
            if os.path.exists(p):
                os.unlink(p)
        out = open(self.stdout, "ab")
        try:
            self.proc = subprocess.Popen(["taskset", "-c", POOLER_CPU, self.binary, self.ini],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.workdir, start_new_session=True, **as_user_kw())
        finally:
            out.close()

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s:\n%s" % (self.kind, self.proc.returncode, self.log_tail()))
            return port_accepts(self.port)
        wait_for(up, 30, "%s on port %d" % (self.kind, self.port))
        exe = os.readlink("/proc/%d/exe" % self.proc.pid)
        if os.path.realpath(exe) != os.path.realpath(self.binary):
            raise RuntimeError("pid %d runs %s, not %s" % (self.proc.pid, exe, self.binary))
        self.nofile = proc_nofile(self.proc.pid)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def log_tail(self, n=30):
        out = []
        for p in (self.stdout, self.logfile):
            try:
                with open(p, errors="replace") as f:
                    out.append("".join(f.readlines()[-n:]))
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        # Immediate shutdown: SIGQUIT for tokenbouncer (PgBouncer 1.23+ semantics, where SIGTERM
        # waits for clients); Debian's PgBouncer 1.18 still exits at once on SIGTERM.
        sig = signal.SIGTERM if self.kind == "pgbouncer" else signal.SIGQUIT
        stop_proc(self.proc, [(sig, 15), (signal.SIGKILL, 10)], self.kind)

    def version(self):
        r = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).splitlines()[0].strip()


# --------------------------------------------------------------------------- pgbench workloads
def workloads():
    w = []
    for mode in ("simple", "extended"):
        for c in (10, 50, 200):
            w.append(dict(name="select-only %s, %d clients" % (mode, c), key="S-%s-%d" % (mode, c),
                          args=["-S", "-M", mode, "-c", str(c), "-j", "1" if c <= 10 else "2"],
                          select_only=True))
    w.append(dict(name="select-only, new connection per tx (-C), 10 clients", key="S-connect-10",
                  args=["-S", "-C", "-M", "simple", "-c", "10", "-j", "1"], select_only=True))
    w.append(dict(name="TPC-B-like, 20 clients", key="tpcb-20",
                  args=["-M", "simple", "-c", "20", "-j", "1"], select_only=False, writes=True))
    # tbload (bench/tbload.c): every client loops SELECT 1; pgbench cannot keep thousands busy on a core
    for c in (1000, 10000):
        w.append(dict(name="SELECT 1 loop, %d active clients (tbload)" % c, key="L-loop-%d" % c,
                      tbload=dict(clients=c, dbs=[DB])))
    w.append(dict(name="SELECT 1 loop, 1,000 clients in one pool of 100 (tbload)", key="P-1pool-1000",
                  tbload=dict(clients=1000, dbs=[ONE_POOL])))
    w.append(dict(name="SELECT 1 loop, 1,000 clients in %d pools of 2 (tbload)" % MANY_POOLS,
                  key="P-%dpools-1000" % MANY_POOLS,
                  tbload=dict(clients=1000, dbs=["b%02d" % i for i in range(MANY_POOLS)])))
    for kind, user in (("verifier", BENCH_USER), ("plain", PLAIN_USER)):
        w.append(dict(name="login storm, 5,000 SCRAM logins, %s in the userlist (tbload; per login)" % (
            "SCRAM verifier" if kind == "verifier" else "plain password"), key="storm-%s-5000" % kind,
            tbload=dict(clients=5000, dbs=[DB], user=user, storm=True)))
    return w


def pgbench_env():
    env = dict(os.environ)
    env.update(PGPASSWORD=BENCH_PASS, PGSSLMODE="disable", PGGSSENCMODE="disable",
               PGCONNECT_TIMEOUT="10")
    return env


def run_pgbench(port, args, duration):
    cmd = ["taskset", "-c", PGBENCH_CPU, PGBENCH, "-n", "-h", "127.0.0.1", "-p", str(port),
           "-U", BENCH_USER, "-T", str(duration)] + args + [DB]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=duration + 120, env=pgbench_env())
    out = r.stdout + r.stderr
    m_tps = re.search(r"^tps = ([0-9.]+)", out, re.M)
    m_tx = re.search(r"number of transactions actually processed: (\d+)", out)
    m_fail = re.search(r"number of failed transactions: (\d+)", out)
    m_lat = re.search(r"latency average = ([0-9.]+) ms", out)
    if r.returncode != 0 or not m_tps or not m_tx:
        raise RuntimeError("pgbench failed (rc=%d): %s\n%s" % (r.returncode, " ".join(cmd), out[-3000:]))
    return dict(tps=float(m_tps.group(1)), tx=int(m_tx.group(1)),
                failed=int(m_fail.group(1)) if m_fail else 0,
                latency_ms=float(m_lat.group(1)) if m_lat else None)


def tbload_path():
    return os.path.join(REPO, "build-bench", "tbload")


def ensure_tbload():
    src = os.path.join(REPO, "bench", "tbload.c")
    out = tbload_path()
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
        return out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run(["cc", "-O2", "-Wall", "-o", out, src, "-lcrypto"], check=True, timeout=300)
    return out


def run_tbload(pooler, spec, duration, timeout=300, extra=()):
    """One tbload run pinned to the client core. It reads the pooler's CPU itself, around exactly the
    login phase and the query loop, so neither phase is charged to the other."""
    cmd = ["taskset", "-c", PGBENCH_CPU, tbload_path(), "-p", str(pooler.port), "-U", spec.get("user", BENCH_USER),
           "-w", BENCH_PASS, "-d", ",".join(spec["dbs"]), "-c", str(spec["clients"]), "-T", str(duration),
           "-C", str(spec.get("connects", 100)), "-m", "storm" if spec.get("storm") else "loop",
           "-t", str(timeout), "-P", str(pooler.pid)] + list(extra)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout * 2 + 60)
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("tbload failed (rc=%d): %s\n%s" % (r.returncode, " ".join(cmd), (r.stdout + r.stderr)[-3000:]))
    if res["failed"]:
        raise RuntimeError("tbload: %d of %d clients failed (%s): %s" % (
            res["failed"], res["clients"], res["first_error"], " ".join(cmd)))
    return res


def measured_tbload(pooler, wl, duration):
    load = loadavg()[0]
    spec = wl["tbload"]
    t = run_tbload(pooler, spec, duration)
    if pooler.proc.poll() is not None:
        raise RuntimeError("%s died during %s:\n%s" % (pooler.kind, wl["key"], pooler.log_tail()))
    if spec.get("storm"):
        # one "transaction" = one login and its first query; wall = until every client has run it
        user, sys_, n, wall = t["login_user_s"], t["login_sys_s"], t["logged_in"], t["login_s"]
    else:
        user, sys_, n, wall = t["run_user_s"], t["run_sys_s"], t["tx"], t["run_s"]
    cpu_us = (user + sys_) * 1e6
    return dict(tps=n / wall if wall else 0, tx=n, failed=t["failed"], latency_ms=None,
                cpu_ticks=round(cpu_us * CLK_TCK / 1e6), utime_ticks=round(user * CLK_TCK),
                stime_ticks=round(sys_ * CLK_TCK), cpu_us=cpu_us, wall_s=round(wall, 2), load1=load,
                cpu_us_per_tx=cpu_us / n if n else None, pooler_cpu_util=cpu_us / 1e6 / wall if wall else None,
                login_s=t["login_s"], logged_in=t["logged_in"],
                login_cpu_us_per_client=(t["login_user_s"] + t["login_sys_s"]) * 1e6 / max(t["logged_in"], 1))


def measured_run(pooler, wl, duration):
    if wl.get("tbload"):
        return measured_tbload(pooler, wl, duration)
    load = loadavg()[0]
    u0, s0 = proc_cpu_ticks(pooler.pid)
    t0 = time.monotonic()
    res = run_pgbench(pooler.port, wl["args"], duration)
    wall = time.monotonic() - t0
    u1, s1 = proc_cpu_ticks(pooler.pid)
    if pooler.proc.poll() is not None:
        raise RuntimeError("%s died during %s:\n%s" % (pooler.kind, wl["key"], pooler.log_tail()))
    ticks = (u1 - u0) + (s1 - s0)
    cpu_us = ticks * 1e6 / CLK_TCK
    res.update(cpu_ticks=ticks, utime_ticks=u1 - u0, stime_ticks=s1 - s0, cpu_us=cpu_us,
               wall_s=round(wall, 2), load1=load,
               cpu_us_per_tx=cpu_us / res["tx"] if res["tx"] else None,
               pooler_cpu_util=cpu_us / 1e6 / wall if wall > 0 else None)
    return res


def profile(pooler, wl, duration, basedir):
    """perf record -g on the pooler during one (unmeasured) run; returns the top of perf report."""
    data = os.path.join(basedir, "perf-%s.data" % pooler.kind)
    rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-g", "-o", data,
                            "-p", str(pooler.pid)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        if wl.get("tbload"):
            res = run_tbload(pooler, wl["tbload"], duration)
        else:
            res = run_pgbench(pooler.port, wl["args"], duration)
    finally:
        stop_proc(rec, [(signal.SIGINT, 30), (signal.SIGKILL, 10)], "perf record")
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                          "-g", "none", "--percent-limit", "0.3"], capture_output=True, text=True, timeout=300)
    lines = [re.sub(r"[\s-]+$", "", l) for l in rep.stdout.splitlines() if l.strip() and not l.startswith("#")]
    user = [l for l in lines if "[kernel" not in l]
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso",
                          "-g", "none"], capture_output=True, text=True, timeout=300)
    dsos = [re.sub(r"[\s-]+$", "", l) for l in rep.stdout.splitlines() if l.strip() and not l.startswith("#")]
    log("perf %s (%s, %.0f tps):\n  %s" % (pooler.kind, wl["key"], res["tps"], "\n  ".join(lines[:25])))
    # second unmeasured run: system calls and context switches per transaction (tracepoints)
    per_tx = perf_stat(pooler, wl, duration, basedir)
    return dict(workload=wl["key"], tps=res["tps"], top=lines[:40], top_user=user[:25], dsos=dsos[:8],
                per_tx=per_tx)


def perf_stat(pooler, wl, duration, basedir):
    """System calls and context switches per transaction of the pooler during one unmeasured run
    (perf stat on tracepoints). With tbload, only the query loop is counted: perf attaches after the
    clients logged in (tbload prints nothing until the end, so the loop is timed by its -T)."""
    events = ["raw_syscalls:sys_enter", "context-switches"] + ["syscalls:sys_enter_" + n for n in SYSCALLS]
    out = os.path.join(basedir, "perf-stat-%s-%s.txt" % (pooler.kind, wl["key"]))
    if wl.get("tbload"):
        res2 = perf_stat_tbload(pooler, wl, duration, events, out)
    else:
        st = subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-e", ",".join(events), "-p", str(pooler.pid)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            res2 = run_pgbench(pooler.port, wl["args"], duration)
        finally:
            stop_proc(st, [(signal.SIGINT, 30), (signal.SIGKILL, 10)], "perf stat")
    per_tx = {}
    try:
        with open(out) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[0].replace(".", "").isdigit():
                    name = parts[2].replace("syscalls:sys_enter_", "").replace("raw_syscalls:sys_enter", "all syscalls")
                    per_tx[name] = round(float(parts[0]) / max(res2["tx"], 1), 2)
    except OSError:
        pass
    log("perf stat %s %s: per transaction %s" % (pooler.kind, wl["key"], per_tx))
    return per_tx


def perf_stat_tbload(pooler, wl, duration, events, out):
    """Loop workloads: tbload starts perf stat (-X) when its query loop starts and waits for it, so the
    counts cover the loop only; the transactions are the loop's own. Storms: perf stat runs around the
    whole storm, and one "transaction" is one login with its first query."""
    if wl["tbload"].get("storm"):
        st = subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-e", ",".join(events), "-p", str(pooler.pid)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            res = run_tbload(pooler, wl["tbload"], duration)
        finally:
            stop_proc(st, [(signal.SIGINT, 30), (signal.SIGKILL, 10)], "perf stat")
        return dict(tx=res["logged_in"])
    perf = "perf stat -x , -o %s -e %s -p %d -- sleep %d" % (out, ",".join(events), pooler.pid, duration)
    res = run_tbload(pooler, wl["tbload"], duration, extra=["-X", perf])
    return dict(tx=res["tx"])


SYSCALLS = ["epoll_wait", "epoll_pwait", "epoll_ctl", "recvfrom", "sendto", "read", "write", "readv", "writev",
            "clock_gettime", "accept", "accept4", "close", "setsockopt", "getsockname", "getpeername",
            "getrandom", "fcntl", "socket", "connect", "brk", "mmap", "munmap"]


# --------------------------------------------------------------------------- raw asyncio client
def _msg(t, payload):
    return t + struct.pack("!I", len(payload) + 4) + payload


def _startup(user, db):
    body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
    return struct.pack("!I", len(body) + 4) + body


IDLE_SETTLE_S = 3.0
QUERY = _msg(b"Q", b"SELECT 1\0")
TERMINATE = _msg(b"X", b"")
_salted_cache = {}


class LoginError(Exception):
    pass


async def _read_msg(reader):
    hdr = await reader.readexactly(5)
    n = struct.unpack("!I", hdr[1:5])[0]
    body = await reader.readexactly(n - 4) if n > 4 else b""
    return hdr[:1], body


def _hmac(k, m):
    return hmac.new(k, m, hashlib.sha256).digest()


async def scram_login(port, user, password, db, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(_startup(user, db))
        cnonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=,r=" + cnonce
        auth_msg = None
        server_sig = None
        while True:
            t, body = await asyncio.wait_for(_read_msg(reader), timeout)
            if t == b"E":
                raise LoginError(body.decode(errors="replace"))
            if t == b"R":
                code = struct.unpack("!I", body[:4])[0]
                if code == 10:       # AuthenticationSASL
                    first = ("n,," + first_bare).encode()
                    writer.write(_msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
                elif code == 11:     # SASLContinue: server-first
                    sfirst = body[4:].decode()
                    attrs = dict(kv.split("=", 1) for kv in sfirst.split(","))
                    salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
                    key = (salt, iters)
                    if key not in _salted_cache:
                        _salted_cache[key] = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
                    salted = _salted_cache[key]
                    without_proof = "c=biws,r=" + attrs["r"]
                    auth_msg = ("%s,%s,%s" % (first_bare, sfirst, without_proof)).encode()
                    ckey = _hmac(salted, b"Client Key")
                    csig = _hmac(hashlib.sha256(ckey).digest(), auth_msg)
                    proof = bytes(a ^ b for a, b in zip(ckey, csig))
                    server_sig = _hmac(_hmac(salted, b"Server Key"), auth_msg)
                    writer.write(_msg(b"p", (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()))
                elif code == 12:     # SASLFinal
                    if body[4:].decode() != "v=" + base64.b64encode(server_sig).decode():
                        raise LoginError("bad server signature")
                elif code == 0:
                    pass
                else:
                    raise LoginError("unsupported auth request %d" % code)
            elif t == b"Z":
                return reader, writer
    except BaseException:
        writer.close()
        raise


async def query_once(reader, writer, timeout):
    writer.write(QUERY)
    err = False
    while True:
        t, body = await asyncio.wait_for(_read_msg(reader), timeout)
        if t == b"E":
            err = True
        elif t == b"Z":
            return not err


async def memory_measure(pooler, n, active_s, login_concurrency=64, timeout=60):
    """Fresh pooler already started. Returns dict with baseline/idle/active RSS and counts."""
    pid = pooler.pid
    res = dict(clients=n)
    # warm-up: fill the server pool (40 clients looping for 1 s) so baseline includes the 20 servers
    warm = [await scram_login(pooler.port, BENCH_USER, BENCH_PASS, DB, timeout) for _ in range(40)]
    wdeadline = time.monotonic() + 1.0

    async def warm_loop(rw):
        for _ in range(100000):
            if time.monotonic() >= wdeadline:
                break
            await query_once(*rw, timeout)
    await asyncio.wait_for(asyncio.gather(*(warm_loop(rw) for rw in warm)), timeout)
    for r, w in warm:
        w.write(TERMINATE)
        w.close()
    await asyncio.sleep(1.0)
    res["baseline_kb"] = max(proc_rss_kb(pid) for _ in range(3))

    # open n clients (logged in, no query)
    sem = asyncio.Semaphore(login_concurrency)
    conns, errors = [], []

    async def one():
        async with sem:
            try:
                conns.append(await scram_login(pooler.port, BENCH_USER, BENCH_PASS, DB, timeout))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, LoginError) as e:
                errors.append(repr(e)[:200])
    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), timeout + n / 50)
    res["login_s"] = round(time.monotonic() - t0, 2)
    res["logged_in"] = len(conns)
    res["login_errors"] = len(errors)
    res["login_error_sample"] = errors[:3]
    # idle = logged in and quiet for IDLE_SETTLE_S: longer than any "trim buffers of connections
    # idle for a while" delay a pooler may have (tokenbouncer's janitor: 1 s, checked every 0.25 s)
    await asyncio.sleep(IDLE_SETTLE_S)
    samples = []
    for _ in range(5):
        samples.append(proc_rss_kb(pid))
        await asyncio.sleep(0.1)
    res["idle_kb"] = max(samples)
    res["held_idle"] = sum(1 for r, w in conns if not r.at_eof() and not w.is_closing())

    # active: every client runs a SELECT 1 loop for active_s seconds
    deadline = time.monotonic() + active_s
    done = {"q": 0, "err": 0, "clients_with_query": 0}
    rss_active = []
    stop_sampling = threading.Event()

    def sampler():
        # a thread, so that 10,000 busy coroutines cannot starve it; bounded by count and the event
        for _ in range(int((active_s + timeout) * 50)):
            try:
                rss_active.append(proc_rss_kb(pid))
            except (OSError, RuntimeError):
                return
            if stop_sampling.wait(0.02):
                return

    async def loop(rw):
        k = 0
        try:
            for _ in range(1000000):
                if k and time.monotonic() >= deadline:   # every client runs at least one query
                    break
                ok = await query_once(*rw, timeout)
                k += 1
                done["q"] += 1
                if not ok:
                    done["err"] += 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            done["err"] += 1
        if k:
            done["clients_with_query"] += 1
    st = threading.Thread(target=sampler, daemon=True)
    st.start()
    cpu0 = sum(proc_cpu_ticks(pid))
    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(loop(rw) for rw in conns)), active_s + timeout)
    res["active_wall_s"] = round(time.monotonic() - t0, 2)
    res["active_cpu_ticks"] = sum(proc_cpu_ticks(pid)) - cpu0
    res["active_cpu_us_per_query"] = (res["active_cpu_ticks"] * 1e6 / CLK_TCK / done["q"]) if done["q"] else None
    stop_sampling.set()
    st.join(5)
    res["hwm_kb"] = proc_status_kb(pid, "VmHWM")
    res["active_kb"] = max(rss_active) if rss_active else None
    res["active_samples"] = len(rss_active)
    res["active_queries"] = done["q"]
    res["active_errors"] = done["err"]
    res["active_clients_with_query"] = done["clients_with_query"]
    res["held_active"] = sum(1 for r, w in conns if not r.at_eof() and not w.is_closing())
    for r, w in conns:
        try:
            w.write(TERMINATE)
        except Exception:
            pass
        w.close()
    await asyncio.sleep(0.5)
    if res["logged_in"]:
        res["idle_bytes_per_client"] = (res["idle_kb"] - res["baseline_kb"]) * 1024 / res["logged_in"]
        res["active_bytes_per_client"] = (res["active_kb"] - res["baseline_kb"]) * 1024 / res["logged_in"]
    return res


# --------------------------------------------------------------------------- summary
def ratio_stats(per_round):
    """per_round: list of (tb, pb). -> dict(tb, pb, ratio=median of per-round ratios, lo, hi)."""
    rs = [a / b for a, b in per_round if a is not None and b]
    if not rs:
        return None
    return dict(tb=statistics.mean(a for a, _ in per_round), pb=statistics.mean(b for _, b in per_round),
                ratio=statistics.median(rs), lo=min(rs), hi=max(rs), n=len(rs))


def fmt_num(v, digits=0):
    if v is None:
        return "–"
    if digits == 0:
        return "{:,.0f}".format(v)
    return "{:,.{d}f}".format(v, d=digits)


def fmt_ratio(s):
    if s is None:
        return "–"
    if s["n"] == 1:
        return "%.2f" % s["ratio"]
    return "%.2f (%.2f–%.2f)" % (s["ratio"], s["lo"], s["hi"])


def summarise(raw):
    summary = {"workloads": {}, "memory": {}}
    for wl in raw["workloads"]:
        key = wl["key"]
        runs = raw["runs"].get(key, [])
        per_round_tps, per_round_cpu = [], []
        for rnd in sorted(set(r["round"] for r in runs)):
            tb = [r for r in runs if r["round"] == rnd and r["pooler"] == "tokenbouncer"]
            pb = [r for r in runs if r["round"] == rnd and r["pooler"] == "pgbouncer"]
            if not tb or not pb:
                continue
            per_round_tps.append((statistics.mean(r["tps"] for r in tb), statistics.mean(r["tps"] for r in pb)))
            per_round_cpu.append((statistics.mean(r["cpu_us_per_tx"] for r in tb),
                                  statistics.mean(r["cpu_us_per_tx"] for r in pb)))
        summary["workloads"][key] = dict(tps=ratio_stats(per_round_tps), cpu=ratio_stats(per_round_cpu))
    for n, meas in raw["memory"].items():
        out = {}
        for field in ("idle_bytes_per_client", "active_bytes_per_client", "active_cpu_us_per_query"):
            per_round = []
            for rnd in sorted(set(m["round"] for m in meas)):
                tb = [m[field] for m in meas if m["round"] == rnd and m["pooler"] == "tokenbouncer"
                      and m.get(field) is not None]
                pb = [m[field] for m in meas if m["round"] == rnd and m["pooler"] == "pgbouncer"
                      and m.get(field) is not None]
                if tb and pb:
                    per_round.append((statistics.mean(tb), statistics.mean(pb)))
            out[field] = ratio_stats(per_round)
        for p in ("tokenbouncer", "pgbouncer"):
            ms = [m for m in meas if m["pooler"] == p]
            out["held_" + p] = min((min(m["held_idle"], m["held_active"]) for m in ms), default=None)
            out["active_clients_with_query_" + p] = min((m["active_clients_with_query"] for m in ms), default=None)
        summary["memory"][n] = out
    return summary


def render_markdown(raw, summary):
    m = raw["machine"]
    cfg = raw["config"]
    L = []
    L.append("# tokenbouncer vs PgBouncer — %s%s" % (raw["date"], " (quick smoke run)" if cfg["quick"] else ""))
    L.append("")
    L.append("- Machine: %s, %d cores, %s GiB RAM, Linux %s; load average %s at start, %s at end" % (
        m["cpu"], m["cores"], m["mem_gib"], m["kernel"],
        " / ".join("%.2f" % x for x in raw["load_start"]), " / ".join("%.2f" % x for x in raw["load_end"])))
    L.append("- %s (build-bench, `-O2 -g`), %s, %s" % (m["tokenbouncer"], m["pgbouncer"], m["postgres"]))
    L.append("- pgbench on core %s, poolers on core %s, PostgreSQL on core(s) %s; %d round(s) of A B B A "
             "per workload, %d s per run; scale %d; pool size %d, transaction mode, SCRAM-SHA-256" % (
                 PGBENCH_CPU, POOLER_CPU, cfg["pg_cpus"], cfg["rounds"], cfg["duration"], cfg["scale"], POOL_SIZE))
    L.append("- ratio = tokenbouncer / PgBouncer, median of the per-round ratios, (min–max) across rounds; "
             "values are means over all runs")
    L.append("")
    have_tps = any(summary["workloads"].get(w["key"], {}).get("tps") for w in raw["workloads"])
    if have_tps:
        L += render_tps(raw, summary)
        L += render_logins(raw, summary)
    if raw["memory"]:
        L += render_memory(raw, summary)
    L += render_targets(raw, summary)
    if raw.get("syscalls"):
        L += render_syscalls(raw)
    if raw.get("perf"):
        L.append("## Profile (perf record -g, cpu-clock, %s)" % next(iter(raw["perf"].values()))["workload"])
        L.append("")
        names = []
        for pr in raw["perf"].values():
            names += [n for n, v in pr.get("per_tx", {}).items() if v and n not in names]
        if names:
            L.append("System calls and context switches per transaction (perf stat, one more run each):")
            L.append("")
            L.append("| | " + " | ".join(names) + " |")
            L.append("|---|" + "--:|" * len(names))
            for kind, pr in raw["perf"].items():
                L.append("| %s | %s |" % (kind, " | ".join("%.2f" % pr.get("per_tx", {}).get(n, 0) for n in names)))
            L.append("")
        for kind, pr in raw["perf"].items():
            L.append("%s:" % kind)
            L.append("")
            L.append("```")
            L += pr.get("dsos", [])
            L.append("")
            L += pr["top"][:12]
            L.append("   user space:")
            L += pr.get("top_user", [])[:15]
            L.append("```")
            L.append("")
    return "\n".join(L)


def render_syscalls(raw):
    L = ["## System calls per transaction (perf stat, one extra run per workload)", ""]
    names = ["all syscalls", "epoll_wait", "epoll_ctl", "recvfrom", "sendto", "read", "write", "context-switches"]
    L.append("| workload | pooler | " + " | ".join(names) + " |")
    L.append("|---|---|" + "--:|" * len(names))
    for key, per in raw["syscalls"].items():
        for kind, per_tx in per.items():
            L.append("| %s | %s | %s |" % (key, kind, " | ".join("%.2f" % per_tx.get(n, 0) for n in names)))
    L.append("")
    return L


def render_logins(raw, summary):
    L = []
    storms = [w for w in raw["workloads"] if w.get("tbload", {}).get("storm") and raw["runs"].get(w["key"])]
    loops = [w for w in raw["workloads"] if w.get("tbload") and not w["tbload"].get("storm")
             and raw["runs"].get(w["key"])]
    if not storms and not loops:
        return L
    L.append("## Logins (tbload)")
    L.append("")
    L.append("Storm rows: every client connects at once (100 connects in flight), logs in with SCRAM and runs one "
             "query; time until all have, and pooler CPU per login (its first query included). Loop rows: the "
             "login phase before the query loop.")
    L.append("")
    L.append("| workload | login time tokenbouncer | login time PgBouncer | CPU µs/login tokenbouncer "
             "| CPU µs/login PgBouncer | CPU ratio (min–max) |")
    L.append("|---|--:|--:|--:|--:|--:|")
    for wl in storms + loops:
        runs = raw["runs"][wl["key"]]
        per_round = []
        for rnd in sorted(set(r["round"] for r in runs)):
            tb = [r["login_cpu_us_per_client"] for r in runs if r["round"] == rnd and r["pooler"] == "tokenbouncer"]
            pb = [r["login_cpu_us_per_client"] for r in runs if r["round"] == rnd and r["pooler"] == "pgbouncer"]
            if tb and pb:
                per_round.append((statistics.mean(tb), statistics.mean(pb)))
        st = ratio_stats(per_round)

        def mean_of(kind, field):
            v = [r[field] for r in runs if r["pooler"] == kind]
            return statistics.mean(v) if v else None
        L.append("| %s | %s s | %s s | %s | %s | %s |" % (
            wl["key"], fmt_num(mean_of("tokenbouncer", "login_s"), 2), fmt_num(mean_of("pgbouncer", "login_s"), 2),
            fmt_num(mean_of("tokenbouncer", "login_cpu_us_per_client"), 1),
            fmt_num(mean_of("pgbouncer", "login_cpu_us_per_client"), 1), fmt_ratio(st)))
    L.append("")
    return L


def split_us(raw, key, pooler, field):
    runs = [r for r in raw["runs"].get(key, []) if r["pooler"] == pooler]
    if not runs:
        return None
    return statistics.mean(r[field] * 1e6 / CLK_TCK / r["tx"] for r in runs)


def render_tps(raw, summary):
    L = []
    L.append("## Throughput and pooler CPU")
    L.append("")
    L.append("| workload | TPS tokenbouncer | TPS PgBouncer | TPS ratio | CPU µs/tx tokenbouncer "
             "| CPU µs/tx PgBouncer | CPU ratio |")
    L.append("|---|--:|--:|--:|--:|--:|--:|")
    for wl in raw["workloads"]:
        s = summary["workloads"].get(wl["key"]) or {}
        t, c = s.get("tps"), s.get("cpu")
        if not t:
            continue
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            wl["name"], fmt_num(t and t["tb"]), fmt_num(t and t["pb"]), fmt_ratio(t),
            fmt_num(c and c["tb"], 1), fmt_num(c and c["pb"], 1), fmt_ratio(c)))
    L.append("")
    L.append("Pooler CPU split, µs per transaction in user / kernel mode, and the pooler's share of core 1:")
    L.append("")
    L.append("| workload | tokenbouncer user / sys | PgBouncer user / sys | core 1 busy tokenbouncer / PgBouncer |")
    L.append("|---|--:|--:|--:|")
    for wl in raw["workloads"]:
        k = wl["key"]
        if not raw["runs"].get(k):
            continue
        util = {}
        for p in ("tokenbouncer", "pgbouncer"):
            rs = [r["pooler_cpu_util"] for r in raw["runs"][k] if r["pooler"] == p]
            util[p] = "%.0f%%" % (100 * statistics.mean(rs)) if rs else "–"
        L.append("| %s | %s / %s | %s / %s | %s / %s |" % (
            k, fmt_num(split_us(raw, k, "tokenbouncer", "utime_ticks"), 1),
            fmt_num(split_us(raw, k, "tokenbouncer", "stime_ticks"), 1),
            fmt_num(split_us(raw, k, "pgbouncer", "utime_ticks"), 1),
            fmt_num(split_us(raw, k, "pgbouncer", "stime_ticks"), 1), util["tokenbouncer"], util["pgbouncer"]))
    L.append("")
    return L


def render_memory(raw, summary):
    L = []
    if raw["memory"]:
        L.append("## Memory (VmRSS above baseline, per client)")
        L.append("")
        L.append("| clients | state | bytes/client tokenbouncer | bytes/client PgBouncer | ratio | held (tb / pgb) |")
        L.append("|--:|---|--:|--:|--:|--:|")
        cpu_rows = []
        for n in sorted(summary["memory"], key=int):
            s = summary["memory"][n]
            for field, label in (("idle_bytes_per_client", "idle"), ("active_bytes_per_client", "active")):
                st = s.get(field)
                L.append("| %s | %s | %s | %s | %s | %s / %s |" % (
                    "{:,}".format(int(n)), label, fmt_num(st and st["tb"]), fmt_num(st and st["pb"]),
                    fmt_ratio(st), fmt_num(s["held_tokenbouncer"]), fmt_num(s["held_pgbouncer"])))
            c = s.get("active_cpu_us_per_query")
            if c:
                cpu_rows.append("| %s | %s | %s | %s |" % ("{:,}".format(int(n)), fmt_num(c["tb"], 1),
                                                         fmt_num(c["pb"], 1), fmt_ratio(c)))
        L.append("")
        if cpu_rows:
            L.append("Pooler CPU per query during the active phase (all N clients in a `SELECT 1` loop, "
                     "at most 20 of them holding a server; the Python client limits the rate):")
            L.append("")
            L.append("| clients | CPU µs/query tokenbouncer | CPU µs/query PgBouncer | ratio |")
            L.append("|--:|--:|--:|--:|")
            L += cpu_rows
            L.append("")
    return L


def render_targets(raw, summary):
    L = []
    L.append("## Targets (reported, not asserted)")
    L.append("")
    L.append("| target | result | met |")
    L.append("|---|---|---|")
    for wl in raw["workloads"]:
        s = summary["workloads"].get(wl["key"]) or {}
        if (wl.get("select_only") or wl.get("tbload")) and s.get("cpu"):
            c = s["cpu"]
            # issue 13: <= 0.9 x at 1,000 and 10,000 clients, <= 0.8 x per login in the storms
            goal = 0.8 if wl.get("tbload", {}).get("storm") or not wl.get("tbload") else 0.9
            L.append("| CPU/%s ≤ %.1f × PgBouncer, %s | %s | %s |" % (
                "login" if wl.get("tbload", {}).get("storm") else "tx", goal, wl["key"], fmt_ratio(c),
                "yes" if c["ratio"] <= goal else "no"))
    one, many = summary["workloads"].get("P-1pool-1000"), summary["workloads"].get("P-%dpools-1000" % MANY_POOLS)
    if one and many and one.get("cpu") and many.get("cpu"):
        r = many["cpu"]["tb"] / one["cpu"]["tb"]
        L.append("| CPU/tx of %d pools within 10 %% of one pool (tokenbouncer) | %.2f × | %s |" % (
            MANY_POOLS, r, "yes" if r <= 1.1 else "no"))
    for wl in raw["workloads"]:
        s = summary["workloads"].get(wl["key"]) or {}
        if s.get("tps"):
            t = s["tps"]
            L.append("| TPS ≥ 1.0 × PgBouncer, %s | %s | %s |" % (
                wl["key"], fmt_ratio(t), "yes" if t["ratio"] >= 1.0 else "no"))
    for n in sorted(summary["memory"], key=int):
        st = summary["memory"][n].get("idle_bytes_per_client")
        if st:
            L.append("| idle client ≤ 1 KB RSS (%s clients) | %s bytes | %s |" % (
                "{:,}".format(int(n)), fmt_num(st["tb"]), "yes" if st["tb"] <= 1024 else "no"))
    if "10000" in summary["memory"]:
        h = summary["memory"]["10000"]["held_tokenbouncer"]
        L.append("| 10,000 clients held at once | %s | %s |" % (fmt_num(h), "yes" if h and h >= 10000 else "no"))
    L.append("")
    return L


# --------------------------------------------------------------------------- main
def machine_info(tb_bin, pb_bin):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])

    def first_line(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).splitlines()[0].strip()
        except Exception as e:
            return "? (%s)" % e
    return dict(cpu=cpu, cores=os.cpu_count(), mem_gib=round(mem_kb / 1048576), kernel=platform.release(),
                tokenbouncer=first_line([tb_bin, "--version"]), pgbouncer=first_line([pb_bin, "--version"]),
                postgres=first_line([os.path.join(PG_BIN, "postgres"), "--version"]),
                pgbench=first_line([PGBENCH, "--version"]), clk_tck=CLK_TCK,
                nofile=list(resource.getrlimit(resource.RLIMIT_NOFILE)))


def ensure_binary(path, no_build):
    """The default binary is build-bench/tokenbouncer: configure it once, and `make` it on every run
    (incremental), so that a stale binary is never measured. --no-build skips this."""
    bdir = os.path.join(REPO, "build-bench")
    default = os.path.realpath(path) == os.path.realpath(os.path.join(bdir, "tokenbouncer"))
    if no_build or not default:
        if not os.path.exists(path):
            raise SystemExit("no tokenbouncer binary at %s" % path)
        return
    log("building optimised tokenbouncer in %s" % bdir)
    os.makedirs(bdir, exist_ok=True)
    try:
        if not os.path.exists(os.path.join(bdir, "Makefile")):
            subprocess.run(["../configure", "CFLAGS=-O2 -g"], cwd=bdir, check=True, timeout=600,
                           stdout=sys.stderr)
        subprocess.run(["make", "-j2", "tokenbouncer"], cwd=bdir, check=True, timeout=1800, stdout=sys.stderr)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        if not os.path.exists(path):
            raise SystemExit("building %s failed: %s" % (path, e))
        log("warning: rebuilding failed (%s); measuring the existing %s" % (e, path))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round, 3 s runs, short memory phase")
    ap.add_argument("--rounds", type=int, help="rounds of A B B A per workload (default 3; quick 1)")
    ap.add_argument("--duration", type=int, help="seconds per pgbench run (default 15; quick 3)")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--only", help="comma-separated workload keys to run (default all)")
    ap.add_argument("--mem-clients", default="1000,10000", help="client counts for the memory part")
    ap.add_argument("--mem-rounds", type=int, help="rounds of the memory part (default = rounds)")
    ap.add_argument("--active-seconds", type=float, help="length of the query loop in the memory part")
    ap.add_argument("--no-tps", action="store_true", help="skip the pgbench part")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory part")
    ap.add_argument("--pg-cpus", default=POOLER_CPU,
                    help="CPU list for PostgreSQL (default '1', with the poolers; '0,1' = unpinned)")
    ap.add_argument("--tokenbouncer", default=os.path.join(REPO, "build-bench", "tokenbouncer"))
    ap.add_argument("--pgbouncer", default="/usr/sbin/pgbouncer")
    ap.add_argument("--no-deps", action="store_true", help="do not run scripts/deps.sh")
    ap.add_argument("--no-build", action="store_true", help="do not build build-bench/tokenbouncer if missing")
    ap.add_argument("--outdir", default=os.path.join(REPO, "bench", "results"))
    ap.add_argument("--perf", metavar="WORKLOAD", default="S-simple-10",
                    help="after the measured runs, profile both poolers (perf record -g) during one extra "
                         "run of this workload key (default S-simple-10; 'none' to skip); the top symbols and "
                         "system calls per transaction go into the results")
    ap.add_argument("--syscalls", metavar="KEYS", default="S-simple-10,S-simple-200,L-loop-1000",
                    help="after the measured runs, perf stat the system calls per transaction of both poolers "
                         "during one extra run of each of these workload keys ('none' to skip)")
    ap.add_argument("--update-doc", action="store_true",
                    help="also put the table into doc/benchmarks.md between its <!-- results --> markers")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    a = ap.parse_args()
    rounds = a.rounds or (1 if a.quick else 3)
    duration = a.duration or (3 if a.quick else 15)
    mem_rounds = a.mem_rounds or rounds
    active_s = a.active_seconds or (2.0 if a.quick else 5.0)
    if rounds < 1 or rounds > 50 or duration < 1 or duration > 3600:
        raise SystemExit("rounds must be 1..50 and duration 1..3600 s")

    if os.geteuid() != 0:
        raise SystemExit("run as root (PostgreSQL and PgBouncer are started as the postgres user)")
    if os.cpu_count() < 2:
        raise SystemExit("needs at least 2 cores (pgbench on core 0, poolers on core 1)")
    if not a.no_deps:
        subprocess.run(["bash", os.path.join(REPO, "scripts", "deps.sh")], check=True, timeout=1800,
                       stdout=sys.stderr)
    ensure_binary(a.tokenbouncer, a.no_build)
    ensure_tbload()
    nofile = raise_nofile()
    if nofile[0] < 10000 + 200:
        log("warning: RLIMIT_NOFILE is %r; the 10,000-client memory test needs more" % (nofile,))
    os.sched_setaffinity(0, {int(PGBENCH_CPU)})  # this process (the memory client) shares pgbench's core

    wls = workloads()
    if a.only:
        keys = set(a.only.split(","))
        wls = [w for w in wls if w["key"] in keys]
    mem_levels = [int(x) for x in a.mem_clients.split(",") if x.strip()] if not a.no_memory else []

    date = datetime.datetime.now().strftime("%Y-%m-%d")
    raw = dict(date=date, started=datetime.datetime.now().isoformat(timespec="seconds"),
               load_start=loadavg(), machine=machine_info(a.tokenbouncer, a.pgbouncer),
               config=dict(quick=a.quick, rounds=rounds, duration=duration, scale=a.scale,
                           pg_cpus=a.pg_cpus, pgbench_cpu=PGBENCH_CPU, pooler_cpu=POOLER_CPU,
                           pool_size=POOL_SIZE, max_client_conn=MAX_CLIENT_CONN, mem_rounds=mem_rounds,
                           mem_clients=mem_levels, active_seconds=active_s,
                           order="A B B A per round (A = tokenbouncer, B = PgBouncer)"),
               workloads=wls, runs={}, memory={}, pooler_settings={})
    log("load average at start: %s" % raw["load_start"])

    basedir = tempfile.mkdtemp(prefix="tbbench")
    os.chmod(basedir, 0o755)
    pg = None
    poolers = {}

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    try:
        pg = Postgres(basedir, a.pg_cpus).init().start()
        log("postgres up on port %d (cpus %s)" % (pg.port, a.pg_cpus))
        pg.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (BENCH_USER, BENCH_PASS))
        pg.psql("CREATE DATABASE %s OWNER %s" % (DB, BENCH_USER))
        secret = pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % BENCH_USER)
        assert secret.startswith("SCRAM-SHA-256$"), secret
        log("pgbench -i -s %d" % a.scale)
        r = subprocess.run([PGBENCH, "-i", "-q", "-s", str(a.scale), "-h", "127.0.0.1", "-p", str(pg.port),
                            "-U", BENCH_USER, DB], capture_output=True, text=True, timeout=1200, env=pgbench_env())
        if r.returncode != 0:
            raise RuntimeError("pgbench -i failed:\n" + r.stdout + r.stderr)
        pg.psql("VACUUM ANALYZE", db=DB)
        pg.psql("CHECKPOINT")

        poolers = {"tokenbouncer": Pooler("tokenbouncer", a.tokenbouncer, basedir, pg, secret),
                   "pgbouncer": Pooler("pgbouncer", a.pgbouncer, basedir, pg, secret)}
        for p in poolers.values():
            raw["pooler_settings"][p.kind] = dict((k, str(v)) for k, v in p.settings()
                                                  if k not in ("logfile", "pidfile", "auth_file", "listen_port"))
        order = ["tokenbouncer", "pgbouncer", "pgbouncer", "tokenbouncer"]

        if wls and not a.no_tps:
            for p in poolers.values():
                p.start()
                log("%s up on port %d, pid %d, RLIMIT_NOFILE %s" % (p.kind, p.port, p.pid, p.nofile))
                raw["pooler_settings"][p.kind]["nofile_soft_hard"] = p.nofile
                run_pgbench(p.port, ["-S", "-c", "20", "-j", "1"], 2)  # warm-up: fill the pool
            total = len(wls) * rounds * 4
            k = 0
            for rnd in range(1, rounds + 1):
                for wl in wls:
                    for kind in order:
                        k += 1
                        if wl.get("writes"):
                            # outside the timed window, straight on PostgreSQL: keep the write workload
                            # from slowing down run after run as dead rows pile up (autovacuum is off)
                            for q in ("VACUUM pgbench_branches", "VACUUM pgbench_tellers",
                                      "TRUNCATE pgbench_history"):
                                pg.psql(q, db=DB)
                        res = measured_run(poolers[kind], wl, duration)
                        res.update(round=rnd, pooler=kind)
                        raw["runs"].setdefault(wl["key"], []).append(res)
                        log("[%d/%d] round %d %-16s %-12s tps %9.1f  cpu %6.2f us/tx  load %.2f" % (
                            k, total, rnd, wl["key"], kind, res["tps"], res["cpu_us_per_tx"], res["load1"]))
                        time.sleep(0.5)
            if a.syscalls and a.syscalls != "none" and shutil.which("perf"):
                raw["syscalls"] = {}
                for key in a.syscalls.split(","):
                    wl = [w for w in workloads() if w["key"] == key][0]
                    for kind in ("tokenbouncer", "pgbouncer"):
                        raw["syscalls"].setdefault(key, {})[kind] = perf_stat(poolers[kind], wl, duration, basedir)
            if a.perf and a.perf != "none" and shutil.which("perf"):
                wl = [w for w in workloads() if w["key"] == a.perf][0]
                raw["perf"] = {}
                for kind in ("tokenbouncer", "pgbouncer"):
                    raw["perf"][kind] = profile(poolers[kind], wl, duration, basedir)
            for p in poolers.values():
                p.stop()

        for n in mem_levels:
            meas = raw["memory"].setdefault(str(n), [])
            for rnd in range(1, mem_rounds + 1):
                for kind in order:
                    p = poolers[kind]
                    p.start()
                    try:
                        res = asyncio.run(memory_measure(p, n, active_s))
                    finally:
                        p.stop()
                    res.update(round=rnd, pooler=kind)
                    meas.append(res)
                    log("memory n=%d round %d %-12s logged in %d (%.1fs), baseline %d kB, idle %.0f B/client, "
                        "active %.0f B/client, clients with a query %d, errors %d" % (
                            n, rnd, kind, res["logged_in"], res["login_s"], res["baseline_kb"],
                            res.get("idle_bytes_per_client", -1), res.get("active_bytes_per_client", -1),
                            res["active_clients_with_query"], res["active_errors"] + res["login_errors"]))
    finally:
        for p in poolers.values():
            try:
                p.stop()
            except Exception as e:
                log("stopping %s: %r" % (p.kind, e))
        if pg:
            pg.stop()
        if a.keep:
            log("kept %s" % basedir)
        else:
            shutil.rmtree(basedir, ignore_errors=True)

    raw["load_end"] = loadavg()
    raw["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    log("load average at end: %s" % raw["load_end"])
    summary = summarise(raw)
    raw["summary"] = summary
    md = render_markdown(raw, summary)
    print(md)
    os.makedirs(a.outdir, exist_ok=True)
    stem = base = os.path.join(a.outdir, date + ("-quick" if a.quick else ""))
    for i in range(2, 1000):   # never overwrite an earlier run of the same day
        if not os.path.exists(stem + ".json"):
            break
        stem = "%s-%d" % (base, i)
    with open(stem + ".md", "w") as f:
        f.write(md + "\n")
    with open(stem + ".json", "w") as f:
        json.dump(raw, f, indent=1, sort_keys=True)
        f.write("\n")
    log("wrote %s.md and %s.json" % (stem, stem))
    if a.update_doc:
        update_doc(md, os.path.relpath(stem, REPO))


def update_doc(md, stem):
    path = os.path.join(REPO, "doc", "benchmarks.md")
    with open(path) as f:
        doc = f.read()
    start, end = "<!-- results -->", "<!-- /results -->"
    if start not in doc or end not in doc:
        log("doc/benchmarks.md has no results markers; not updated")
        return
    body = re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", md, flags=re.M)
    body += "\nRaw numbers: `%s.json`.\n" % stem
    head, rest = doc.split(start, 1)
    tail = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(head + start + "\n" + body + end + tail)
    log("updated doc/benchmarks.md")


if __name__ == "__main__":
    main()
