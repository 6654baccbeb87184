"""Every message to a member goes through here: written with the change it reports,
delivered after the commit, billed as few times as LINE allows.

A push request may carry up to 5 messages for the price of one, so messages due to one
member go out together: rows sharing a push_key are one request, sent with that key as
X-Line-Retry-Key, so a delivery retried after a timeout or a 5xx is never shown twice (LINE
answers 409 to a key it already accepted, which means delivered). A row gets its push_key
(or a multicast batch) before it is first pushed, and keeps it; a row without one is
still free to join another push or to ride a reply (bot/outbox/replies.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, NamedTuple, Protocol

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db import core, dialect_insert, insert_new, one_statement, transaction
from bot.models import Member, OutboxBatch, OutboxMessage
from bot.outbox.holds import hold_for_monthly_limit
from bot.privacy import ref
from bot.program import RECEIPT_KINDS, Program

log = logging.getLogger("bot.outbox")
RETRY_KEY_LIFETIME = dt.timedelta(hours=24)  # LINE forgets a retry key after a day
MULTICAST_MAX = 500
DELIVER_PAGE, DELIVER_CHUNK = 1000, 100  # rows read together; outcomes recorded together
MESSAGES_MAX = 5  # message objects in one push, reply or multicast
QUEUED = "outbox.queued"  # Session.info: rows enqueue() added, with their members, by id
PUSHES = "outbox.pushes"  # Session.info: member id -> [push key, messages in it]
ENQUEUED = "outbox.enqueued"  # Session.info: LINE user ids this transaction queued a message for
WAITS = "outbox.waits"  # Session.info: LINE user id -> whether anything waited for them when
# their member record was read (bot.outbox.replies.note_waiting)


class Sent(Protocol):
    delivered: bool
    retry: bool  # fate unknown, or refused for now: try again later with the same key
    refused: bool  # LINE answered that it did not take it (a 4xx): a resend is safe
    limit_reached: bool  # refused because the month's messages are used up
    error: str


class Sender(Protocol):
    def push(self, user_id: str, messages: list[dict], retry_key: str,
             unit: str | None = None) -> Sent: ...

    def multicast(self, user_ids: list[str], messages: list[dict], retry_key: str,
                  unit: str | None = None) -> Sent: ...


# the unit a push is counted under in LINE's statistics ([messaging] aggregation_units): a
# campaign's own, else the most important kind it carries
UNIT_ORDER = ("receipt", "coupon_used", "expiry_warning", "birthday", "tier", "winback",
              "nudge")


def aggregation_unit(rows: Iterable[Any]) -> str:
    """`campaign_<key>` or the kind, as LINE allows unit names: [A-Za-z0-9_], 1 to 30."""
    rows = list(rows)
    for row in rows:
        if (row.dedupe_key or "").startswith("campaign:"):
            name = "campaign_" + row.dedupe_key.split(":")[1]
            break
    else:
        kinds = [row.kind for row in rows]
        name = min(kinds, key=lambda k: UNIT_ORDER.index(k) if k in UNIT_ORDER else 99)
    return re.sub(r"[^A-Za-z0-9_]", "_", name)[:30] or "other"


# what a customer is told after their own purchase or redemption: [messaging] receipts
# switches these off (a link of a POS record counts: it reports points moved to them)
RECEIPTS = RECEIPT_KINDS


def receipt_key(purchase_id: int) -> str:
    return f"receipt:{purchase_id}"


def coupon_used_key(coupon_id: int) -> str:
    return f"coupon-used:{coupon_id}"


def linked_key(record_id: int) -> str:
    return f"link:{record_id}"


def tell(session: Session, program: Program, member: Member, kind: str, dedupe_key: str,
         build: Callable[[], list[dict]], now: dt.datetime) -> bool:
    """The one way to tell a member about a change: queued with the change, once per dedupe
    key, and pushed after the commit by whoever committed it (see queued_in), or by the
    sender job. Receipts follow [messaging] receipts; `build` renders the messages only when
    they are queued. True if queued now."""
    if kind in RECEIPTS and not program.receipts or not member.line_user_id:
        return False
    messages = build()
    pushes = session.info.setdefault(PUSHES, {})
    first = member.id not in pushes
    none_waits = nothing_waits(session, member.line_user_id)
    if first or pushes[member.id][1] + len(messages) > MESSAGES_MAX:
        pushes[member.id] = [str(uuid.uuid4()), 0]
    key = pushes[member.id][0]
    row = enqueue(session, member, kind, dedupe_key, messages, now, push_key=key)
    if row is None:
        return False
    pushes[member.id][1] += len(messages)
    if first and not none_waits:  # what waits for them (a reminder, a nudge) goes along
        pushes[member.id][1] += _join_waiting(session, member, key, pushes[member.id][1])
    return True


def nothing_waits(session: Session, line_user_id: str) -> bool | None:
    """True when this user's member record was read in this session with nothing waiting
    for them (replies.note_waiting) and nothing has been queued for them since; None when
    no record of theirs was read with that question."""
    noted = session.info.get(WAITS, {}).get(line_user_id)
    if noted is None:
        return None
    return not noted and line_user_id not in session.info.get(ENQUEUED, ())


def tell_later(session: Session, program: Program, member: Member, kind: str,
               dedupe_key: str, build: Callable[[], list[dict]], now: dt.datetime,
               until: dt.datetime) -> bool:
    """Like tell, for news the member is about to hear anyway: it waits until `until` to
    ride the reply to their next message (a claim code they are scanning), and is pushed
    only if none came by then."""
    if kind in RECEIPTS and not program.receipts or not member.line_user_id:
        return False
    row = enqueue(session, member, kind, dedupe_key, build(), now, hold_until=until)
    if row is None:
        return False
    session.info.get(QUEUED, {}).pop(row.id, None)  # not pushed at the commit: it waits
    return True


def withdraw(session: Session, dedupe_key: str) -> None:
    """Take back a message that has not gone yet (in no push, no multicast, not sent): the
    change it told of was undone. Its dedupe key is free again for the next such change."""
    session.execute(delete(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key,
                                                *FREE))


class QueuedRow(NamedTuple):
    """A row enqueue() wrote, as queued_in() needs it: built from what was written, not
    loaded back (an ORM object would decode the payload it was just given)."""
    id: int
    line_user_id: str
    payload: dict
    push_key: str | None
    retry_key: str
    kind: str
    dedupe_key: str


def enqueue(session: Session, member: Member, kind: str, dedupe_key: str,
            messages: list[dict], now: dt.datetime, *, push_key: str | None = None,
            hold_until: dt.datetime | None = None) -> QueuedRow | None:
    """Queue a message once per dedupe key; None if it was queued before or cannot be sent.

    One INSERT ... ON CONFLICT DO NOTHING RETURNING id: no savepoint, and the row's id
    comes back (a row another transaction holds is waited for, then skipped)."""
    if not member.line_user_id:
        return None
    values = {"member_id": member.id, "line_user_id": member.line_user_id, "kind": kind,
              "dedupe_key": dedupe_key, "payload": {"messages": messages},
              "retry_key": str(uuid.uuid4()), "created_at": now, "push_key": push_key,
              "hold_until": hold_until}
    row_id = core(session).execute(_enqueue_statement(session.get_bind().dialect.name),
                                   values).scalar()
    session.info.setdefault(ENQUEUED, set()).add(member.line_user_id)
    if row_id is None:
        return None
    row = QueuedRow(row_id, member.line_user_id, values["payload"], push_key,
                    values["retry_key"], kind, dedupe_key)
    session.info.setdefault(QUEUED, {})[row.id] = (row, member)  # for queued_in()
    return row


def _join_waiting(session: Session, member: Member, key: str, used: int) -> int:
    """Give this member's waiting messages (not pushed yet, in no push) the push `key`, as
    many as fit beside `used` messages; they join the QUEUED rows. Returns messages added."""
    waiting = core(session).execute(WAITING, {"user": member.line_user_id}).all()
    chosen, room = [], MESSAGES_MAX - used
    for row_id, payload in waiting:
        if len(payload["messages"]) <= room:
            chosen.append(row_id)
            room -= len(payload["messages"])
    if not chosen:
        return 0
    joined = session.scalars(
        update(OutboxMessage).where(OutboxMessage.id.in_(chosen), *FREE)
        .values(push_key=key).returning(OutboxMessage)
        .execution_options(synchronize_session=False)).all()
    queued = session.info.setdefault(QUEUED, {})
    for row in joined:
        queued[row.id] = (row, member)
    return sum(len(row.payload["messages"]) for row in joined)


# a row still free to be combined or carried: pending, in no push and no multicast yet
FREE = (OutboxMessage.status == "pending", OutboxMessage.push_key.is_(None),
        OutboxMessage.batch_id.is_(None))
# what waits for one member, oldest first: it may join their next push or ride a reply (a
# receipt kind only when it was told to wait: tell_later)
def waits_for(user: Any) -> tuple:
    """The conditions of a row waiting for LINE user `user` (a value or a column)."""
    return (OutboxMessage.line_user_id == user, *FREE,
            or_(OutboxMessage.kind.not_in(RECEIPT_KINDS), OutboxMessage.hold_until.is_not(None)))


WAITS_FOR = waits_for(bindparam("user"))
WAITING = (select(OutboxMessage.id, OutboxMessage.payload).where(*WAITS_FOR)
           .order_by(OutboxMessage.id).limit(MESSAGES_MAX)
           .with_for_update(skip_locked=True))


def hold_until(program: Program, kind: str, now: dt.datetime) -> dt.datetime | None:
    """Until when a message of this kind waits for the member's next message or tap (a
    free reply) before it may be pushed; None: it may go at once."""
    hours = program.wait_hours.get(kind, 0)
    return now + dt.timedelta(hours=hours) if hours else None


@functools.cache
def _enqueue_statement(dialect: str) -> Any:
    """enqueue's INSERT, built once per database kind."""
    return (dialect_insert(dialect, _OUTBOX).on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(_OUTBOX.c.id))


def enqueue_many(session: Session, program: Program,
                 pushes: list[tuple[Member, str, str, list[dict]]], now: dt.datetime) -> int:
    """Queue many (member, kind, dedupe key, messages) at once, each at most once per dedupe
    key, each kind held as long as the program lets it wait for a free reply; returns how
    many were new. Members without a LINE user id are left out."""
    rows = [{"member_id": member.id, "line_user_id": member.line_user_id, "kind": kind,
             "dedupe_key": key, "payload": {"messages": messages},
             "retry_key": str(uuid.uuid4()), "created_at": now, "status": "pending",
             "attempts": 0, "last_error": "", "push_key": None,
             "hold_until": hold_until(program, kind, now)}
            for member, kind, key, messages in pushes if member.line_user_id and messages]
    session.info.setdefault(ENQUEUED, set()).update(row["line_user_id"] for row in rows)
    return len(insert_new(session, OutboxMessage.__table__, rows, "dedupe_key"))


class Queued(NamedTuple):
    """A pending row as a delivery needs it; `status` is its member's."""

    id: int
    line_user_id: str
    payload: dict
    push_key: str
    status: str | None
    kind: str = ""
    dedupe_key: str = ""


def deliver(sessions: sessionmaker[Session], sender: Sender, ids: Iterable[int],
            now: dt.datetime, *, threads: int = 1) -> int:
    """Try to deliver these pending rows now; returns how many LINE has accepted.

    Rows are read a page at a time and their outcomes written as they come in, a chunk per
    transaction; no transaction is held while LINE is called. A crash before an outcome is
    written leaves the row pending: the next attempt repeats the push with the row's own
    retry key, which LINE answers with 409 (already delivered), so nothing reaches a
    customer twice. With `threads` > 1 pushes go out concurrently, each customer's in order.
    """
    ids, delivered = list(ids), 0
    pool = ThreadPoolExecutor(threads) if threads > 1 and len(ids) > 1 else None
    try:
        for start in range(0, len(ids), DELIVER_PAGE):
            page = ids[start:start + DELIVER_PAGE]
            with transaction(sessions) as session:  # a row in no push goes alone: claim it
                session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(page), *FREE)
                                .values(push_key=OutboxMessage.retry_key)
                                .execution_options(synchronize_session=False))
                keys = select(OutboxMessage.push_key).where(OutboxMessage.id.in_(page))
                rows = session.execute(
                    select(OutboxMessage.id, OutboxMessage.line_user_id, OutboxMessage.payload,
                           OutboxMessage.push_key, Member.status, OutboxMessage.kind,
                           OutboxMessage.dedupe_key)
                    .outerjoin(Member, Member.id == OutboxMessage.member_id)
                    .where(OutboxMessage.push_key.in_(keys), OutboxMessage.status == "pending")
                    .order_by(OutboxMessage.id)).all()
            delivered += _push_rows(sessions, sender, rows, now, pool)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    return delivered


def queued_in(session: Session) -> list[Queued]:
    """Every row this session has enqueued and not handed out yet, as deliver_queued takes
    them after the commit: from what enqueue() kept, not read back."""
    queued = session.info.pop(QUEUED, {})
    session.info.pop(PUSHES, None)
    return [Queued(row.id, row.line_user_id, row.payload, row.push_key or row.retry_key,
                   member.status, row.kind, row.dedupe_key)
            for row, member in (queued[row_id] for row_id in sorted(queued))]


def deliver_queued(sessions: sessionmaker[Session], sender: Sender, rows: list[Queued],
                   now: dt.datetime) -> int:
    """deliver() for rows the caller committed a moment ago and still holds (queued_in): the
    same pushes and outcomes, without reading the rows back. Should the sender job have
    pushed one meanwhile, its retry key makes LINE answer 409: it is still shown once."""
    return _push_rows(sessions, sender, rows, now, None)


def _push_rows(sessions: sessionmaker[Session], sender: Sender, rows: list, now: dt.datetime,
               pool: ThreadPoolExecutor | None) -> int:
    """Push pending rows, those sharing a push key as one request (blocked members' are
    skipped), recording outcomes a chunk at a time; returns the rows LINE accepted."""
    def push_all(pushes: list[list]) -> list[tuple[list[int], Sent]]:
        return [([row.id for row in push], sender.push(
            push[0].line_user_id, [m for row in push for m in row.payload["messages"]],
            push[0].push_key, unit=aggregation_unit(push))) for push in pushes]

    delivered = 0
    done: list[tuple[int, str, Sent | None]] = [
        (row.id, f"member {row.status}", None) for row in rows if row.status != "active"]
    by_user: dict[str, dict[str, list]] = {}  # one customer's pushes stay in order
    for row in rows:
        if row.status == "active":
            by_user.setdefault(row.line_user_id, {}).setdefault(row.push_key, []).append(row)
    groups = [list(pushes.values()) for pushes in by_user.values()]
    results = (future.result() for future in as_completed(
        [pool.submit(push_all, group) for group in groups])) if pool \
        else map(push_all, groups)
    for outcomes in results:
        for row_ids, outcome in outcomes:
            delivered += len(row_ids) if outcome.delivered else 0
            done += [(row_id, "", outcome) for row_id in row_ids]
        if len(done) >= DELIVER_CHUNK:
            _finish(sessions, now, done)
            done = []
    _finish(sessions, now, done)
    return delivered


_OUTBOX = OutboxMessage.__table__
_SENT = (  # built once: rows pushed, by id (see _finish)
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)), _OUTBOX.c.status != "sent")
    .values(status="sent", last_error="", attempts=_OUTBOX.c.attempts + 1, via="push",
            sent_at=bindparam("now", type_=_OUTBOX.c.sent_at.type),
            first_attempt_at=func.coalesce(_OUTBOX.c.first_attempt_at,
                                           bindparam("now", type_=_OUTBOX.c.sent_at.type))))


def _finish(sessions: sessionmaker[Session], now: dt.datetime,
            results: list[tuple[int, str, Sent | None]]) -> None:
    """Record (row id, why skipped, outcome or None if skipped) for attempted rows, in one
    transaction. A push LINE refused (a 4xx: it did not take it) keeps no first attempt, so
    it never lapses: resending it is safe. Hitting the month's limit holds every push."""
    if not results:
        return
    sent = [row_id for row_id, _, outcome in results if outcome and outcome.delivered]
    others = [result for result in results if not (result[2] and result[2].delivered)]
    if not others:  # the common case: one statement
        with one_statement(sessions) as conn:
            conn.execute(_SENT, {"ids": sent, "now": now})
        return
    with transaction(sessions) as session:
        if sent:  # the common case, in one statement
            session.execute(_SENT, {"ids": sent, "now": now})
        if not others:
            return
        rows = {row.id: row for row in session.execute(
            select(OutboxMessage).where(OutboxMessage.id.in_([r[0] for r in others]))
            .order_by(OutboxMessage.id).with_for_update()
            .execution_options(populate_existing=True)).scalars()}
        for row_id, why, outcome in others:
            row = rows[row_id]
            if row.status == "sent":
                continue
            if outcome is None:
                row.status, row.last_error = "skipped", why
                continue
            _attempted(row, outcome, now)
        limited = [o.error for _, _, o in others if o and o.limit_reached]
        if limited:
            hold_for_monthly_limit(session, now, limited[0])


def _attempted(row: OutboxMessage, outcome: Sent, now: dt.datetime) -> None:
    row.attempts += 1
    if not outcome.refused:
        row.first_attempt_at = row.first_attempt_at or now
    row.status = "pending" if outcome.retry else "failed"
    row.last_error = outcome.error
    if (row.status == "pending" and row.first_attempt_at
            and now - row.first_attempt_at > RETRY_KEY_LIFETIME):
        row.status = "failed"  # the key has lapsed: resending could deliver twice
        row.last_error = f"undelivered for 24 hours, not resent: {outcome.error}"
    if row.status == "failed":
        log.warning("push %s to %s failed: %s", row.kind, ref(row.line_user_id),
                    row.last_error)


def fail_lapsed(sessions: sessionmaker[Session], now: dt.datetime) -> int:
    """Mark failed, unsent, every pending push and batch first tried over RETRY_KEY_LIFETIME
    ago (held meanwhile by the budget or a stopped clock): LINE has forgotten its retry
    key, so a resend could show it twice. Returns how many recipients lost it."""
    cutoff, error = now - RETRY_KEY_LIFETIME, "undelivered for 24 hours, not resent"
    with transaction(sessions) as session:
        batches = session.execute(
            update(OutboxBatch).where(OutboxBatch.status == "pending",
                                      OutboxBatch.first_attempt_at < cutoff)
            .values(status="failed", last_error=error).returning(OutboxBatch.id)).scalars().all()
        rows = session.execute(
            update(OutboxMessage).where(OutboxMessage.status == "pending", or_(
                OutboxMessage.batch_id.in_(batches),
                OutboxMessage.first_attempt_at < cutoff))
            .values(status="failed", last_error=error)
            .returning(OutboxMessage.kind, OutboxMessage.line_user_id)).all()
    for kind, user in rows:
        log.warning("push %s to %s failed: %s", kind, ref(user), error)
    return len(rows)


class Grouped(NamedTuple):
    batches: list[int]  # multicasts made of the rows
    singles: list[int]  # rows left to push one by one


def make_batches(sessions: sessionmaker[Session], ids: list[int], now: dt.datetime
                 ) -> Grouped:
    """Group rows of one kind with identical messages (2 or more) into multicast batches of
    <= 500. A batch's recipients and retry key are fixed here, so resending it after a crash
    or timeout repeats the very same request. A row tried before keeps its own retry key:
    LINE may have it already, and only that key makes a resend safe.
    """
    with transaction(sessions) as session:
        rows = session.execute(
            select(OutboxMessage).join(Member, Member.id == OutboxMessage.member_id)
            .where(OutboxMessage.id.in_(ids), *FREE, OutboxMessage.first_attempt_at.is_(None),
                   Member.status == "active")
            .order_by(OutboxMessage.id).with_for_update(of=OutboxMessage)
            .execution_options(populate_existing=True)).scalars().all()
        groups: dict[tuple[str, str], list[OutboxMessage]] = {}
        for row in rows:  # one kind a batch: quiet hours and priority go by kind
            groups.setdefault((row.kind, json.dumps(row.payload, sort_keys=True)), []
                              ).append(row)
        batches, batched = [], set()
        for group in groups.values():
            if len(group) < 2:
                continue
            for start in range(0, len(group), MULTICAST_MAX):
                batches.append(_batch(session, group[start:start + MULTICAST_MAX], now))
                batched.update(row.id for row in group[start:start + MULTICAST_MAX])
    return Grouped(batches, [row_id for row_id in ids if row_id not in batched])


def _batch(session: Session, rows: list[OutboxMessage], now: dt.datetime) -> int:
    batch = OutboxBatch(recipients={"to": [r.line_user_id for r in rows]},
                        payload={**rows[0].payload, "unit": aggregation_unit(rows[:1])},
                        retry_key=str(uuid.uuid4()), created_at=now)
    session.add(batch)
    session.flush()
    for row in rows:
        row.batch_id = batch.id
    return batch.id


class WaitingBatch(NamedTuple):
    id: int
    kind: str
    recipients: int


def waiting_batches(sessions: sessionmaker[Session]) -> list[WaitingBatch]:
    """Pending batches (a retry, or one a crash left unconfirmed), for the sender to weigh
    against quiet hours and the budget like any push."""
    kind = (select(func.min(OutboxMessage.kind)).where(OutboxMessage.batch_id == OutboxBatch.id)
            .scalar_subquery())
    with sessions() as session:
        return [WaitingBatch(batch_id, kind or "", len(recipients["to"]))
                for batch_id, recipients, kind in session.execute(
                    select(OutboxBatch.id, OutboxBatch.recipients, kind)
                    .where(OutboxBatch.status == "pending").order_by(OutboxBatch.id))]


def deliver_batches(sessions: sessionmaker[Session], sender: Sender, now: dt.datetime,
                    ids: Iterable[int]) -> int:
    """Send these batches if still pending; returns recipients reached."""
    ids = list(ids)
    if not ids:
        return 0
    with sessions() as session:
        batches = session.execute(select(OutboxBatch.id, OutboxBatch.recipients,
                                         OutboxBatch.payload, OutboxBatch.retry_key)
                                  .where(OutboxBatch.id.in_(ids),
                                         OutboxBatch.status == "pending")
                                  .order_by(OutboxBatch.id)).all()
    reached = 0
    for batch_id, recipients, payload, key in batches:
        outcome = sender.multicast(recipients["to"], payload["messages"], key,
                                   unit=payload.get("unit"))
        status = "sent" if outcome.delivered else "pending" if outcome.retry else "failed"
        with transaction(sessions) as session:
            batch = session.get(OutboxBatch, batch_id)
            batch.attempts += 1
            if not outcome.refused:  # LINE did not take a refused one: it may go any time
                batch.first_attempt_at = batch.first_attempt_at or now
            if outcome.limit_reached:
                hold_for_monthly_limit(session, now, outcome.error)
            if (status == "pending" and batch.first_attempt_at
                    and now - batch.first_attempt_at > RETRY_KEY_LIFETIME):
                status = "failed"
            batch.status, batch.last_error = status, outcome.error
            batch.sent_at = now if status == "sent" else None
            if status != "pending":
                session.execute(update(OutboxMessage).where(OutboxMessage.batch_id == batch_id)
                                .values(status=status, sent_at=batch.sent_at,
                                        last_error=outcome.error,
                                        via="multicast" if status == "sent" else None))
        reached += len(recipients["to"]) if status == "sent" else 0
    return reached
