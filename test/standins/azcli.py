"""Azure CLI stub logic (the Azure CLI source, the Azure CLI stub) behind the executable test/standins/az, plus AzCliStub,
the helper tests use to put it on PATH and steer it.

The stub handles `az account get-access-token --output json --resource <r> [--tenant T]
[--subscription S]` (also -o, --scope, -t, -s, --only-show-errors) and `az --version`; anything
else exits 2 with "ERROR: unrecognized arguments" / "ERROR: 'x' is misspelled or not recognized".

Configuration, read on every invocation (state file keys override environment variables):
  state file: path in TB_AZ_STATE, JSON object with the keys below
  env:        TB_AZ_MODE, TB_AZ_TOKEN, TB_AZ_EXPIRES_IN, TB_AZ_SLEEP, TB_AZ_LOG, TB_AZ_CLOCK_OFFSET,
              TB_AZ_COUNTER_FILE, TB_AZ_NO_EXPIRES_ON
  mode        ok (default) | not_logged_in (stderr "ERROR: Please run 'az login' to setup account.",
              exit 1) | error (stderr "ERROR: AADSTS700082: ...", exit 1) | exit127 | sleep (sleep
              `sleep` s, default 30, then answer ok) | malformed (truncated JSON, exit 0) | empty
  token       fixed accessToken to print (default: mint a user JWT tok-<n>, HS256 test key)
  expires_in  lifetime of minted tokens (default 3600)
  no_expires_on  true: omit expires_on (CLI < 2.54), leaving only local-time expiresOn
  upn, tenant, subscription, claims   principal of minted tokens
  entra       {"url","tenant","client_id","client_secret"}: fetch the token from the entra stand-in
  log         append one JSON line per invocation (argv, cwd, stdin, selected env, mode)
  counter_file  where n of tok-<n> persists (default <state file>.counter)
  clock_offset  seconds added to the real clock
"""
import datetime as _dt
import fcntl
import json
import os
import stat
import sys
import tempfile
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from standin_base import DEFAULT_SIGNING_KEY  # noqa: E402
from entra import DEFAULT_RESOURCE, DEFAULT_TENANT, _guid_from, mint_access_token  # noqa: E402

AZ_CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
DEFAULT_SUBSCRIPTION = "5f1e2d3c-4b5a-4697-8877-665544332211"
DEFAULT_UPN = "alice@contoso.example"
VERSION_TEXT = "azure-cli                         2.61.0\n\ncore                              2.61.0\n"


def _load_config():
    cfg = {}
    env = os.environ
    for k in ("MODE", "TOKEN", "LOG", "COUNTER_FILE", "UPN"):
        if env.get("TB_AZ_" + k):
            cfg[k.lower()] = env["TB_AZ_" + k]
    for k in ("EXPIRES_IN", "SLEEP", "CLOCK_OFFSET"):
        if env.get("TB_AZ_" + k):
            cfg[k.lower()] = float(env["TB_AZ_" + k])
    if env.get("TB_AZ_NO_EXPIRES_ON"):
        cfg["no_expires_on"] = env["TB_AZ_NO_EXPIRES_ON"].lower() in ("1", "true", "yes")
    state = env.get("TB_AZ_STATE")
    if state:
        try:
            with open(state) as f:
                cfg.update(json.load(f))
        except FileNotFoundError:
            pass
        cfg.setdefault("counter_file", state + ".counter")
    return cfg


def _next_counter(path):
    if not path:
        return 1
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, 64).decode().strip()
        n = (int(raw) if raw.isdigit() else 0) + 1
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(n).encode())
        return n
    finally:
        os.close(fd)


def _log(cfg, record):
    path = cfg.get("log")
    if not path:
        return
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        f.write(json.dumps(record) + "\n")


def _stdin_state():
    try:
        st = os.fstat(0)
    except OSError:
        return "closed"
    if stat.S_ISCHR(st.st_mode) and os.path.realpath("/proc/self/fd/0") == "/dev/null":
        return "devnull"
    if stat.S_ISFIFO(st.st_mode):
        return "pipe"
    if os.isatty(0):
        return "tty"
    return "other"


def _parse(argv):
    """Returns (opts, error_text)."""
    if argv in (["--version"], ["version"]):
        return {"version": True}, None
    if argv[:2] != ["account", "get-access-token"]:
        return None, "ERROR: '%s' is misspelled or not recognized by the system." % " ".join(argv[:2])
    opts = {}
    rest = argv[2:]
    i = 0
    names = {"--output": "output", "-o": "output", "--resource": "resource", "--scope": "scope",
             "--tenant": "tenant", "-t": "tenant", "--subscription": "subscription", "-s": "subscription",
             "--resource-type": "resource_type"}
    while i < len(rest):
        a = rest[i]
        if a == "--only-show-errors":
            i += 1
            continue
        key, val = a, None
        if a.startswith("--") and "=" in a:
            key, val = a.split("=", 1)
        if key not in names:
            return None, "ERROR: unrecognized arguments: %s" % " ".join(rest[i:])
        if val is None:
            if i + 1 >= len(rest):
                return None, "ERROR: argument %s: expected one argument" % key
            val = rest[i + 1]
            i += 2
        else:
            i += 1
        opts[names[key]] = val
    if opts.get("output", "json") != "json":
        return None, "ERROR: the stand-in only supports --output json (got %r)" % opts["output"]
    if "resource" in opts and "scope" in opts:
        return None, "ERROR: usage error: --resource and --scope are mutually exclusive"
    return opts, None


def _fetch_from_entra(e, resource):
    body = urllib.parse.urlencode({"client_id": e["client_id"], "client_secret": e["client_secret"],
                                   "grant_type": "client_credentials", "scope": resource + "/.default"}).encode()
    req = urllib.request.Request("%s/%s/oauth2/v2.0/token" % (e["url"].rstrip("/"), e.get("tenant", DEFAULT_TENANT)),
                                 data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=10) as r:
        d = json.loads(r.read())
    return d["access_token"], int(d["expires_in"])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    cfg = _load_config()
    mode = cfg.get("mode", "ok")
    _log(cfg, {"time": time.time(), "argv": argv, "cwd": os.getcwd(), "stdin": _stdin_state(), "mode": mode,
               "env": {k: os.environ.get(k) for k in ("AZURE_CORE_NO_COLOR", "AZURE_CONFIG_DIR", "PATH")}})
    opts, err = _parse(argv)
    if err:
        sys.stderr.write(err + "\n")
        return 2
    if opts.get("version"):
        sys.stdout.write(VERSION_TEXT)
        return 0
    if mode == "exit127":
        sys.stderr.write("az: command not found\n")
        return 127
    if mode == "not_logged_in":
        sys.stderr.write("ERROR: Please run 'az login' to setup account.\n")
        return 1
    if mode == "error":
        sys.stderr.write("ERROR: AADSTS700082: The refresh token has expired due to inactivity. The token was "
                         "issued on 2030-01-01T00:00:00Z and was inactive for 90.00:00:00.\n")
        return 1
    if mode == "sleep":
        time.sleep(float(cfg.get("sleep", 30)))
    if mode == "malformed":
        sys.stdout.write('{\n  "accessToken": "tok-broken",\n  "expiresOn": "20')
        return 0
    if mode == "empty":
        return 0
    resource = opts.get("resource") or (opts["scope"][:-len("/.default")] if opts.get("scope", "").endswith(
        "/.default") else opts.get("scope")) or DEFAULT_RESOURCE
    tenant = opts.get("tenant") or cfg.get("tenant") or DEFAULT_TENANT
    now = int(time.time() + float(cfg.get("clock_offset", 0)))
    ttl = int(cfg.get("expires_in", 3600))
    if cfg.get("token"):
        token = cfg["token"]
    elif cfg.get("entra"):
        try:
            token, ttl = _fetch_from_entra(cfg["entra"], resource)
        except Exception as e:  # noqa: BLE001 - reported like the CLI would
            sys.stderr.write("ERROR: AADSTS50001: token request to the entra stand-in failed: %s\n" % e)
            return 1
    else:
        n = _next_counter(cfg.get("counter_file"))
        upn = cfg.get("upn", DEFAULT_UPN)
        oid = _guid_from("user", tenant, upn)
        claims = {"appid": AZ_CLI_APP_ID, "appidacr": "0", "idtyp": "user", "oid": oid, "sub": oid,
                  "upn": upn, "unique_name": upn, "name": upn.split("@")[0].title(), "scp": "user_impersonation",
                  "amr": ["pwd"]}
        claims.update(cfg.get("claims") or {})
        key = cfg.get("signing_key", DEFAULT_SIGNING_KEY)
        token = mint_access_token(n, now, ttl, tenant, resource, claims,
                                  key.encode() if isinstance(key, str) else key, cfg.get("backdate", 300))
    exp = now + ttl
    out = {"accessToken": token,
           "expiresOn": _dt.datetime.fromtimestamp(exp).strftime("%Y-%m-%d %H:%M:%S.%f"),
           "expires_on": exp,
           "subscription": opts.get("subscription") or cfg.get("subscription", DEFAULT_SUBSCRIPTION),
           "tenant": tenant,
           "tokenType": "Bearer"}
    if cfg.get("no_expires_on"):
        del out["expires_on"]
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


class AzCliStub:
    """Test helper: a private bin directory holding only `az` (a symlink to test/standins/az) and a
    state file. Use env() for the pooler's environment; set(**state) changes behaviour at runtime."""

    def __init__(self, directory=None, **state):
        self.dir = directory or tempfile.mkdtemp(prefix="tbaz")
        self.bin_dir = os.path.join(self.dir, "bin")
        os.makedirs(self.bin_dir, exist_ok=True)
        link = os.path.join(self.bin_dir, "az")
        if not os.path.lexists(link):
            os.symlink(os.path.join(HERE, "az"), link)
        self.state_path = os.path.join(self.dir, "az-state.json")
        self.log_path = os.path.join(self.dir, "az-log.jsonl")
        self.state = {"mode": "ok", "log": self.log_path}
        self.set(**state)

    def set(self, **kw):
        self.state.update(kw)
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f)
        os.replace(tmp, self.state_path)

    def env(self, base=None):
        e = dict(os.environ if base is None else base)
        e["PATH"] = self.bin_dir + os.pathsep + e.get("PATH", "/usr/bin:/bin")
        e["TB_AZ_STATE"] = self.state_path
        return e

    def invocations(self):
        try:
            with open(self.log_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
