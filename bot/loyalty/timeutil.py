"""Days are decided in the program's timezone; instants are stored in UTC."""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local_date(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    return instant.astimezone(tz).date()


def start_of_day(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant at which `day` begins in `tz` (correct across DST changes)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)


def end_of_day(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first instant after `day` in `tz`: something valid through `day` expires here."""
    return start_of_day(day + dt.timedelta(days=1), tz)


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day N months later, clamped to the month's end (Jan 31 + 1 month = Feb 28/29)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])
