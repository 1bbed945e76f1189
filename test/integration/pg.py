"""A throwaway PostgreSQL 15 server for the integration tests.

initdb and postgres refuse to run as root, so both run as the unprivileged `postgres` system user
(Debian's postgresql package creates it); the postgres binary is the direct child of this process
(Popen with user=), so self.proc.pid is the real postmaster PID.
"""
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import psycopg
from psycopg import sql as pgsql

from util import free_port, wait_for

PG_BIN = os.environ.get("TB_PG_BIN", "/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
SUPERPASS = "Super-Pw-5c1e9d"


class PgServer:
    def __init__(self, certs=None, port=None, basedir=None, run_user="postgres", ssl=True):
        self.certs = certs
        self.port = port or free_port()
        self.run_user = run_user
        self.ssl = ssl and certs is not None
        self.basedir = basedir or tempfile.mkdtemp(prefix="tbpg")
        self._own_basedir = basedir is None
        self.datadir = os.path.join(self.basedir, "data")
        self.sockdir = os.path.join(self.basedir, "sock")
        self.logpath = os.path.join(self.basedir, "postgres.log")
        self.proc = None
        self.host = "127.0.0.1"
        pw = pwd.getpwnam(run_user)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    # ---------------------------------------------------------------- lifecycle
    def _as_user(self):
        if os.geteuid() == 0:
            return dict(user=self.uid, group=self.gid, extra_groups=[])
        return {}

    def init(self):
        os.chmod(self.basedir, 0o755)
        os.makedirs(self.sockdir, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.sockdir, self.uid, self.gid)
        pwfile = os.path.join(self.basedir, "pwfile")
        with open(pwfile, "w") as f:
            f.write(SUPERPASS + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, self.uid, self.gid)
        os.chmod(pwfile, 0o600)
        os.makedirs(self.datadir, mode=0o700)
        if os.geteuid() == 0:
            os.chown(self.datadir, self.uid, self.gid)
        res = subprocess.run(
            [os.path.join(PG_BIN, "initdb"), "-D", self.datadir, "--auth=scram-sha-256",
             "--username=" + SUPERUSER, "--pwfile=" + pwfile, "-E", "UTF8", "--locale=C", "--no-sync"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.basedir, timeout=120, **self._as_user())
        os.unlink(pwfile)
        if res.returncode != 0:
            raise RuntimeError("initdb failed:\n" + res.stdout.decode(errors="replace"))
        conf = [
            # 127.0.0.2 is not in the server certificate: for hostname-mismatch tests
            "listen_addresses = '127.0.0.1,127.0.0.2'",
            "port = %d" % self.port,
            "unix_socket_directories = '%s'" % self.sockdir,
            "max_connections = 200",
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
            "shared_buffers = 64MB",
            "password_encryption = 'scram-sha-256'",
            "log_connections = on",
            "log_disconnections = on",
            "log_line_prefix = '%m [%p] %q%u@%d '",
            # replication through the pooler (test_replication.py): pg_recvlogical needs logical
            "wal_level = logical",
            "max_wal_senders = 20",
            "max_replication_slots = 20",
        ]
        if self.ssl:
            conf += [
                "ssl = on",
                "ssl_cert_file = '%s'" % self.certs.server_crt,
                "ssl_key_file = '%s'" % self.certs.pg_server_key,
                "ssl_ca_file = '%s'" % self.certs.ca_crt,
            ]
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write("\n# tokenbouncer integration tests\n" + "\n".join(conf) + "\n")
        # md5 in pg_hba means: SCRAM for roles whose stored secret is SCRAM, md5 for md5-stored ones.
        # "all" does not match replication connections: they have lines of their own.
        hba = [
            "local all all trust",
            "host all all 127.0.0.0/8 md5",
            "local replication all trust",
            "host replication all 127.0.0.0/8 md5",
        ]
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w") as f:
            f.write("\n".join(hba) + "\n")
        return self

    def start(self, timeout=30):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        logf = open(self.logpath, "ab")
        try:
            self.proc = subprocess.Popen(
                [os.path.join(PG_BIN, "postgres"), "-D", self.datadir],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                cwd=self.basedir, start_new_session=True, **self._as_user())
        finally:
            logf.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                with self.connect(connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                return False
        wait_for(ready, timeout, "postgres to accept connections on port %d" % self.port)
        return self

    def stop(self, mode="fast", timeout=30):
        """mode: smart (SIGTERM), fast (SIGINT), immediate (SIGQUIT). Falls back to SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def destroy(self):
        self.stop()
        if self._own_basedir:
            shutil.rmtree(self.basedir, ignore_errors=True)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def log_tail(self, n=40):
        try:
            with open(self.logpath, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # ---------------------------------------------------------------- SQL helpers
    def conninfo(self, **kw):
        params = dict(host=self.host, port=self.port, user=SUPERUSER, password=SUPERPASS,
                      dbname="postgres", sslmode="disable")
        params.update(kw)
        return params

    def connect(self, **kw):
        kw.setdefault("connect_timeout", 10)
        autocommit = kw.pop("autocommit", True)
        return psycopg.connect(autocommit=autocommit, **self.conninfo(**kw))

    def sql(self, query, params=None, dbname="postgres"):
        """Run one statement as superuser directly on PostgreSQL; returns all rows (or [])."""
        with self.connect(dbname=dbname) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, query, params=None, dbname="postgres"):
        rows = self.sql(query, params, dbname)
        return rows[0][0] if rows else None

    def create_role(self, name, password, md5=False, extra=""):
        with self.connect() as conn:
            if md5:
                conn.execute("SET password_encryption = 'md5'")
            conn.execute(pgsql.SQL("CREATE ROLE {} LOGIN PASSWORD {} " + extra).format(
                pgsql.Identifier(name), pgsql.Literal(password)))

    def set_password(self, name, password, md5=False):
        with self.connect() as conn:
            if md5:
                conn.execute("SET password_encryption = 'md5'")
            conn.execute(pgsql.SQL("ALTER ROLE {} PASSWORD {}").format(
                pgsql.Identifier(name), pgsql.Literal(password)))

    def create_database(self, name, owner):
        with self.connect() as conn:
            conn.execute(pgsql.SQL("CREATE DATABASE {} OWNER {}").format(
                pgsql.Identifier(name), pgsql.Identifier(owner)))

    def backends(self, usename):
        """Number of client backends PostgreSQL has for this user right now."""
        return self.scalar("select count(*) from pg_stat_activity "
                           "where usename = %s and backend_type = 'client backend'", (usename,))


class BackendSampler:
    """Samples pg_stat_activity on PostgreSQL directly, in a thread of its own, every `interval` s
    for at most `max_seconds`: the client backends of one user or a list of users. Keeps the most
    seen at once (max_seen), the oldest backend's age in seconds (max_age), every backend pid seen
    (pids) and the number of samples. Use it as a context manager around the load it watches."""

    def __init__(self, pg, users, interval=0.01, max_seconds=120):
        self.users = [users] if isinstance(users, str) else list(users)
        self.interval, self.max_seconds = interval, max_seconds
        self.max_seen = 0
        self.max_age = 0.0
        self.pids = set()
        self.samples = 0
        self._stop = threading.Event()
        self._conn = pg.connect()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            n, age, pids = self._conn.execute(
                "select count(*), coalesce(extract(epoch from max(now() - backend_start)), 0)::float8, "
                "coalesce(array_agg(pid), '{}') from pg_stat_activity "
                "where usename = any(%s) and backend_type = 'client backend'", (self.users,)).fetchone()
            self.max_seen = max(self.max_seen, n)
            self.max_age = max(self.max_age, age)
            self.pids.update(pids)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._thread.join(10)
        self._conn.close()
