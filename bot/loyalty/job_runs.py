"""Job-run bookkeeping: when each scheduled job last started and completed, and what it did."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.models import JobRun


def last_runs(session: Session) -> dict[str, JobRun]:
    """Each job's record of its last completed run, by job name (jobs never run are absent)."""
    return {row.name: row for row in session.scalars(select(JobRun))}


def seconds_since_clock_ran(session: Session, now: dt.datetime) -> int | None:
    """Whole seconds from the last completed run of any job to `now` (None if no job ever
    completed): one small query, for /healthz. A run by hand (`jobs run`, the simulator)
    counts too, as of the time it ran as; a run as of a later time than `now` counts as 0."""
    last = session.scalar(select(func.max(JobRun.last_completed_at)))
    return None if last is None else max(0, int((now - last).total_seconds()))


def start_run(session: Session, name: str, now: dt.datetime) -> dt.datetime | None:
    """Record that job `name` starts as of `now`; returns when it last completed (or None)."""
    row = session.get(JobRun, name)
    if row is None:
        try:
            with session.begin_nested():
                row = JobRun(name=name)
                session.add(row)
        except IntegrityError:  # another clock made it first
            row = session.get(JobRun, name)
    last = row.last_completed_at
    row.last_started_at = now
    session.flush()
    return last


def finish_run(session: Session, name: str, now: dt.datetime, summary: str) -> None:
    """Record that job `name` completed as of `now` (a later completion is kept) and its
    summary."""
    row = session.get(JobRun, name)
    if row.last_completed_at is None or row.last_completed_at < now:
        row.last_completed_at = now
    row.last_summary = summary[:1000]
    session.flush()


def fail_run(session: Session, name: str, now: dt.datetime, error: str) -> None:
    """Record that a run of job `name` raised at `now` (the owner's alerts show it until the
    job completes again)."""
    row = session.get(JobRun, name) or JobRun(name=name)
    row.last_failed_at, row.last_error = now, error[:1000]
    session.add(row)
    session.flush()
