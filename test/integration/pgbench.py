"""pgbench (PostgreSQL 15's) as a load generator: start it bounded, parse its summary.

    run = Pgbench(pooler.port, "benchdb", ALICE, ALICE_PW, ["-c", "8", "-T", "5"]).start()
    res = run.result(timeout=30)      # PgbenchResult; res.ok() -> (bool, reason)

The summary lines read are PostgreSQL 15's:
    number of transactions actually processed: 1234
    number of failed transactions: 0 (0.000%)
A client that hits an error other than a serialization failure or deadlock is aborted
("client 3 aborted in command 4 (SQL) of script 0; ..."), and pgbench then exits with 2.
"""
import glob
import os
import re
import subprocess

from pg import PG_BIN

PGBENCH = os.path.join(PG_BIN, "pgbench")


class PgbenchResult:
    def __init__(self, returncode, stdout, stderr, elapsed_cap=None):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        m = re.search(r"number of transactions actually processed: (\d+)", stdout)
        self.processed = int(m.group(1)) if m else None
        m = re.search(r"number of failed transactions: (\d+)", stdout)
        self.failed = int(m.group(1)) if m else None
        self.aborted = [l for l in stderr.splitlines() if "aborted" in l]

    def ok(self):
        """(True, "") when pgbench ran cleanly: exit 0, transactions processed, none failed or
        aborted; else (False, reason with the output)."""
        problems = []
        if self.returncode != 0:
            problems.append("exit code %s" % self.returncode)
        if not self.processed:
            problems.append("no transactions processed")
        if self.failed:
            problems.append("%d failed transactions" % self.failed)
        if self.aborted:
            problems.append("aborted clients: %s" % "; ".join(self.aborted[:5]))
        if not problems:
            return True, ""
        return False, "pgbench: %s\n--- stdout ---\n%s\n--- stderr (tail) ---\n%s" % (
            ", ".join(problems), self.stdout[-3000:], self.stderr[-4000:])


class Pgbench:
    """One pgbench run against host:port (loopback). args are pgbench options (no connection
    options). With log_dir, per-transaction logs (-l) are written there for max_latency()."""

    def __init__(self, port, dbname, user, password, args, host="127.0.0.1", log_dir=None):
        self.argv = [PGBENCH, "-h", host, "-p", str(port), "-U", user] + list(args)
        self.log_dir = log_dir
        if log_dir:
            self.argv += ["-l", "--log-prefix=" + os.path.join(log_dir, "pgbench_log")]
        self.argv.append(dbname)
        self.env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10",
                    "PGSSLMODE": "disable"}
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self

    def result(self, timeout):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
            raise AssertionError("pgbench did not finish within %.0fs:\n%s\n%s" % (timeout, out[-2000:], err[-2000:]))
        return PgbenchResult(self.proc.returncode, out, err)

    def max_latency(self):
        """Longest transaction in the -l logs, in seconds (column 3 is the latency in us)."""
        worst = 0
        for path in glob.glob(os.path.join(self.log_dir, "pgbench_log*")):
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[2].isdigit():
                        worst = max(worst, int(parts[2]))
        return worst / 1e6


def run_pgbench(port, dbname, user, password, args, timeout=120, **kw):
    return Pgbench(port, dbname, user, password, args, **kw).start().result(timeout)
