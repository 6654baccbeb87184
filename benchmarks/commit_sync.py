"""What a commit synced to disk costs, against one that is not: the card screens' claims.

    .venv/bin/python benchmarks/commit_sync.py [--commits 2000] [--folder DIR]
    .venv/bin/python benchmarks/commit_sync.py --database postgresql://postgres@127.0.0.1:5432/test

A card screen's claim and tap count commit without waiting for the disk; every other commit
does (see bot.loyalty.taps.claim_and_count). Each commit here is one small insert of a tap
count in a transaction of its own, on the engine the bot uses for those claims
(bot.db.autocommit):
- SQLite (a file in --folder, WAL): `BEGIN IMMEDIATE`, the insert, COMMIT, with `PRAGMA
  synchronous` FULL (synced) or NORMAL (not), as autocommit(synced=...) sets it. The wall
  time is how long a writer holds the database's one write lock.
- PostgreSQL (a schema of its own, dropped after): the insert in autocommit, as is or with
  `synchronous_commit` set off for its own transaction inside the statement, as the claim
  does. The wall time is how long the worker waits for its answer.
Printed per commit: wall time, and this process's CPU (user, system). Run it where the
database lives: the sync's cost is the disk's.
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
from bot.db import autocommit, make_engine, scratch_schema

_ACTIONS = itertools.count()  # a new tap row each insert
_INSERT = ("INSERT INTO tap_counts (day, source, action, taps) "
           "SELECT :day, 'bench', :action, 1")
_UNSYNCED = "WITH unsynced AS (SELECT set_config('synchronous_commit', 'off', true)) "


def measure(url: str, synced: bool, commits: int) -> tuple[float, float, float]:
    """(wall ms, user ms, system ms) per commit."""
    base = make_engine(url, pool_size=1, max_overflow=0)
    engine = autocommit(base, 5.0, synced=synced)
    postgresql = base.dialect.name == "postgresql"
    insert = text(_INSERT if synced or not postgresql else _UNSYNCED + _INSERT + " FROM unsynced")
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
    parser.add_argument("--folder", default=None, help="where the SQLite file goes")
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL")
    args = parser.parse_args()
    folder, drop = tempfile.mkdtemp(dir=args.folder), None
    try:
        if "://" in args.database:
            url, drop = scratch_schema(args.database, f"bench_commit_{os.getpid()}")
        else:
            url = f"sqlite:///{os.path.join(folder, 'commit.db')}"
        migrate.upgrade(url)
        where = "PostgreSQL" if drop else f"SQLite (WAL) in {folder}"
        print(f"{args.commits} commits of one small insert each, {where}")
        print(f"{'commit':14} {'wall ms':>8} {'user ms':>8} {'system ms':>10}")
        for synced in (True, False, True, False):
            wall, user, system = measure(url, synced, args.commits)
            label = "synced" if synced else "not synced"
            print(f"{label:14} {wall:8.3f} {user:8.3f} {system:10.3f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if drop:
            drop()


if __name__ == "__main__":
    main()
