"""Every push goes through here: written with the change it reports, delivered after commit.

Each row carries its own X-Line-Retry-Key, so a delivery retried after a timeout or a 5xx is
never shown twice (LINE answers 409 to a key it already accepted, which means delivered).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.db import transaction
from bot.models import Member, OutboxMessage

log = logging.getLogger("bot.outbox")
RETRY_KEY_LIFETIME = dt.timedelta(hours=24)  # LINE forgets a retry key after a day


class Outcome(Protocol):
    delivered: bool
    retry: bool
    error: str


class Sender(Protocol):
    def push(self, user_id: str, messages: list[dict], retry_key: str) -> Outcome: ...


def enqueue(session: Session, member: Member, kind: str, dedupe_key: str,
            messages: list[dict], now: dt.datetime) -> OutboxMessage | None:
    """Queue a push once per dedupe key; None if it was queued before or cannot be sent."""
    if not member.line_user_id:
        return None
    try:
        with session.begin_nested():
            row = OutboxMessage(member_id=member.id, line_user_id=member.line_user_id, kind=kind,
                                dedupe_key=dedupe_key, payload={"messages": messages},
                                retry_key=str(uuid.uuid4()), created_at=now)
            session.add(row)
    except IntegrityError:
        return None
    return row


def deliver(sessions: sessionmaker[Session], sender: Sender, ids: Iterable[int],
            now: dt.datetime) -> int:
    """Try to deliver these pending rows now; returns how many LINE has accepted."""
    delivered = 0
    for row_id in ids:
        with sessions() as session:
            row = session.get(OutboxMessage, row_id)
            member = row and row.member_id and session.get(Member, row.member_id)
            if row is None or row.status != "pending":
                continue
            blocked = member is not None and member.status == "blocked"
            user, messages, key = row.line_user_id, row.payload["messages"], row.retry_key
        if blocked:
            _finish(sessions, row_id, now, status="skipped", error="member blocked the account")
            continue
        outcome = sender.push(user, messages, key)  # no transaction held during the call
        if outcome.delivered:
            delivered += 1
            _finish(sessions, row_id, now, status="sent")
        else:
            _finish(sessions, row_id, now, status="pending" if outcome.retry else "failed",
                    error=outcome.error)
    return delivered


def _finish(sessions: sessionmaker[Session], row_id: int, now: dt.datetime, *, status: str,
            error: str = "") -> None:
    with transaction(sessions) as session:
        row = session.execute(select(OutboxMessage).where(OutboxMessage.id == row_id)
                              .with_for_update()).scalar_one()
        if row.status == "sent":
            return
        row.attempts += 1
        row.first_attempt_at = row.first_attempt_at or now
        row.status, row.last_error = status, error
        if status == "sent":
            row.sent_at = now
        if status == "pending" and now - row.first_attempt_at > RETRY_KEY_LIFETIME:
            row.status = "failed"  # the key has lapsed: resending could deliver twice
            row.last_error = f"undelivered for 24 hours, not resent: {error}"
        if row.status == "failed":
            log.warning("push %s to %s failed: %s", row.kind, row.line_user_id, row.last_error)
