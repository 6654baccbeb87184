"""What a synced SQLite commit costs on this disk, against one that is not synced.

    .venv/bin/python benchmarks/sqlite_commit.py [--commits 2000] [--folder DIR]

A card screen's claim and tap count commit without the sync (`PRAGMA synchronous=NORMAL` for
those transactions alone, bot.db.autocommit(synced=False)); every other commit is synced
(FULL). Each commit here is one small insert in its own `BEGIN IMMEDIATE` transaction in WAL
mode, on the engine the bot uses (bot.db.make_engine), as the webhook's claims are: the
figures are the wall time a writer holds the lock for, and the CPU (user and system) of the
process, per commit. Run it in the folder the database will live in (--folder): the sync's
cost is the disk's.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import shutil
import tempfile
import time

from sqlalchemy import text

from bot import migrate
from bot.db import autocommit, make_engine

_ACTIONS = itertools.count()  # a new tap row each insert


def measure(url: str, synced: bool, commits: int) -> tuple[float, float, float]:
    """(wall ms, user ms, system ms) per commit."""
    base = make_engine(url, pool_size=1, max_overflow=0)
    engine = autocommit(base, 5.0, synced=synced)
    insert = text("INSERT INTO tap_counts (day, source, action, taps) "
                  "VALUES (:day, 'bench', :action, 1)")
    try:
        for _ in range(50):  # warm up: the connection, the statement, the WAL file
            with engine.begin() as conn:
                conn.execute(insert, {"day": "2026-01-01", "action": f"a{next(_ACTIONS)}"})
        started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(commits):
            with engine.begin() as conn:
                conn.execute(insert, {"day": "2026-01-02", "action": f"a{next(_ACTIONS)}"})
        after = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter() - started
    finally:
        base.dispose()
    return (wall * 1000 / commits, (after.ru_utime - before.ru_utime) * 1000 / commits,
            (after.ru_stime - before.ru_stime) * 1000 / commits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--folder", default=None, help="where the database file goes")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(dir=args.folder)
    try:
        url = f"sqlite:///{os.path.join(folder, 'commit.db')}"
        migrate.upgrade(url)
        print(f"{args.commits} commits of one small insert each, WAL, in {folder}")
        print(f"{'commit':22} {'wall ms':>8} {'user ms':>8} {'system ms':>10}")
        for synced, label in ((True, "synced (FULL)"), (False, "not synced (NORMAL)"),
                              (True, "synced (FULL)"), (False, "not synced (NORMAL)")):
            wall, user, system = measure(url, synced, args.commits)
            print(f"{label:22} {wall:8.3f} {user:8.3f} {system:10.3f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

if __name__ == "__main__":
    main()
