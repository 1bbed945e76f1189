"""The tokenbouncer process under test: config + userlist writer, start/stop/reload, log checks.

The binary is $TOKENBOUNCER_BIN, default <repo>/build/tokenbouncer. It is built with ASan+UBSan
(scripts/run-tests.sh), so the process gets ASAN_OPTIONS/UBSAN_OPTIONS and, at teardown,
check_sanitizers() fails the test if its output holds a sanitizer report.

TB_FLAVOR=pgbouncer (with TOKENBOUNCER_BIN=/usr/sbin/pgbouncer) runs the harness against Debian's
PgBouncer instead, as a reference for the tests themselves: section [pgbouncer], run as the
postgres user (PgBouncer refuses root), and tests of tokenbouncer-only behaviour skip.
"""
import os
import re
import signal
import subprocess
import tempfile
import shutil
import pwd

import pytest

from util import free_port, wait_for, port_accepts

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_BIN = os.path.join(REPO_ROOT, "build", "tokenbouncer")
FLAVOR = os.environ.get("TB_FLAVOR", "tokenbouncer")

SANITIZER_PATTERNS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                      "UndefinedBehaviorSanitizer")

SAN_ENV = {
    "ASAN_OPTIONS": "halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1:"
                    "detect_stack_use_after_return=1:check_initialization_order=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    "LSAN_OPTIONS": "report_objects=1",
}

# Seen in the log after SIGHUP once the reload has been processed: tokenbouncer logs
# "reload complete: ..." after swapping in a new config, "reload failed, ...: FILE:LINE: ..." if not.
RELOAD_RE = {"tokenbouncer": r"(?i)reload(ed\b| complete| failed)", "pgbouncer": r"SIGHUP"}[FLAVOR]


def binary():
    return os.environ.get("TOKENBOUNCER_BIN", DEFAULT_BIN)


def is_pgbouncer():
    return FLAVOR == "pgbouncer"


def tokenbouncer_only(reason="tokenbouncer-specific behaviour"):
    if is_pgbouncer():
        pytest.skip("TB_FLAVOR=pgbouncer: " + reason)


def quote_userlist(s):
    return '"' + s.replace('"', '""') + '"'


def format_ini_value(v):
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


class Pooler:
    """One tokenbouncer process. settings -> [tokenbouncer] keys; databases -> {alias: connstr};
    users -> {name: secret as written in auth_file}; hba -> text of auth_hba_file."""

    def __init__(self, settings=None, databases=None, users=None, hba=None, workdir=None,
                 extra_lines=None, env=None, user_settings=None, nofile=None, binary=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="tb")
        os.chmod(self.workdir, 0o755)
        self.port = free_port()
        self.ini = os.path.join(self.workdir, "tokenbouncer.ini")
        self.userlist = os.path.join(self.workdir, "userlist.txt")
        self.hba_path = os.path.join(self.workdir, "hba.conf")
        self.logfile = os.path.join(self.workdir, "tokenbouncer.log")
        self.pidfile = os.path.join(self.workdir, "tokenbouncer.pid")
        self.stderr_path = os.path.join(self.workdir, "stderr.txt")
        self.settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": self.port,
            "auth_type": "scram-sha-256",
            "auth_file": self.userlist,
            "pool_mode": "session",
            "default_pool_size": 20,
            "server_reset_query": "DISCARD ALL",
            "logfile": self.logfile,
            "pidfile": self.pidfile,
        }
        if settings:
            self.settings.update(settings)
        self.databases = dict(databases or {})
        self.users = dict(users or {})
        self.hba = hba
        self.extra_lines = list(extra_lines or [])
        self.env = dict(env or {})
        self.binary = binary       # another build than $TOKENBOUNCER_BIN (e.g. the plain one)
        # [users] section: {user name: "key=value ..."}
        self.user_settings = dict(user_settings or {})
        # RLIMIT_NOFILE (soft, hard) for the process, set with prlimit(1) around the exec
        self.nofile = nofile
        self.proc = None
        self.expected_exit = False
        self._stderr_file = None
        self.write_files()

    # ------------------------------------------------------------------ files
    def render_ini(self):
        section = "pgbouncer" if is_pgbouncer() else "tokenbouncer"
        out = ["[%s]" % section]
        for k, v in self.settings.items():
            if v is None:
                continue
            out.append("%s = %s" % (k, format_ini_value(v)))
        out.extend(self.extra_lines)
        out.append("")
        out.append("[databases]")
        for alias, connstr in self.databases.items():
            out.append("%s = %s" % (alias, connstr))
        if self.user_settings:
            out.append("")
            out.append("[users]")
            for name, value in self.user_settings.items():
                out.append("%s = %s" % (name, value))
        return "\n".join(out) + "\n"

    def write_files(self):
        if self.hba is not None:
            self.settings.setdefault("auth_hba_file", self.hba_path)
            with open(self.hba_path, "w") as f:
                f.write(self.hba)
        with open(self.userlist, "w", encoding="utf-8") as f:
            for name, secret in self.users.items():
                f.write("%s %s\n" % (quote_userlist(name), quote_userlist(secret)))
        text = self.render_ini()
        with open(self.ini, "w", encoding="utf-8") as f:
            f.write(text)
        if is_pgbouncer():
            pw = pwd.getpwnam("postgres")
            for p in (self.workdir, self.ini, self.userlist, self.hba_path):
                if os.path.exists(p):
                    os.chown(p, pw.pw_uid, pw.pw_gid)
        return text

    def ini_line_of(self, needle):
        """1-based line number of the first ini line containing needle."""
        with open(self.ini) as f:
            for i, line in enumerate(f, 1):
                if needle in line:
                    return i
        raise AssertionError("%r not in %s" % (needle, self.ini))

    # ------------------------------------------------------------------ process
    def start(self, timeout=20):
        b = os.path.abspath(self.binary or binary())
        if not os.path.exists(b):
            pytest.fail("tokenbouncer binary not found at %s (build it, or set TOKENBOUNCER_BIN)" % b)
        env = dict(os.environ)
        env.update(SAN_ENV)
        env.update(self.env)
        self._stderr_file = open(self.stderr_path, "ab")
        kw = {}
        if is_pgbouncer() and os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        argv = [b, self.ini]
        if self.nofile:
            # prlimit execs the command, so self.proc.pid is the pooler's own PID
            soft, hard = self.nofile
            argv = ["prlimit", "--nofile=%d:%d" % (soft, hard), "--"] + argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stderr_file,
                                     stderr=subprocess.STDOUT, cwd=self.workdir, env=env,
                                     start_new_session=True, **kw)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("tokenbouncer exited with %s during start-up:\n%s" %
                                   (self.proc.returncode, self.log_text()[-4000:]))
            return port_accepts(self.port)
        wait_for(up, timeout, "tokenbouncer to listen on port %d" % self.port)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def status_field(self, name):
        """A field of /proc/PID/status, e.g. status_field("VmRSS") -> bytes (kB fields) or str."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(name + ":"):
                    v = line.split(":", 1)[1].strip()
                    if v.endswith(" kB"):
                        return int(v[:-3]) * 1024
                    return v
        raise KeyError(name)

    def rss(self):
        """Resident set size of the pooler in bytes (VmRSS)."""
        return self.status_field("VmRSS")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        assert self.alive(), "tokenbouncer is not running:\n" + self.log_text()[-4000:]
        if sig != signal.SIGHUP:
            self.expected_exit = True
        self.proc.send_signal(sig)

    def _log_marks(self):
        marks = {}
        for p in (self.stderr_path, self.logfile):
            try:
                marks[p] = os.path.getsize(p)
            except OSError:
                marks[p] = 0
        return marks

    def log_since(self, marks):
        """Log text written after _log_marks() was taken (stderr part, then logfile part)."""
        out = []
        for p, off in marks.items():
            try:
                with open(p, "rb") as f:
                    f.seek(off)
                    out.append(f.read().decode(errors="replace"))
            except OSError:
                pass
        return "\n".join(out)

    def reload(self, expect=None, timeout=10):
        """Send SIGHUP and wait until the log written after it matches `expect` (default
        RELOAD_RE). Returns that new log text."""
        marks = self._log_marks()
        self.signal(signal.SIGHUP)
        pattern = re.compile(expect or RELOAD_RE)

        def seen():
            new = self.log_since(marks)
            return new if pattern.search(new) else None
        return wait_for(seen, timeout, "log line matching %r after SIGHUP" % pattern.pattern)

    def wait_log(self, pattern, timeout=10, marks=None):
        """Wait until the log (optionally only what came after marks) matches pattern."""
        rx = re.compile(pattern)

        def seen():
            text = self.log_since(marks) if marks else self.log_text()
            return text if rx.search(text) else None
        return wait_for(seen, timeout, "log line matching %r" % pattern)

    def stop(self, timeout=10):
        """SIGINT (graceful), then SIGTERM, then SIGKILL; each bounded. Returns the exit code."""
        if self.proc is None:
            return None
        self.expected_exit = True
        if self.proc.poll() is None:
            for sig, t in ((signal.SIGINT, timeout), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    self.proc.send_signal(sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(t)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._stderr_file:
            self._stderr_file.close()
            self._stderr_file = None
        return self.proc.returncode

    def log_text(self):
        """stderr (where the process logs by default) followed by the logfile, if any."""
        out = []
        for p in (self.stderr_path, self.logfile):
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode(errors="replace"))
            except OSError:
                pass
        return "\n".join(out)

    def log_for_report(self):
        """One copy of the log for failure reports: the logfile if it has anything, else stderr
        (stderr is appended when it holds lines the logfile lacks, e.g. sanitizer reports)."""
        def read(p):
            try:
                with open(p, "rb") as f:
                    return f.read().decode(errors="replace")
            except OSError:
                return ""
        lf, se = read(self.logfile), read(self.stderr_path)
        if not lf:
            return se
        extra = "\n".join(l for l in se.splitlines() if l not in lf)
        return lf + ("\n--- stderr only ---\n" + extra if extra.strip() else "")

    def sanitizer_reports(self):
        text = self.log_text()
        return [p for p in SANITIZER_PATTERNS if p in text]

    def check_sanitizers(self):
        found = self.sanitizer_reports()
        if found:
            raise AssertionError("sanitizer report in tokenbouncer output (%s):\n%s" %
                                 (", ".join(found), self.log_text()[-8000:]))

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ client helpers
    def dsn(self, dbname, user, password=None, **kw):
        d = dict(host="127.0.0.1", port=self.port, dbname=dbname, user=user, sslmode="disable",
                 connect_timeout=10)
        if password is not None:
            d["password"] = password
        d.update(kw)
        return d

    def connect(self, dbname, user, password=None, autocommit=True, **kw):
        import psycopg
        return psycopg.connect(autocommit=autocommit, **self.dsn(dbname, user, password, **kw))


def run_check(ini_path, timeout=30):
    """`tokenbouncer --check FILE` -> CompletedProcess (text)."""
    env = dict(os.environ)
    env.update(SAN_ENV)
    return subprocess.run([binary(), "--check", ini_path], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, env=env)
