"""Every ```ini example in the README and doc/ loads with the real binary (tokenbouncer --check).

A fragment (only [databases], only [users] ...) gets a small [tokenbouncer] section in front of it
and a [credential.NAME] of the method's default type for each credential it names but does not
define, so that what is checked is the example's own text: its keys, values and line syntax."""
import glob
import os
import re
import subprocess

import pytest

import pooler as pooler_mod
from pooler import REPO_ROOT, SAN_ENV, binary

DOCS = [os.path.join(REPO_ROOT, "README.md")] + sorted(glob.glob(os.path.join(REPO_ROOT, "doc", "*.md"))) + \
    sorted(glob.glob(os.path.join(REPO_ROOT, "deploy", "**", "*.md"), recursive=True))
DEFAULT_CREDENTIAL = {"entra": "azure-managed-identity", "aws-rds": "aws-default", "aws-dsql": "aws-default",
                      "cloudsql": "gcp-default", "alloydb": "gcp-default"}


def ini_blocks():
    for path in DOCS:
        text = open(path, encoding="utf-8").read()
        for n, m in enumerate(re.finditer(r"^```ini\n(.*?)^```", text, re.S | re.M), 1):
            yield pytest.param(m.group(1), id="%s#%d" % (os.path.relpath(path, REPO_ROOT), n))


def completed(block, auth_file):
    """The example with what a fragment leaves out; nothing of the example is changed."""
    head = ""
    if not re.search(r"^\s*\[(tokenbouncer|pgbouncer)\]", block, re.M):
        head = ("[tokenbouncer]\nlisten_port = 7999\nauth_file = %s\nserver_tls_sslmode = verify-full\n"
                "server_tls_ca_file = /etc/ssl/certs/ca-certificates.crt\n\n" % auth_file)
    defined = set(re.findall(r"^\s*\[credential\.([^\]]+)\]", block, re.M))
    tail = ""
    for name, method in _credentials(block):
        if name not in defined:
            tail += "\n[credential.%s]\ntype = %s\n" % (name, DEFAULT_CREDENTIAL[method])
            defined.add(name)
    return head + block + tail


def _credentials(block):
    out = []
    for line in block.splitlines():
        cred, auth = re.search(r"\bcredential=(\S+)", line), re.search(r"\bauth=(\S+)", line)
        if cred and auth:
            out.append((cred.group(1), auth.group(1)))
    return out


@pytest.fixture(autouse=True)
def _tokenbouncer_only():
    pooler_mod.tokenbouncer_only("the documentation is tokenbouncer's")


def test_the_docs_have_examples():
    assert len(list(ini_blocks())) >= 8


@pytest.mark.parametrize("block", ini_blocks())
def test_example_loads(block, tmp_path):
    userlist = tmp_path / "userlist.txt"
    userlist.write_text('"app" "secret"\n')
    text = completed(block, userlist)
    # paths of the example that are meant for a real installation point at this test's files
    text = re.sub(r"(auth_file\s*=\s*)/\S+", r"\g<1>" + str(userlist), text)
    ini = tmp_path / "tokenbouncer.ini"
    ini.write_text(text)
    env = dict(os.environ)
    env.update(SAN_ENV)
    res = subprocess.run([binary(), "--check", str(ini)], capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, text + "\n---\n" + res.stdout + res.stderr
