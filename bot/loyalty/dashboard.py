"""The console dashboard's default figures, kept ready by a clock job.

Two reports (the last 30 days and the 30 before) read every member, purchase, coupon and
ledger row of their periods: over a second with a million members. The `dashboard` job
computes them every few minutes into one row; the page shows that row, with its age, while
it is for today's default period and at most MAX_AGE old, and computes live otherwise (any
other dates, or a clock that is not running).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot.loyalty.report import Report, build_report, report_from_dict, report_period
from bot.loyalty.timeutil import local_date
from bot.models import DashboardSnapshot
from bot.program import Program

NAME = "default"
EVERY_MINUTES = 10  # the job's schedule (bot.jobs)
MAX_AGE = dt.timedelta(minutes=3 * EVERY_MINUTES)  # older: computed live instead


@dataclass(frozen=True)
class Figures:
    current: Report
    previous: Report
    computed_at: dt.datetime | None  # None: computed just now, for this request


def periods(start: dt.datetime, end: dt.datetime
            ) -> tuple[tuple[dt.datetime, dt.datetime], tuple[dt.datetime, dt.datetime]]:
    """The period and the one of the same length just before it."""
    return (start, end), (start - (end - start), start)


def compute(session: Session, program: Program, start: dt.datetime, end: dt.datetime,
            now: dt.datetime) -> Figures:
    """The dashboard's two reports, computed now (the month's allowance on the current)."""
    (start, end), before = periods(start, end)
    return Figures(build_report(session, program, start, end, now, quota=program.allowance),
                   build_report(session, program, *before, now), None)


def refresh(session: Session, program: Program, now: dt.datetime) -> str:
    """Compute the default period's figures as of `now` and keep them (the clock job)."""
    began = time.perf_counter()
    start, end = report_period(program, None, None, now)
    figures = compute(session, program, start, end, now)
    took = round(1000 * (time.perf_counter() - began))
    row = session.get(DashboardSnapshot, NAME) or DashboardSnapshot(name=NAME)
    row.first_day, row.last_day = figures.current.first_day, figures.current.last_day
    row.computed_at, row.took_ms = now, took
    row.current, row.previous = figures.current.to_dict(), figures.previous.to_dict()
    session.merge(row)
    session.flush()
    return f"dashboard figures for {row.first_day} to {row.last_day} computed in {took} ms"


def kept(session: Session, program: Program, now: dt.datetime) -> Figures | None:
    """The kept figures, if they are for today's default period and fresh enough."""
    row = session.get(DashboardSnapshot, NAME)
    if row is None:
        return None
    start, end = report_period(program, None, None, now)
    last = local_date(end - dt.timedelta(microseconds=1), program.timezone)
    computed = row.computed_at.replace(tzinfo=dt.UTC) if row.computed_at.tzinfo is None \
        else row.computed_at
    if (row.first_day, row.last_day) != (local_date(start, program.timezone), last) \
            or not dt.timedelta(0) <= now - computed <= MAX_AGE:
        return None
    return Figures(report_from_dict(row.current), report_from_dict(row.previous), computed)
