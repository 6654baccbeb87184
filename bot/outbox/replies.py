"""Free delivery: messages waiting for a member ride the reply to their own message or tap.

LINE bills pushes, not replies, and a reply may hold 5 messages. So a reminder or a nudge
that is waiting for its member (held by its kind's wait, by quiet hours or by the month's
budget) goes out inside the next reply to that member instead of a push. It is taken in the
event's own transaction, marked sent by reply, and put back only if LINE plainly refused the
reply: a reply whose fate is unknown is not repeated, so nothing is shown twice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db import core, transaction
from bot.models import Member, OutboxMessage
from bot.outbox import FREE, WAITING, WAITS, WAITS_FOR, nothing_waits


def member_for_reply(session: Session, line_user_id: str) -> Member | None:
    """The member with this LINE user id, read in one statement with whether anything waits
    to ride their reply, so that carry() need not ask again when nothing does."""
    found = session.execute(_MEMBER_AND_WAITS, {"user": line_user_id}).first()
    if found is None:
        return None
    note_waiting(session, line_user_id, found.waits)
    return found[0]


def note_waiting(session: Session, line_user_id: str, waits: bool) -> None:
    """Whether anything waited for this user when their member record was read (carry()
    and a push's tell() skip their query when nothing did and nothing was queued since)."""
    session.info.setdefault(WAITS, {})[line_user_id] = bool(waits)


_MEMBER_AND_WAITS = (  # built once: every customer event asks it
    select(Member, exists().where(*WAITS_FOR).label("waits"))
    .where(Member.line_user_id == bindparam("user")))


def carry(session: Session, line_user_id: str, room: int, now: dt.datetime
          ) -> list[tuple[int, list[dict]]]:
    """Take what waits for this member, as many messages as fit in `room`, for the reply
    being made: [(row id, its messages)], oldest first. The rows count as sent by reply."""
    if room <= 0:
        return []
    if nothing_waits(session, line_user_id):
        return []  # nothing waited for them, nothing was queued for them since
    chosen, used = {}, 0
    for row_id, payload in core(session).execute(WAITING, {"user": line_user_id}):
        if used + len(payload["messages"]) <= room:
            chosen[row_id] = payload["messages"]
            used += len(payload["messages"])
    if not chosen:
        return []
    taken = set(core(session).execute(
        update(OutboxMessage).where(OutboxMessage.id.in_(chosen), *FREE)
        .values(status="sent", via="reply", sent_at=now, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage.id)).scalars())
    return [(row_id, messages) for row_id, messages in chosen.items() if row_id in taken]


def reply_refused(sessions: sessionmaker[Session], row_ids: list[int], error: str) -> None:
    """LINE refused the reply that carried these rows: they wait again, for a push or the
    next reply."""
    if not row_ids:
        return
    with transaction(sessions) as session:
        session.execute(update(OutboxMessage)
                        .where(OutboxMessage.id.in_(row_ids), OutboxMessage.via == "reply")
                        .values(status="pending", via=None, sent_at=None, last_error=error)
                        .execution_options(synchronize_session=False))
