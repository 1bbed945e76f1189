"""The "options" startup parameter as PgBouncer 1.20+: "-c name=value" and "--name=value" for
tracked parameters, backslash escapes; anything else refused with PgBouncer's error unless
ignore_startup_parameters names it (or names "options")."""
import pytest

import rawpg
from conftest import ALICE, ALICE_PW
from pooler import is_pgbouncer

pytestmark = pytest.mark.skipif(is_pgbouncer(), reason="TB_FLAVOR=pgbouncer: the reference is 1.18")


def show(p, options, what):
    c = rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, options=options)
    try:
        return [c.query_ok("show %s" % w).rows[0][0] for w in what]
    finally:
        c.terminate()


def refused(p, options):
    with pytest.raises(rawpg.PgError) as ei:
        rawpg.try_login("127.0.0.1", p.port, ALICE, "appdb", ALICE_PW, options=options).close()
    assert ei.value.code == "08P01", ei.value.fields
    return ei.value.message


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_tracked_parameters_in_options(make_pooler, mode):
    p = make_pooler(settings={"pool_mode": mode})
    got = show(p, r"-c DateStyle=German  --TimeZone=UTC -capplication_name=two\ words",
               ["datestyle", "timezone", "application_name"])
    assert got == ["German, DMY", "UTC", "two words"]


def test_other_options_refused_or_ignored(make_pooler):
    p = make_pooler()
    assert refused(p, "-c search_path=x") == "unsupported startup parameter in options: search_path"
    assert refused(p, "-x") == ("unsupported options startup parameter: only '-c config=val' and "
                                "'--config=val' are allowed")
    assert refused(p, "-c novalue") .startswith("unsupported options startup parameter")
    q = make_pooler(settings={"ignore_startup_parameters": "search_path"})
    assert show(q, "-c search_path=x -c DateStyle=SQL", ["datestyle"]) == ["SQL, MDY"]
    r = make_pooler(settings={"ignore_startup_parameters": "options"})
    assert show(r, "-c search_path=x -c DateStyle=SQL", ["datestyle"]) == ["SQL, MDY"]
    assert show(r, "-x garbage", ["datestyle"]) == ["ISO, MDY"]
