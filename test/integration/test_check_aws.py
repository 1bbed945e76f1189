"""`tokenbouncer check` on AWS aliases (aws-rds, aws-dsql) against PgFront and the STS stand-in:
a passing alias of each kind, and each failure cause: no credentials, the identity endpoint (STS)
refusing the role, the database refusing the token. See test_check.py for the rest."""
import pytest

import pooler as pooler_mod
from test_aws import (AKID, ALIAS, DB_USER, ROLE_ARN, SECRET, alias_connstr, aws_pooler, aws_sts,  # noqa: F401
                      home, make_front, standins, write_file)
from test_check import assert_failed, assert_ok, report


@pytest.fixture(autouse=True)
def _tokenbouncer_only():
    pooler_mod.tokenbouncer_only("the check command is tokenbouncer's")


def test_rds_and_dsql_aliases_pass(make_pooler, certs, make_front, home):
    front = make_front(aws_keys={AKID: SECRET})
    dfront = make_front(mode="dsql", aws_keys={AKID: SECRET})
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-static"}, home, start=False,
                   env={"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET},
                   databases={"ledger_dsql": alias_connstr(dfront, "dsql", user=None)})
    p.write_files()
    rc, rows = report(p)
    assert rc == 0, rows
    for alias, method, user in ((ALIAS, "aws-rds", DB_USER), ("ledger_dsql", "aws-dsql", "admin")):
        row = rows[alias]
        assert_ok(row)
        assert row["method"] == method and row["user"] == user, row
        assert "token" in row["steps_ms"] and row["tls"]["verify_ok"] is True, row
    assert len(front.rec.accepted) == 1 and len(dfront.rec.accepted) == 1


def test_no_credentials_and_refused_token(make_pooler, certs, make_front, home):
    nocred = make_front()
    refusing = make_front(aws_keys={AKID: SECRET}, reject=lambda token: True)
    # [credential.aws] is aws-default with nothing to find (the environment is blanked, no files,
    # IMDS disabled); [credential.keys] holds static keys that PgFront knows, but it refuses all
    keys = {"type": "aws-static", "access_key_id": AKID,
            "secret_access_key_file": write_file(home + "/secret", SECRET + "\n")}
    p = aws_pooler(make_pooler, certs, nocred, {"type": "aws-default"}, home, start=False,
                   creds_extra={"keys": keys}, databases={"refused": alias_connstr(refusing, cred="keys")})
    p.write_files()
    rc, rows = report(p)
    assert rc == 1
    assert_failed(rows[ALIAS], "token", "no AWS credentials found", "[credential.aws]")
    assert_failed(rows["refused"], "login", "rejected a fresh RDS IAM token", "rds_iam")
    assert rows["refused"]["token_retried"] is True
    assert len(refusing.rec.rejected) == 2
    assert nocred.stats()["total_connections"] == 0, "connected without a token"


def test_identity_endpoint_refuses_the_role(make_pooler, certs, make_front, standins, home, tmp_path):
    tok_file = write_file(tmp_path / "web-identity-token", aws_sts.DEFAULT_WEB_IDENTITY_TOKEN)
    sts = standins(aws_sts.AwsStsStandIn(role_arns=["arn:aws:iam::123456789012:role/some-other-role"]))
    front = make_front()
    p = aws_pooler(make_pooler, certs, front, {"type": "aws-web-identity", "role_arn": ROLE_ARN,
                                               "token_file": tok_file}, home, start=False,
                   env={"AWS_ENDPOINT_URL_STS": sts.url})
    p.write_files()
    rc, rows = report(p)
    assert rc == 1
    assert_failed(rows[ALIAS], "token", "AccessDenied")
    assert sts.requests(method="POST")
