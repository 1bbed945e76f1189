#!/usr/bin/python3
"""The source checks of scripts/check-tree.sh that need more than grep.

    tree_checks.py banned FILE...      calls of banned C functions (comments and strings skipped)
    tree_checks.py lengths FILE...     functions over --max-function lines, files over --max-file
    tree_checks.py stats FILE...       function length p50/p90/max and the largest files

Function extents come from universal-ctags (its "end" field), so a function is counted from the
line with its name to its closing brace. Exit status 1 when a check finds something.
"""
import argparse
import json
import re
import shutil
import subprocess
import sys

# Each is unbounded or hides a failure: strcpy/strcat/sprintf/vsprintf/gets write without a
# size, atoi/atol/atoll cannot report a bad number. Use snprintf, memcpy with a known length,
# strtol/strtoll with an end pointer.
BANNED = ("strcpy", "strcat", "sprintf", "vsprintf", "gets", "atoi", "atol", "atoll")
BANNED_RE = re.compile(r"\b(%s)\s*\(" % "|".join(BANNED))
SCANF_RE = re.compile(r"\b(scanf|fscanf|sscanf|vscanf|vsscanf|vfscanf)\s*\(")
# A conversion that stores a string with no width: %s, %[...] (not %*s, %255s).
UNBOUNDED_CONV_RE = re.compile(r"%(?!\*)(?:[hlLqjzt]*)(s|\[)")


def strip_c(text):
    """The text with comments blanked and string/char literals emptied; line numbers kept.
    Literals are kept as "" so a scanf format can still be found on the original text."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (min(j, n) - i - 1) + (c if j < n else ""))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def banned_calls(path):
    """(line, message) for each banned call in one file."""
    text = open(path, encoding="utf-8", errors="replace").read()
    code = strip_c(text)
    found = []
    for m in BANNED_RE.finditer(code):
        line = code.count("\n", 0, m.start()) + 1
        found.append((line, "%s() is banned (unbounded or unchecked)" % m.group(1)))
    for m in SCANF_RE.finditer(code):
        # the call's argument text, from the original (literals intact), up to its ';'
        end = code.find(";", m.end())
        args = text[m.end():end if end >= 0 else len(text)]
        if UNBOUNDED_CONV_RE.search(args):
            line = code.count("\n", 0, m.start()) + 1
            found.append((line, "%s() with a %%s or %%[ conversion without a width" % m.group(1)))
    return found


def ctags_bin():
    for name in ("ctags-universal", "universal-ctags", "ctags"):
        path = shutil.which(name)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
            if "Universal Ctags" in out:
                return path
    sys.exit("tree_checks: universal-ctags not found (bash scripts/deps.sh installs it)")


def functions(files):
    """(length, path, name, first line) of every C function definition in files."""
    if not files:
        return []
    out = subprocess.run([ctags_bin(), "--output-format=json", "--languages=C", "--kinds-C=f",
                          "--fields=+ne", "-o", "-"] + list(files),
                         capture_output=True, text=True, check=True).stdout
    result = []
    for line in out.splitlines():
        tag = json.loads(line)
        if tag.get("_type") == "tag" and "end" in tag:
            result.append((tag["end"] - tag["line"] + 1, tag["path"], tag["name"], tag["line"]))
    return result


def line_count(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def cmd_banned(args):
    bad = 0
    for path in args.files:
        for line, msg in banned_calls(path):
            print("%s:%d: %s" % (path, line, msg))
            bad = 1
    return bad


def cmd_lengths(args):
    bad = 0
    allowed = set(args.allow_file or [])
    for length, path, name, first in sorted(functions(args.files), reverse=True):
        if length > args.max_function:
            print("%s:%d: function %s is %d lines (at most %d)" % (path, first, name, length,
                                                                   args.max_function))
            bad = 1
    for path in args.files:
        n = line_count(path)
        if n > args.max_file:
            if path in allowed:
                print("%s: %d lines (at most %d): allowed for now (--allow-file)" % (path, n,
                                                                                  args.max_file))
                continue
            print("%s: %d lines (at most %d): split it by concern" % (path, n, args.max_file))
            bad = 1
    return bad


def cmd_stats(args):
    lengths = sorted(f[0] for f in functions(args.files))
    if lengths:
        print("functions: %d, length p50 %d, p90 %d, max %d lines" % (
            len(lengths), percentile(lengths, 0.5), percentile(lengths, 0.9), lengths[-1]))
    sizes = sorted(((line_count(p), p) for p in args.files), reverse=True)
    over = sum(1 for n, _ in sizes if n > args.max_file)
    print("files: %d, %d lines in all, %d over %d lines; largest: %s" % (
        len(sizes), sum(n for n, _ in sizes), over, args.max_file,
        ", ".join("%s %d" % (p, n) for n, p in sizes[:5])))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("banned", "lengths", "stats"))
    ap.add_argument("files", nargs="*")
    ap.add_argument("--max-function", type=int, default=150)
    ap.add_argument("--max-file", type=int, default=1500)
    ap.add_argument("--allow-file", action="append", help="a file allowed over --max-file")
    args = ap.parse_intermixed_args()
    return {"banned": cmd_banned, "lengths": cmd_lengths, "stats": cmd_stats}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
