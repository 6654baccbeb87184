"""How fast `members import` brings in a POS file, and in how much memory.

    .venv/bin/python benchmarks/import.py                  # 1,000,000 rows into SQLite
    .venv/bin/python benchmarks/import.py postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/import.py --rows 20000     # smaller, while developing

Writes a POS file of --rows rows to a temp folder (1 row in 1,000 repeats an earlier external
id, 1 in 1,000 an earlier phone: the import reports both), then imports it as the command
does (read_csv, import_members in batches of 500) into a fresh SQLite database in that
folder, and into a PostgreSQL schema of its own when a URL is given; the folder and the
schema are removed at the end. Each import runs in a fresh child process, so its peak RSS
(getrusage) is its own; the child's RSS before it opens the file is printed beside it.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bot import migrate
from bot.config import DEFAULT_PROGRAM, normalize_database_url
from bot.db import make_engine, make_sessionmaker, scratch_schema
from bot.loyalty.import_file import read_csv
from bot.loyalty.member_import import import_members
from bot.loyalty.timeutil import utcnow
from bot.program import load_program

NAMES = ("王小明", "林美玲", "Chen Wei", "陳志豪", "=HYPERLINK(\"x\")", "張淑芬", "李家豪")


def write_pos_file(path: Path, rows: int) -> None:
    """A POS export, written a row at a time (the file is never in memory)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,name,birthday,points,external_id\n")
        for i in range(rows):
            external_id = i - 500 if i % 1000 == 999 else i  # a repeat, reported
            phone = i - 700 if i % 1000 == 998 else i
            out.write(f"09{phone:08d},{NAMES[i % len(NAMES)]}{i},"
                      f"19{50 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d},{i % 2000},"
                      f"POS-{external_id:07d}\n")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_child(url: str, path: str, report) -> None:
    """Import the file as `members import` does, and send back the figures."""
    program = load_program(DEFAULT_PROGRAM)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    before = rss_mb()
    began = time.perf_counter()
    with open(path, encoding="utf-8-sig", newline="") as stream, sessions() as session:
        rows = read_csv(stream)
        checked = time.perf_counter() - began
        repeats = sum(len(keys) for keys in rows.repeats.values())
        result = import_members(session, program, rows, utcnow(), commit=session.commit,
                                actor="bench")
    wall = time.perf_counter() - began
    engine.dispose()
    report.send(dict(rows=result.rows, imported=result.imported, errors=len(result.errors),
                     repeats=repeats, checked=checked, wall=wall, before=before,
                     peak=rss_mb()))


def run(label: str, url: str, path: Path) -> None:
    migrate.upgrade(url)
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=import_child, args=(url, str(path), send))
    child.start()
    figures = receive.recv()
    child.join()
    f = figures
    print(f"{label:<10} {f['rows']:,} rows ({f['imported']:,} imported, {f['errors']:,} "
          f"reported) in {f['wall']:.0f} s: {f['rows'] / f['wall']:,.0f} rows/s; "
          f"checking and counting the file {f['checked']:.1f} s "
          f"({f['repeats']:,} ids and phones remembered); peak RSS {f['peak']:.0f} MB "
          f"({f['before']:.0f} MB before reading the file)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("postgres_url", nargs="?")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    try:
        path = folder / "pos.csv"
        write_pos_file(path, args.rows)
        print(f"file: {args.rows:,} rows, {path.stat().st_size / 1e6:.0f} MB", flush=True)
        run("SQLite", f"sqlite:///{folder / 'bench.db'}", path)
        if args.postgres_url:
            url, drop = scratch_schema(normalize_database_url(args.postgres_url),
                                       f"bench_import_{os.getpid()}")
            try:
                run("PostgreSQL", url, path)
            finally:
                drop()
    finally:
        shutil.rmtree(folder)  # the file and a SQLite database of a million members


if __name__ == "__main__":
    sys.exit(main())
