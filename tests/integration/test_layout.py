"""The rules of the house (docs/architecture.md), checked on the tree and
on the objects the test build made:

- a folder includes only the folders below it (the LAYERS table);
- no .c file is over about 1,000 lines, except a file that is one table;
- no two source files call each other (from `nm` of the objects: file A
  uses a symbol defined in B and B one defined in A).
"""

import os
import re
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SRC = os.path.join(REPO, "src")
BIN = os.environ.get("POSTERN_BIN",
                     os.path.join(REPO, "build-test", "postern"))
BUILD = os.path.dirname(BIN)

# What each folder may include besides itself. smtp/ sees store/'s types
# (the recipients it hands over), never its functions that do I/O.
LAYERS = {
    "lib": set(),
    "conf": {"lib"},
    "store": {"lib", "conf", "metrics"},
    "auth": {"lib", "conf", "metrics"},
    "smtp": {"lib", "conf", "store"},
    "outbound": {"lib", "conf", "store", "smtp", "metrics"},
    "metrics": {"lib", "conf"},
    "probe": {"lib", "conf", "smtp", "tls"},
    "tls": {"lib", "conf"},
    "daemon": {"lib", "conf", "store", "auth", "smtp", "outbound",
               "metrics", "tls"},
    "cli": {"lib", "conf", "store", "auth", "smtp", "outbound", "metrics",
            "daemon", "probe", "tls"},
}
# Files that are one table, allowed past the size rule.
TABLES = {"conf/config_table.c", "smtp/reply.c"}
MAX_LINES = 1050
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"', re.M)


def sources():
    for folder in sorted(os.listdir(SRC)):
        path = os.path.join(SRC, folder)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            if name.endswith((".c", ".h")):
                yield folder, name, os.path.join(path, name)


def test_every_folder_is_known():
    folders = {f for f, _, _ in sources()}
    assert folders <= set(LAYERS), folders - set(LAYERS)
    assert not [n for n in os.listdir(SRC) if n.endswith((".c", ".h"))], \
        "a source file outside the folders"


def test_includes_run_one_way():
    bad = []
    for folder, name, path in sources():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for used in INCLUDE.findall(text):
            if used != folder and used not in LAYERS[folder]:
                bad.append("%s/%s includes %s/" % (folder, name, used))
    assert not bad, "\n".join(bad)


def test_no_file_over_about_1000_lines():
    big = []
    for folder, name, path in sources():
        rel = folder + "/" + name
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if name.endswith(".c") and n > MAX_LINES and rel not in TABLES:
            big.append("%s: %d lines" % (rel, n))
    assert not big, "\n".join(big)


def objects():
    """(source path relative to src/, object path) of the server's files."""
    found = []
    for root, _, files in os.walk(BUILD):
        for name in files:
            m = re.match(r"src_([a-z]+)_([a-z_0-9]+\.c)\.o$", name)
            if m and os.path.isfile(os.path.join(SRC, m.group(1),
                                                 m.group(2))):
                found.append(("%s/%s" % (m.group(1), m.group(2)),
                              os.path.join(root, name)))
    return found


def symbols(obj):
    out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True,
                         check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        sym, kind = parts[0], parts[1]
        if kind == "U":
            used.add(sym)
        elif kind in "TDBR":
            defined.add(sym)
    return defined, used


def test_no_two_files_call_each_other():
    objs = objects()
    if not objs:
        pytest.fail("no objects under %s: build first (make unit)" % BUILD)
    owner, uses = {}, {}
    for src, obj in objs:
        defined, used = symbols(obj)
        for sym in defined:
            owner[sym] = src
        uses[src] = used
    calls = {src: {owner[s] for s in used if s in owner} - {src}
             for src, used in uses.items()}
    pairs = sorted({tuple(sorted((a, b))) for a in calls for b in calls[a]
                    if a in calls.get(b, ())})
    assert not pairs, "\n".join("%s <-> %s" % p for p in pairs)
