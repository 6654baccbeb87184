"""The outbox as the console shows it: what is queued, sent, failed and dropped this month,
the latest failures with LINE's reason, and a retry for a push LINE definitely refused.

A push LINE refused with a 4xx never took it: the sender records such a row as failed with
no first attempt (bot.outbox._attempted), so sending it again cannot show it twice. Any
other failure (a timeout, a 5xx, a retry key past its 24 hours, a multicast) has an unknown
fate, and is never sent again (README: no double delivery)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.errors import RetryUnsafe
from bot.loyalty.timeutil import local_date, start_of_day
from bot.models import Member, OutboxMessage
from bot.program import Program

LATEST = 20  # failed messages listed


@dataclass(frozen=True)
class Counts:
    pending: int  # queued now, whenever they were queued
    pushed: int  # sent this month by push or multicast (billed)
    replied: int  # sent this month inside a reply (free)
    failed: int  # queued this month and given up
    dropped: int  # queued this month and dropped (not delivered in time)


@dataclass(frozen=True)
class Failed:
    id: int
    kind: str
    member_code: str | None
    created_at: dt.datetime
    attempts: int
    error: str
    refused: bool  # LINE refused it (a 4xx): the only kind the console may send again


# refused by LINE with a 4xx: failed, tried, never taken (no first attempt), and alone (a
# multicast's rows share the batch's fate)
REFUSED = and_(OutboxMessage.status == "failed", OutboxMessage.attempts > 0,
               OutboxMessage.first_attempt_at.is_(None), OutboxMessage.batch_id.is_(None),
               OutboxMessage.line_user_id != "")


def month_start(program: Program, now: dt.datetime) -> dt.datetime:
    """The first instant of this month in the shop's timezone."""
    return start_of_day(local_date(now, program.timezone).replace(day=1), program.timezone)


def counts(session: Session, program: Program, now: dt.datetime) -> Counts:
    since = month_start(program, now)
    status, sent_now = OutboxMessage.status, OutboxMessage.sent_at >= since
    replied = OutboxMessage.via == "reply"  # a push made before `via` was kept has none
    queued_now = OutboxMessage.created_at >= since

    def count_if(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)
    row = session.execute(select(
        count_if(status == "pending"),
        count_if((status == "sent") & sent_now & or_(OutboxMessage.via.is_(None), ~replied)),
        count_if((status == "sent") & sent_now & replied),
        count_if((status == "failed") & queued_now),
        count_if((status == "dropped") & queued_now))).one()
    return Counts(*(int(n) for n in row))


def latest_failed(session: Session, limit: int = LATEST) -> list[Failed]:
    """The latest failed messages, newest first, with LINE's reason and whether it refused."""
    rows = session.execute(
        select(OutboxMessage.id, OutboxMessage.kind, Member.member_code,
               OutboxMessage.created_at, OutboxMessage.attempts, OutboxMessage.last_error,
               case((REFUSED, True), else_=False))
        .outerjoin(Member, Member.id == OutboxMessage.member_id)
        .where(OutboxMessage.status == "failed")
        .order_by(OutboxMessage.id.desc()).limit(limit)).all()
    return [Failed(*row[:6], bool(row[6])) for row in rows]


def retry_refused(session: Session, outbox_id: int, now: dt.datetime, *, actor: str
                  ) -> OutboxMessage:
    """Put a push LINE refused back in the queue for the sender job, as a new push with a
    new retry key; anything else (fate unknown, sent, pending, a multicast's) raises
    RetryUnsafe and changes nothing."""
    row = session.scalar(select(OutboxMessage).where(OutboxMessage.id == outbox_id, REFUSED)
                         .with_for_update())
    if row is None:
        raise RetryUnsafe()
    error = row.last_error
    row.status, row.last_error = "pending", ""
    # a key of its own: the refused push's key may since have gone out with another of its
    # rows, and LINE would answer 409 (taken as delivered) to this one under it
    row.retry_key, row.push_key = str(uuid.uuid4()), None
    session.flush()
    audit.record(session, "outbox.retry", member_id=row.member_id, actor=actor, at=now,
                 outbox_id=row.id, kind=row.kind, error=error[:200])
    return row
