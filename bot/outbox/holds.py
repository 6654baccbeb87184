"""Holds on pushing, shared by every process: LINE has said the month's messages are used up.

LINE refuses a push past the plan's monthly allowance with 429 "You have reached your
monthly limit". Retrying every minute would only be refused again, and the outbox's 24-hour
rule would then give up on messages that are perfectly safe to send later (LINE never took
them). So every push waits until the month turns; replies, which are free, go on.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import SendHold

log = logging.getLogger("bot.outbox")
MONTHLY_LIMIT = "line-monthly-limit"
LINE_TIME = ZoneInfo("Asia/Tokyo")  # LINE's own clock: its statistics are dated in UTC+9
RETRY_AFTER_TURN = dt.timedelta(hours=1)  # refused again just after the turn: try hourly


def month_turn(now: dt.datetime) -> dt.datetime:
    """The first instant of next month, on LINE's clock."""
    local = now.astimezone(LINE_TIME)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return dt.datetime(year, month, 1, tzinfo=LINE_TIME).astimezone(dt.UTC)


def hold_for_monthly_limit(session: Session, now: dt.datetime, reason: str) -> dt.datetime:
    """Hold every push until the month turns (an hour, when the month has only just turned
    and LINE still refuses: its counter may reset a little later than ours)."""
    local = now.astimezone(LINE_TIME)
    until = now + RETRY_AFTER_TURN if local.day == 1 else month_turn(now)
    hold = session.get(SendHold, MONTHLY_LIMIT, with_for_update=True)
    if hold is None:
        session.add(SendHold(name=MONTHLY_LIMIT, until=until, reason=reason, created_at=now))
    else:
        hold.until, hold.reason, hold.created_at = max(hold.until, until), reason, now
    session.flush()
    log.warning("LINE's monthly message limit reached: pushes wait until %s", until.isoformat())
    return until


def pushes_held(session: Session, now: dt.datetime) -> SendHold | None:
    """The hold in force now, if any."""
    return session.scalar(select(SendHold).where(SendHold.until > now)
                          .order_by(SendHold.until.desc()).limit(1))
