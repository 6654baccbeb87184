"""The outbox sender: most important pushes first, within quiet hours and the month's
allowance, each member's due messages combined into one billed push."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, NamedTuple, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db import transaction
from bot.loyalty.timeutil import local_date, start_of_day
from bot.models import Member, OutboxMessage
from bot.outbox import (
    FREE,
    MESSAGES_MAX,
    Sender,
    deliver,
    deliver_batches,
    fail_lapsed,
    make_batches,
    waiting_batches,
)
from bot.outbox.holds import pushes_held
from bot.program import Program

log = logging.getLogger("bot.sender")
# Lower goes first when pushes are scarce: receipts and confirmations, then warnings ...
PRIORITY = {"receipt": 0, "coupon_used": 0, "expiry_warning": 1, "birthday": 2, "tier": 2,
            "nudge": 3, "winback": 4, "campaign": 5}
# these wait out quiet hours
SCHEDULED = {"expiry_warning", "birthday", "tier", "nudge", "winback", "campaign"}
# these may use the month's last messages (the reserve); the others leave them
ESSENTIAL = {"receipt", "coupon_used", "expiry_warning"}
BATCH = 1000  # pending rows looked at together
THREADS = 8  # pushes in flight at once: LINE is a network round trip away
RUN_SECONDS = 45  # a run stops taking new pages before the next minute's run is due


class QuotaSender(Sender, Protocol):
    """A sender that can also say how many pushes LINE still allows this month."""

    def pushes_left(self) -> int | None: ...


def in_quiet_hours(program: Program, now: dt.datetime) -> bool:
    if program.quiet_hours is None:
        return False
    start, end = program.quiet_hours
    local = now.astimezone(program.timezone).time()
    return start <= local or local < end if start > end else start <= local < end


def billed(since: dt.datetime) -> Any:
    """A query of the messages LINE billed since a time: one per push request (however many
    rows it carried) and per multicast recipient; replies are free."""
    sent = (OutboxMessage.status == "sent", OutboxMessage.sent_at >= since,
            or_(OutboxMessage.via.is_(None), OutboxMessage.via != "reply"))
    pushes = func.count(func.distinct(func.coalesce(OutboxMessage.push_key,
                                                    OutboxMessage.retry_key)))
    return (select(pushes).where(*sent, OutboxMessage.batch_id.is_(None)),
            select(func.count()).where(*sent, OutboxMessage.batch_id.is_not(None))
            .select_from(OutboxMessage))


def month_sent(session: Session, program: Program, now: dt.datetime) -> int:
    """Messages billed so far this month (in the shop's timezone)."""
    first = local_date(now, program.timezone).replace(day=1)
    singles, multicast = billed(start_of_day(first, program.timezone))
    return (session.scalar(singles) or 0) + (session.scalar(multicast) or 0)


class Due(NamedTuple):
    """A push the sender may deliver: a queued row, a combined push, or a batch made in an
    earlier run."""

    kind: str
    recipients: int
    row_id: int | None = None
    batch_id: int | None = None
    push_key: str | None = None


class Gate:
    """What this run may send: nothing scheduled in quiet hours, and no more recipients than
    the month's allowance and LINE's quota leave (left None: no limit), the last `reserve`
    of them kept for receipts and expiry warnings. First sends and retries pass the same
    gate."""

    def __init__(self, quiet: bool, left: int | None, reserve: int = 0) -> None:
        self.quiet, self.left, self.reserve = quiet, left, reserve
        self.chosen = self.held_quiet = self.held_budget = 0

    def admit(self, due: list[Due]) -> list[Due]:
        """The ones that may go, most important kinds first."""
        chosen = []
        for item in sorted(due, key=lambda d: (PRIORITY.get(d.kind, 0), d.batch_id is None,
                                                d.batch_id or d.row_id or 0, d.push_key or "")):
            if self.quiet and item.kind in SCHEDULED:
                self.held_quiet += item.recipients
            elif self.left is not None and item.recipients > self.left - (
                    0 if item.kind in ESSENTIAL else self.reserve):
                self.held_budget += item.recipients  # a batch is never split: it waits
            else:
                self.left = None if self.left is None else self.left - item.recipients
                self.chosen += item.recipients
                chosen.append(item)
        return chosen


def _gate(sessions: sessionmaker[Session], client: QuotaSender, program: Program,
          now: dt.datetime) -> Gate:
    with sessions() as session:
        budget = (program.allowance - month_sent(session, program, now)
                  if program.allowance is not None else None)
    limits = [x for x in (budget, client.pushes_left()) if x is not None]
    return Gate(in_quiet_hours(program, now), max(0, min(limits)) if limits else None,
                program.reserve)


def send_pending(sessions: sessionmaker[Session], client: QuotaSender, program: Program,
                 now: dt.datetime) -> str:
    """Deliver what may go now; report what was held back for quiet hours or the budget.

    Works through the queue a page at a time (most important kinds first within a page) for
    up to RUN_SECONDS, so one run a minute keeps up with a large morning of messages.
    Batches made earlier (a retry, or a crash's leftover) join the first page.
    """
    lapsed, deadline = fail_lapsed(sessions, now), time.monotonic() + RUN_SECONDS
    dropped = drop_stale(sessions, program, now)
    with sessions() as session:
        hold = pushes_held(session, now)
    if hold is not None:
        return (f"pushes held until {hold.until.isoformat()}: {hold.reason}"
                + _dropped(dropped))
    due = [Due(b.kind, b.recipients, batch_id=b.id) for b in waiting_batches(sessions)]
    gate, after, delivered = None, 0, 0
    quiet = in_quiet_hours(program, now)
    while time.monotonic() < deadline:
        with sessions() as session:
            rows = session.execute(select(OutboxMessage.id, OutboxMessage.kind,
                                          OutboxMessage.line_user_id, OutboxMessage.push_key)
                                   .where(OutboxMessage.status == "pending",
                                          OutboxMessage.batch_id.is_(None),
                                          OutboxMessage.id > after,
                                          or_(OutboxMessage.hold_until.is_(None),
                                              OutboxMessage.hold_until <= now,
                                              OutboxMessage.push_key.is_not(None)))
                                   .order_by(OutboxMessage.id).limit(BATCH)).all()
        due += combine(sessions, rows, now, quiet)
        if not due:
            break
        gate = gate or _gate(sessions, client, program, now)  # LINE is asked once a run
        delivered += _deliver(sessions, client, gate.admit(due), now)
        if not rows:
            break
        after, due = rows[-1].id, []
    return _summary(gate, delivered, lapsed) + _waiting(sessions, now) + _dropped(dropped)


def combine(sessions: sessionmaker[Session], rows: list, now: dt.datetime, quiet: bool
            ) -> list[Due]:
    """The pushes these due rows make: a member's rows in no push yet become one push (with
    whatever else waits for them that may go now, 5 messages at most), joined to it before
    it is first tried; rows already in a push go with it; a member's single row stays free
    for a multicast. One Due per push, of its most urgent kind."""
    free: dict[str, list[int]] = {}
    keyed: dict[str, list[str]] = {}
    for row in rows:
        if row.push_key is None:
            free.setdefault(row.line_user_id, []).append(row.id)
        else:
            keyed.setdefault(row.push_key, []).append(row.kind)
    joined = _join(sessions, list(free), quiet)
    keyed.update(joined.pushes)
    due = [Due(min(kinds, key=lambda k: PRIORITY.get(k, 0)), 1, push_key=key)
           for key, kinds in keyed.items()]
    kinds = {row.id: row.kind for row in rows}
    return due + [Due(kinds[row_id], 1, row_id=row_id) for user, ids in free.items()
                  if user not in joined.users for row_id in ids]


class Joined(NamedTuple):
    pushes: dict[str, list[str]]  # push key -> kinds of its rows
    users: set[str]  # members whose rows went into those pushes


def _join(sessions: sessionmaker[Session], users: list[str], quiet: bool) -> Joined:
    """For each member with a due row and something else free (due, or still waiting for a
    reply: it rides along unbilled), give those rows push keys in id order, 5 messages a
    push. A member with one free row keeps it free, for a multicast."""
    if not users:
        return Joined({}, set())
    allowed = [OutboxMessage.kind.not_in(SCHEDULED)] if quiet else []
    made: dict[str, list[str]] = {}
    with transaction(sessions) as session:
        rows = session.execute(
            select(OutboxMessage).join(Member, Member.id == OutboxMessage.member_id)
            .where(OutboxMessage.line_user_id.in_(users), *FREE, *allowed,
                   Member.status == "active")
            .order_by(OutboxMessage.line_user_id, OutboxMessage.id).with_for_update()
            .execution_options(populate_existing=True)).scalars().all()
        by_user: dict[str, list[OutboxMessage]] = {}
        for row in rows:
            by_user.setdefault(row.line_user_id, []).append(row)
        for user_rows in by_user.values():
            if len(user_rows) < 2:
                continue
            key, used = None, MESSAGES_MAX
            for row in user_rows:
                size = len(row.payload["messages"])
                if used + size > MESSAGES_MAX:
                    key, used = row.retry_key, 0
                row.push_key, used = key, used + size
                made.setdefault(key, []).append(row.kind)
    return Joined(made, {user for user, user_rows in by_user.items() if len(user_rows) > 1})


def drop_stale(sessions: sessionmaker[Session], program: Program, now: dt.datetime) -> int:
    """Drop messages of kinds that go stale (a nudge) once they have waited longer than the
    program allows without being pushed or carried; returns how many."""
    dropped = 0
    with transaction(sessions) as session:
        for kind, days in program.drop_after_days.items():
            dropped += session.execute(
                update(OutboxMessage).where(
                    OutboxMessage.kind == kind, *FREE,
                    OutboxMessage.created_at <= now - dt.timedelta(days=days))
                .values(status="dropped",
                        last_error=f"not delivered within {days} days: dropped")
                .execution_options(synchronize_session=False)).rowcount
    return dropped


def _waiting(sessions: sessionmaker[Session], now: dt.datetime) -> str:
    with sessions() as session:
        count = session.scalar(select(func.count()).select_from(OutboxMessage).where(
            *FREE, OutboxMessage.hold_until > now))
    return f"; {count} waiting for a free reply" if count else ""


def _dropped(count: int) -> str:
    return f"; {count} dropped as stale" if count else ""


def _deliver(sessions: sessionmaker[Session], client: QuotaSender, chosen: list[Due],
             now: dt.datetime) -> int:
    grouped = make_batches(sessions, [d.row_id for d in chosen if d.row_id is not None], now)
    earlier = [d.batch_id for d in chosen if d.batch_id is not None]
    keys = [d.push_key for d in chosen if d.push_key is not None]
    with sessions() as session:
        pushes = list(session.scalars(select(func.min(OutboxMessage.id)).where(
            OutboxMessage.push_key.in_(keys), OutboxMessage.status == "pending")
            .group_by(OutboxMessage.push_key))) if keys else []
    return (deliver_batches(sessions, client, now, earlier + grouped.batches)
            + deliver(sessions, client, grouped.singles + pushes, now, threads=THREADS))


def _summary(gate: Gate | None, delivered: int, lapsed: int) -> str:
    given_up = f"; {lapsed} undelivered for 24 hours, not resent" if lapsed else ""
    if gate is None:
        return f"nothing to send{given_up}"
    if gate.held_quiet or gate.held_budget:
        log.info("held back %d pushes for quiet hours and %d for the push budget",
                 gate.held_quiet, gate.held_budget)
    return (f"{delivered} of {gate.chosen} delivered; held {gate.held_quiet} for quiet hours, "
            f"{gate.held_budget} for the budget{given_up}")
