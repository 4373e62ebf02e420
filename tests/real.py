#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Real programs under the preload, one case per process: `real.py CASE`.

python3 (with and without PYTHONMALLOC=malloc), sqlite3, git, bash and perl
give the exit status, stdout and stderr of a bare run, and snapshots whose
per-callsite sums equal the process totals.
"""
import sys
import tempfile

from mtlib import (check, eq, python3, same_as_without, show_json, snaps, BASH, GIT, PERL, PY, SQL,
                   main)
CASE_SUITE = "preload"


def case_real_python():
    same_as_without([python3(), "-c", PY])


def case_real_python_malloc():
    d, bare = same_as_without([python3(), "-c", PY], env={"PYTHONMALLOC": "malloc"})
    main = [s for s in snaps(d)]
    js = show_json(main[-1])
    check(js["totals"]["heap_alloc_count"] > 100000, "with PYTHONMALLOC=malloc objects reach malloc")


def case_real_sqlite3():
    d, bare = same_as_without(["sqlite3", ":memory:"], input=SQL.encode())
    check(bare.stdout.endswith(b"ok\n"), bare.stdout)


def case_real_git():
    same_as_without(["bash", "-c", GIT], cwd_factory=lambda: tempfile.mkdtemp(prefix="mt-git-"))


def case_real_bash():
    d, bare = same_as_without(["bash", "-c", BASH])
    eq(bare.returncode, 3, "bash exit status")


def case_real_perl():
    same_as_without(["perl", "-e", PERL])


if __name__ == "__main__":
    sys.exit(main(globals()))
