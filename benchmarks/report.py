"""How long the analytics report takes over 30,000 customers, 8,000 of whom bought twice.

    .venv/bin/python benchmarks/report.py                      # SQLite in a temp folder
    .venv/bin/python benchmarks/report.py postgresql://postgres@127.0.0.1:5432/test

The data are those of tests/test_report.py's 26.7 % repurchase example (which checks the
numbers): the bulk insert and the report are timed apart. Prints figures; asserts nothing.
On PostgreSQL it works in a schema of its own and drops it.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests/ lives next to bot/, outside the package
    sys.path.insert(0, str(ROOT))

from scratch import run_on_scratch  # noqa: E402  (beside this script)

from bot.config import DEFAULT_PROGRAM  # noqa: E402
from bot.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from bot.loyalty.report import build_report, period  # noqa: E402
from bot.program import load_program  # noqa: E402
from tests.test_report import bulk_customers  # noqa: E402

TAIPEI = ZoneInfo("Asia/Taipei")


def run(url: str) -> None:
    program = load_program(DEFAULT_PROGRAM)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    print(f"database: {engine.dialect.name}")
    began = time.perf_counter()
    with transaction(sessions) as session:
        bulk_customers(session, program, 30_000, 8_000,
                       joined=dt.datetime(2026, 2, 1, 12, tzinfo=TAIPEI),
                       first=dt.datetime(2026, 3, 1, 12, tzinfo=TAIPEI),
                       second=dt.datetime(2026, 3, 11, 12, tzinfo=TAIPEI))
    print(f"insert 30,000 members, 38,000 purchases  {time.perf_counter() - began:6.2f} s")
    start, end = period(program, dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    for attempt in (1, 2):
        began = time.perf_counter()
        with sessions() as session:
            result = build_report(session, program, start, end, end)
        print(f"report for 2026, run {attempt}               {time.perf_counter() - began:6.2f} s"
              f"   (repurchase rate {result.sales.repurchase_rate} %)")
    engine.dispose()


if __name__ == "__main__":
    run_on_scratch(run)
