"""The outbox sender: most important pushes first, within quiet hours and the push budget."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import NamedTuple, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.loyalty.timeutil import local_date, start_of_day
from bot.models import OutboxMessage
from bot.outbox import (
    Sender,
    deliver,
    deliver_batches,
    fail_lapsed,
    make_batches,
    waiting_batches,
)
from bot.program import Program

log = logging.getLogger("bot.sender")
# Lower goes first when pushes are scarce: receipts and confirmations, then warnings ...
PRIORITY = {"receipt": 0, "coupon_used": 0, "expiry_warning": 1, "birthday": 2, "tier": 2,
            "nudge": 3, "winback": 4, "campaign": 5}
# these wait out quiet hours
SCHEDULED = {"expiry_warning", "birthday", "tier", "nudge", "winback", "campaign"}
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


def month_sent(session: Session, program: Program, now: dt.datetime) -> int:
    first = local_date(now, program.timezone).replace(day=1)
    return session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status == "sent",
        OutboxMessage.sent_at >= start_of_day(first, program.timezone))) or 0


class Due(NamedTuple):
    """A push the sender may deliver: a queued row, or a batch made in an earlier run."""

    kind: str
    recipients: int
    row_id: int | None = None
    batch_id: int | None = None


class Gate:
    """What this run may send: nothing scheduled in quiet hours, and no more recipients than
    the month's budget and LINE's quota leave (left None: no limit). First sends and retries
    pass the same gate."""

    def __init__(self, quiet: bool, left: int | None) -> None:
        self.quiet, self.left = quiet, left
        self.chosen = self.held_quiet = self.held_budget = 0

    def admit(self, due: list[Due]) -> list[Due]:
        """The ones that may go, most important kinds first."""
        chosen = []
        for item in sorted(due, key=lambda d: (PRIORITY.get(d.kind, 0), d.batch_id is None,
                                                d.batch_id or d.row_id)):
            if self.quiet and item.kind in SCHEDULED:
                self.held_quiet += item.recipients
            elif self.left is not None and item.recipients > self.left:
                self.held_budget += item.recipients  # a batch is never split: it waits
            else:
                self.left = None if self.left is None else self.left - item.recipients
                self.chosen += item.recipients
                chosen.append(item)
        return chosen


def _gate(sessions: sessionmaker[Session], client: QuotaSender, program: Program,
          now: dt.datetime) -> Gate:
    with sessions() as session:
        budget = (program.monthly_push_budget - month_sent(session, program, now)
                  if program.monthly_push_budget is not None else None)
    limits = [x for x in (budget, client.pushes_left()) if x is not None]
    return Gate(in_quiet_hours(program, now), max(0, min(limits)) if limits else None)


def send_pending(sessions: sessionmaker[Session], client: QuotaSender, program: Program,
                 now: dt.datetime) -> str:
    """Deliver what may go now; report what was held back for quiet hours or the budget.

    Works through the queue a page at a time (most important kinds first within a page) for
    up to RUN_SECONDS, so one run a minute keeps up with a large morning of messages.
    Batches made earlier (a retry, or a crash's leftover) join the first page.
    """
    lapsed, deadline = fail_lapsed(sessions, now), time.monotonic() + RUN_SECONDS
    due = [Due(b.kind, b.recipients, batch_id=b.id) for b in waiting_batches(sessions)]
    gate, after, delivered = None, 0, 0
    while time.monotonic() < deadline:
        with sessions() as session:
            rows = session.execute(select(OutboxMessage.id, OutboxMessage.kind)
                                   .where(OutboxMessage.status == "pending",
                                          OutboxMessage.batch_id.is_(None),
                                          OutboxMessage.id > after)
                                   .order_by(OutboxMessage.id).limit(BATCH)).all()
        due += [Due(kind, 1, row_id=row_id) for row_id, kind in rows]
        if not due:
            break
        gate = gate or _gate(sessions, client, program, now)  # LINE is asked once a run
        delivered += _deliver(sessions, client, gate.admit(due), now)
        if not rows:
            break
        after, due = rows[-1].id, []
    return _summary(gate, delivered, lapsed)


def _deliver(sessions: sessionmaker[Session], client: QuotaSender, chosen: list[Due],
             now: dt.datetime) -> int:
    grouped = make_batches(sessions, [d.row_id for d in chosen if d.row_id is not None], now)
    earlier = [d.batch_id for d in chosen if d.batch_id is not None]
    return (deliver_batches(sessions, client, now, earlier + grouped.batches)
            + deliver(sessions, client, grouped.singles, now, threads=THREADS))


def _summary(gate: Gate | None, delivered: int, lapsed: int) -> str:
    given_up = f"; {lapsed} undelivered for 24 hours, not resent" if lapsed else ""
    if gate is None:
        return f"nothing to send{given_up}"
    if gate.held_quiet or gate.held_budget:
        log.info("held back %d pushes for quiet hours and %d for the push budget",
                 gate.held_quiet, gate.held_budget)
    return (f"{delivered} of {gate.chosen} delivered; held {gate.held_quiet} for quiet hours, "
            f"{gate.held_budget} for the budget{given_up}")
