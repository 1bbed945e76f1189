"""The binary under test is the sanitized test build: every object linked into it was compiled
with AddressSanitizer + UndefinedBehaviorSanitizer and without NDEBUG. A build directory
reconfigured with other flags would otherwise link stale plain objects, and the sanitizer checks
of the whole suite would prove nothing.

TB_ALLOW_PLAIN_BINARY=1 skips these checks (e.g. to run the suite against an installed binary).
"""
import glob
import os
import subprocess

import pytest

from pooler import binary, tokenbouncer_only


@pytest.fixture(autouse=True)
def _sanitized_build_required():
    tokenbouncer_only("the tokenbouncer build")
    if os.environ.get("TB_ALLOW_PLAIN_BINARY") == "1":
        pytest.skip("TB_ALLOW_PLAIN_BINARY=1: the binary under test may be a plain build")
    if not os.path.exists(binary()):
        pytest.fail("tokenbouncer binary not found at %s" % binary())


def symbols(path, *flags):
    out = subprocess.run(["nm", *flags, path], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_binary_links_the_sanitizer_runtimes():
    syms = symbols(binary(), "-D")
    assert "__asan_init" in syms, "%s is not built with AddressSanitizer" % binary()
    assert "__ubsan_handle_" in syms, "%s is not built with UndefinedBehaviorSanitizer" % binary()


def test_build_directory_is_configured_for_testing():
    """Assertions and -Werror leave no trace in the objects: the directory's configure flags say."""
    build = os.path.dirname(os.path.abspath(binary()))
    status = os.path.join(build, "config.status")
    assert os.path.exists(status), "%s has no config.status: not the binary's build directory" % build
    out = subprocess.run([status, "--config"], capture_output=True, text=True, timeout=30)
    flags = out.stdout.replace("'", "").split()
    for want in ("--enable-werror", "--enable-asserts", "--enable-sanitizers"):
        assert want in flags, "%s was configured without %s (%s)" % (build, want, out.stdout.strip())


def test_every_object_of_the_build_is_sanitized():
    """Each object file next to the binary (what make linked into it) is instrumented."""
    build = os.path.dirname(os.path.abspath(binary()))
    objects = glob.glob(os.path.join(build, "src", "**", "*.o"), recursive=True)
    assert len(objects) >= 10, "no object files under %s/src: is this the build directory?" % build
    plain = [o for o in objects if "__asan_" not in symbols(o, "-u")]
    assert not plain, "objects compiled without sanitizers: %s" % ", ".join(sorted(plain))
