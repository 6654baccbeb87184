"""How long `import_members` takes for a 10,000-row POS file, progress reported per batch.

    .venv/bin/python benchmarks/member_import.py                      # SQLite in a temp folder
    .venv/bin/python benchmarks/member_import.py postgresql://postgres@127.0.0.1:5432/test

The rows are made like those of tests/test_member_data.py, which checks the batches, the
progress and the totals on a few hundred rows. Prints figures; asserts nothing. On
PostgreSQL it works in a schema of its own and drops it.
"""

from __future__ import annotations

import datetime as dt
import io
import time

from scratch import run_on_scratch  # beside this script

from bot.config import DEFAULT_PROGRAM
from bot.db import make_engine, make_sessionmaker
from bot.loyalty.import_file import read_csv
from bot.loyalty.member_import import import_members
from bot.program import load_program

ROWS = 10_000
NOW = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC)


def run(url: str) -> None:
    program = load_program(DEFAULT_PROGRAM)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    text = "phone,name,birthday,points,external_id\n" + "".join(
        f"09{i:08d},Member {i},1990-01-{1 + i % 28:02d},{i % 500},POS-{i}\n" for i in range(ROWS))
    batches = []
    began = time.perf_counter()
    rows = read_csv(io.StringIO(text))
    checked = time.perf_counter()
    with sessions() as session:
        result = import_members(session, program, rows, NOW, commit=session.commit,
                                progress=lambda done, total: batches.append(time.perf_counter()))
    done = time.perf_counter()
    engine.dispose()
    seconds = done - checked
    slowest = max(b - a for a, b in zip([checked, *batches[:-1]], batches, strict=True))
    print(f"database: {engine.dialect.name}")
    print(f"read and check {ROWS:,} rows  {checked - began:6.2f} s")
    print(f"import them                {seconds:6.2f} s   {result.imported / seconds:,.0f} rows/s"
          f"   {len(batches)} batches, the slowest {slowest:.2f} s")

if __name__ == "__main__":
    run_on_scratch(run)
