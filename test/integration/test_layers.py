"""The source layers include only downwards: core <- net <- pg <- pool <- admin, with token
beside pg (core only). pool/ reaches the admin console only through pool/console.h and the
janitor's hooks, which main.c registers; a `#include "admin/..."` in pool/ brings the cycle back.
The check reads the tree, not the build.
"""
import glob
import os
import re

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# What each layer may include besides itself.
ALLOWED = {
    "core": set(),
    "net": {"core"},
    "pg": {"core"},
    "token": {"core"},
    "pool": {"core", "net", "pg", "token"},
    "admin": {"core", "net", "pg", "token", "pool"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z]+)/[^"]+"', re.M)


def layer_includes(layer):
    """(file, included layer) for every quoted project include of the layer's sources and headers."""
    found = []
    for pattern in ("src/%s/*.c" % layer, "include/%s/*.h" % layer):
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            with open(path, encoding="utf-8") as f:
                for dep in INCLUDE.findall(f.read()):
                    found.append((os.path.relpath(path, ROOT), dep))
    return found


def test_every_layer_has_sources():
    for layer in ALLOWED:
        assert layer_includes(layer), "no includes found for %s: the check would pass vacuously" % layer


def test_layers_include_only_downwards():
    wrong = []
    for layer, allowed in ALLOWED.items():
        for path, dep in layer_includes(layer):
            if dep in ALLOWED and dep != layer and dep not in allowed:
                wrong.append("%s includes %s/" % (path, dep))
    assert not wrong, "layering broken:\n  " + "\n  ".join(wrong)


def test_pool_includes_nothing_from_admin():
    wrong = [path for path, dep in layer_includes("pool") if dep == "admin"]
    assert not wrong, "pool/ must reach the console through pool/console.h: %s" % wrong


def test_util_depends_on_no_other_module():
    """core/util is the bottom of the tree: every module uses it, so it uses none of ours
    (core/dynbuf builds on util; file_read_all, which needs dynbuf, lives in core/file_read)."""
    ours = []
    for path in ("src/core/util.c", "include/core/util.h"):
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            ours += [(path, inc) for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', f.read(), re.M)]
    assert ("src/core/util.c", "core/util.h") in ours, "include pattern found nothing: vacuous"
    # a header with no module behind it (core/mustcheck.h: attribute macros) is no dependency
    def is_module(inc):
        return inc != "core/util.h" and os.path.exists(os.path.join(ROOT, "src", inc[:-2] + ".c"))
    wrong = ["%s includes %s" % (p, inc) for p, inc in ours if is_module(inc)]
    assert not wrong, "core/util must not depend on other modules:\n  " + "\n  ".join(wrong)
