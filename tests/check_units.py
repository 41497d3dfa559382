#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check the systemd units in deploy/systemd/ with the tool that consumes them.

`systemd-analyze verify` reads each unit the way systemd would (unknown keys, bad values, a
missing executable) but exits 0 on most complaints, so any line it prints about our files is a
failure here. The units name /usr/local/bin; the copies checked name the built binaries instead
(--bin), so a unit that starts a binary we do not build fails too. Each ExecStart is then run
with --print-config appended (an empty file standing in for its /etc/shoal config), so a flag
the binary no longer has fails."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", required=True, help="deploy/systemd")
    ap.add_argument("--bin", required=True, help="directory of the built shoal binaries")
    args = ap.parse_args()
    tool = shutil.which("systemd-analyze")
    if not tool:
        print("systemd-analyze not found (Debian package systemd)", file=sys.stderr)
        return 77
    units = sorted(f for f in os.listdir(args.units) if f.endswith(".service"))
    if len(units) != 3:
        print(f"expected the three roles' units, found {units}", file=sys.stderr)
        return 1
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        names = []
        for u in units:
            text = open(os.path.join(args.units, u)).read()
            text = text.replace("/usr/local/bin/", os.path.abspath(args.bin) + "/")
            open(os.path.join(tmp, u), "w").write(text)
            names.append(os.path.join(tmp, u.replace("@.service", "@n1.service")))
        r = subprocess.run([tool, "verify", *names], capture_output=True, text=True, timeout=60,
                           cwd=tmp)
        complaints = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
        for line in complaints:
            print(f"systemd-analyze: {line}", file=sys.stderr)
        failed += len(complaints) > 0 or r.returncode != 0
        # Every ExecStart names flags of the binary it starts: --print-config parses them all
        # (with an empty config file standing in for /etc/shoal/...).
        for u in units:
            for line in open(os.path.join(tmp, u)):
                if not line.startswith("ExecStart="):
                    continue
                argv = line.split("=", 1)[1].split()
                conf = os.path.join(tmp, "empty.conf")
                open(conf, "w").close()
                argv = [conf if a.startswith("/etc/shoal/") else a.replace("%i", "n1")
                        for a in argv]
                r = subprocess.run([*argv, "--print-config"], capture_output=True, text=True,
                                   timeout=30)
                if r.returncode != 0:
                    print(f"{u}: {' '.join(argv)} --print-config: exit {r.returncode}: "
                          f"{r.stderr.strip()}", file=sys.stderr)
                    failed += 1
    print(f"{len(units)} units checked, {failed} problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
