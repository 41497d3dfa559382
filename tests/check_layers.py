#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check_layers: the layers of shoal run one way; this says where they do not.

    cmd/       the binaries: shoal, shoal-node, shoal-gateway   layer 3: anything below
      |        (only `shoal` composes node/ and gateway/)
    node/      gateway/                                         layer 2: runtime/, proto/;
      |          |                                                       never each other
    runtime/   log, options, daemon, clocks, Redis, membership  layer 1: proto/
      |
    proto/     pure codecs and rules                            layer 0: proto/ only; no threads,
                                                                 sockets, Redis or ZeroMQ
  (tests/ is outside the layers: a test may include and link anything.)

What is checked, for every .c/.h under proto/ runtime/ node/ gateway/ cmd/:
  - each #include "x.h" (or <x.h> naming a layer's header) is resolved as the compiler does
    (the including file's folder first, then the layer folders, which are the include
    directories) and may name only a header of the same folder or of a lower layer; a quoted
    include that names no header in the repo (a system header written with quotes), one that
    names a header outside the layer folders, and one that names headers in several folders
    (ambiguous) are reported too;
  - proto/ includes no <pthread.h>, <threads.h>, <sys/socket.h>, <hiredis/...>, <zmq.h>,
    <czmq.h> (proto is pure);
  - in each layer's CMakeLists.txt, target_link_libraries names only shoal_* targets of its own
    or a lower layer (a target belongs to the folder whose CMakeLists.txt has its add_library;
    the top-level CMakeLists.txt's, such as shoal_warnings, serve every layer).
Each violation is one line, file:line: what it includes or links, and the rule it breaks.
Exit status: 0 clean, 1 violations, 2 usage error.

    python3 tests/check_layers.py [--root DIR]
"""

import argparse
import os
import re
import sys

# Folder -> layer rank. A folder may use its own files and those of strictly lower rank, so
# two folders of the same rank (node/, gateway/) never use each other.
LAYERS = {"proto": 0, "runtime": 1, "node": 2, "gateway": 2, "cmd": 3}

# System headers proto/ must not include: proto/ is pure (no threads, sockets, Redis, ZeroMQ).
PROTO_FORBIDDEN = re.compile(r"^(pthread\.h|threads\.h|sys/socket\.h|hiredis/.*|hiredis\.h|"
                             r"zmq\.h|czmq\.h)$")

# Known exceptions, each with its reason: (file, included name) -> why. A waiver whose include
# is gone is itself reported (stale), so this list only shrinks.
WAIVERS = {
    ("proto/httpresp.c", "sys/socket.h"):
        "AF_INET/AF_INET6 for inet_ntop() only, no socket is opened "
        "(to be dropped from proto/httpresp.c)",
}

SKIP_DIRS = {".git", "build"}
INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]')
CALL_RE = re.compile(r"\b(add_library|add_executable|target_link_libraries)\s*\(", re.I)
SHOAL_TARGET_RE = re.compile(r"^shoal_[A-Za-z0-9_]+$")


def rule_text(folder):
    lower = sorted((f for f, r in LAYERS.items() if r < LAYERS[folder]),
                   key=lambda f: (-LAYERS[f], f))
    if not lower:
        return "%s/ (layer %d) is pure: it may use only %s/" % (folder, LAYERS[folder], folder)
    return "%s/ (layer %d) may use only %s" % (
        folder, LAYERS[folder], ", ".join("%s/" % f for f in [folder] + lower))


def explain(src_folder, dst_folder):
    """Why src_folder may not use dst_folder (None when it may)."""
    if dst_folder == src_folder:
        return None
    if dst_folder not in LAYERS:
        return "%s is outside the layers; %s" % (dst_folder or "the top level",
                                                 rule_text(src_folder))
    if LAYERS[dst_folder] < LAYERS[src_folder]:
        return None
    if LAYERS[dst_folder] == LAYERS[src_folder]:
        return "%s/ and %s/ never use each other (only cmd/ composes both)" % (src_folder,
                                                                            dst_folder)
    return "%s/ is a higher layer (%d) than %s/; %s" % (
        dst_folder, LAYERS[dst_folder], src_folder, rule_text(src_folder))


def top_folder(rel):
    return rel.split("/", 1)[0] if "/" in rel else ""


def walk(root):
    """Every file below root as a path relative to it, '/'-separated, build dirs left out."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if d not in SKIP_DIRS and not d.startswith("build"))
        for f in sorted(filenames):
            out.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
    return out


def strip_c_comments(text):
    """Comments blanked out, newlines kept (so line numbers hold); strings left alone."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def includes(path):
    """(line number, '<' or '"', name) for each #include, skipping comments and #if 0 blocks."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = strip_c_comments(f.read()).split("\n")
    out, dead = [], 0  # dead: depth of #if 0 nesting we are inside
    for no, line in enumerate(lines, 1):
        s = line.strip()
        if dead:
            if re.match(r"#\s*if", s):
                dead += 1
            elif re.match(r"#\s*endif", s) or (dead == 1 and re.match(r"#\s*(else|elif)", s)):
                dead -= 1
            continue
        if re.match(r"#\s*if\s+0\b", s):
            dead = 1
            continue
        m = INCLUDE_RE.match(line)
        if m:
            out.append((no, m.group(1), m.group(2).strip()))
    return out


class Tree:
    def __init__(self, root):
        self.root = root
        self.files = walk(root)
        self.headers = [f for f in self.files if f.endswith(".h")]
        self.header_set = set(self.headers)

    def resolve(self, src, name):
        """The repo headers a quoted include in src names: its own folder first (as the
        compiler does), else every header whose path ends with /name in a layer folder root
        or, failing that, anywhere in the repo."""
        here = os.path.normpath(os.path.join(os.path.dirname(src), name)).replace(os.sep, "/")
        if here in self.header_set:
            return [here]
        in_layers = [f"{folder}/{name}" for folder in LAYERS
                     if f"{folder}/{name}" in self.header_set]
        if in_layers:
            return in_layers
        return [h for h in self.headers if h == name or h.endswith("/" + name)]


def check_includes(tree, used_waivers):
    out = []
    for rel in tree.files:
        folder = top_folder(rel)
        if folder not in LAYERS or not rel.endswith((".c", ".h")):
            continue
        for no, kind, name in includes(os.path.join(tree.root, rel)):
            where = "%s:%d" % (rel, no)
            if kind == "<":
                if folder == "proto" and PROTO_FORBIDDEN.match(name):
                    if (rel, name) in WAIVERS:
                        used_waivers.add((rel, name))
                        continue
                    out.append("%s: includes <%s>: proto/ is pure (no threads, sockets, Redis "
                               "or ZeroMQ)" % (where, name))
                    continue
                # <x.h> reaches a layer's header too (the layer folders are include
                # directories): the same rules apply; anything else is a system header.
                found = [f"{d}/{name}" for d in LAYERS if f"{d}/{name}" in tree.header_set]
                if not found:
                    continue
            else:
                found = tree.resolve(rel, name)
            if not found:
                out.append('%s: includes "%s", which is no header in the repo (a system '
                           'header? write <%s>)' % (where, name, name))
                continue
            if len(found) > 1:
                out.append('%s: includes "%s", which is ambiguous: %s' % (
                    where, name, ", ".join(found)))
                continue
            why = explain(folder, top_folder(found[0]))
            if why:
                out.append('%s: includes "%s" (%s): %s' % (where, name, found[0], why))
    return out


# ---- CMake ---------------------------------------------------------------------------------


def cmake_calls(path):
    """(command, line number, argument tokens) for add_library / add_executable /
    target_link_libraries calls; comments dropped, calls may span lines."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    text = re.sub(r"#[^\n]*", "", text)
    out = []
    for m in CALL_RE.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        args = text[m.end():i - 1].split()
        out.append((m.group(1).lower(), text.count("\n", 0, m.start()) + 1, args))
    return out


def check_cmake(tree):
    out = []
    owner = {}  # target -> folder of the CMakeLists.txt that defines it ("" = top level)
    lists = [f for f in tree.files if f == "CMakeLists.txt" or f.endswith("/CMakeLists.txt")]
    calls = {f: cmake_calls(os.path.join(tree.root, f)) for f in lists}
    for f, cs in calls.items():
        for cmd, no, args in cs:
            if cmd in ("add_library", "add_executable") and args:
                owner.setdefault(args[0], top_folder(f))
    for f, cs in sorted(calls.items()):
        folder = top_folder(f)
        if folder not in LAYERS:
            continue
        for cmd, no, args in cs:
            if cmd != "target_link_libraries" or not args:
                continue
            for dep in args[1:]:
                if not SHOAL_TARGET_RE.match(dep):
                    continue
                where = "%s:%d" % (f, no)
                if dep not in owner:
                    out.append("%s: %s links %s, which no add_library defines" % (
                        where, args[0], dep))
                    continue
                dst = owner[dep]
                if dst == "":  # the top-level CMakeLists.txt: shared by every layer
                    continue
                why = explain(folder, dst)
                if why:
                    out.append("%s: %s links %s (defined in %s/CMakeLists.txt): %s" % (
                        where, args[0], dep, dst, why))
    return out


def check(root):
    """All violations in the tree at root, one line each, sorted by file."""
    tree = Tree(root)
    used = set()
    out = check_includes(tree, used) + check_cmake(tree)
    for (rel, name), why in sorted(WAIVERS.items()):
        if (rel, name) not in used and os.path.exists(os.path.join(root, rel)):
            out.append("%s: the waiver for <%s> is stale (no such include any more): remove it "
                       "from WAIVERS in tests/check_layers.py" % (rel, name))
    return out, sorted(used)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="check_layers.py", description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="the source tree (default: the one this script is in)")
    args = ap.parse_args(argv)
    if not all(os.path.isdir(os.path.join(args.root, d)) for d in LAYERS):
        print("check_layers: %s has not all of %s" % (
            args.root, ", ".join(d + "/" for d in LAYERS)), file=sys.stderr)
        return 2
    violations, waived = check(args.root)
    for rel, name in waived:
        print("waived: %s includes <%s>: %s" % (rel, name, WAIVERS[(rel, name)]))
    for v in violations:
        print(v)
    if violations:
        print("check_layers: %d violation%s of the layer rules (see --help)" % (
            len(violations), "" if len(violations) == 1 else "s"))
        return 1
    print("check_layers: layers ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
