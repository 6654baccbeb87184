"""How fast the loyalty core records purchases, redeems coupons and expires a backlog.

    .venv/bin/python benchmarks/ledger.py                      # SQLite in a temp folder
    .venv/bin/python benchmarks/ledger.py postgresql://postgres@127.0.0.1:5432/test

Prints figures; asserts nothing. On PostgreSQL it works in a schema of its own and drops it.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
import tracemalloc

from scratch import run_on_scratch  # beside this script

from bot.config import DEFAULT_PROGRAM
from bot.db import make_engine, make_sessionmaker, transaction
from bot.loyalty.coupons import issue_coupon, redeem_coupon
from bot.loyalty.ledger import expire_due_points
from bot.loyalty.members import adjust_points, register_member
from bot.loyalty.purchases import record_purchase
from bot.program import load_program

MEMBERS, PURCHASES, BACKLOG = 200, 2000, 20_000
START = dt.datetime(2025, 1, 1, 2, tzinfo=dt.UTC)


def timed(label: str, count: int, work) -> None:
    samples = []
    began = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        work(i)
        samples.append(time.perf_counter() - t0)
    total = time.perf_counter() - began
    samples.sort()
    print(f"{label:<34} {count / total:8.0f}/s   p50 {statistics.median(samples) * 1000:6.2f} ms"
          f"   p99 {samples[int(len(samples) * 0.99)] * 1000:6.2f} ms")


def run(url: str) -> None:
    program = load_program(DEFAULT_PROGRAM)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    print(f"database: {engine.dialect.name}")
    members = []

    def join(i: int) -> None:
        with transaction(sessions) as s:
            members.append(register_member(s, program, f"U{i:032d}", START).member.id)
    timed("register member (+welcome coupon)", MEMBERS, join)

    def buy(i: int) -> None:
        when = START + dt.timedelta(hours=i)
        with transaction(sessions) as s:
            record_purchase(s, program, members[i % MEMBERS], 120 + i % 900, when,
                            source="pos", order_id=f"o{i}", actor="bench")
    timed("record purchase", PURCHASES, buy)

    codes = []
    with transaction(sessions) as s:
        for i in range(500):
            codes.append(issue_coupon(s, program, members[i % MEMBERS], "nt50", START,
                                      reason="bench").code)

    def redeem(i: int) -> None:
        with transaction(sessions) as s:
            redeem_coupon(s, program, codes[i], START, actor="bench", order_amount=300)
    timed("redeem coupon", len(codes), redeem)

    backlog(sessions, members, program)
    engine.dispose()


def backlog(sessions, members, program) -> None:
    """Many small lots, all due at once: expiry must go in small transactions."""
    with transaction(sessions) as s:
        for i in range(BACKLOG):
            adjust_points(s, program, members[i % MEMBERS], 1, START, reason="bench",
                          actor="bench")
    far = START + dt.timedelta(days=800)
    tracemalloc.start()
    began, chunks, total = time.perf_counter(), 0, 0
    while True:
        with transaction(sessions) as s:
            done, points = expire_due_points(s, far, limit=50)
        if not done:
            break
        chunks, total = chunks + 1, total + points
    elapsed = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    print(f"expire backlog: {total} points of {MEMBERS} members in {chunks} transactions, "
          f"{elapsed:.2f} s, peak Python memory {peak:.1f} MB")


if __name__ == "__main__":
    run_on_scratch(run)
