"""The outbox sender: most important pushes first, within quiet hours and the push budget."""

from __future__ import annotations

import datetime as dt
import logging
import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.line.client import LineClient
from bot.loyalty.timeutil import local_date, start_of_day
from bot.models import OutboxMessage
from bot.outbox import deliver, deliver_batches, make_batches
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


def send_pending(sessions: sessionmaker[Session], client: LineClient, program: Program,
                 now: dt.datetime) -> str:
    """Deliver what may go now; report what was held back for quiet hours or the budget.

    Works through the queue a page at a time (most important kinds first within a page) for
    up to RUN_SECONDS, so one run a minute keeps up with a large morning of messages.
    """
    quiet, deadline = in_quiet_hours(program, now), time.monotonic() + RUN_SECONDS
    with sessions() as session:
        budget = (program.monthly_push_budget - month_sent(session, program, now)
                  if program.monthly_push_budget is not None else None)
    delivered = deliver_batches(sessions, client, now)  # batches a crash left unconfirmed
    leftover, after, left, pages = delivered, 0, None, 0
    chosen_total = held_quiet = held_budget = 0
    while time.monotonic() < deadline:
        with sessions() as session:
            rows = session.execute(select(OutboxMessage.id, OutboxMessage.kind)
                                   .where(OutboxMessage.status == "pending",
                                          OutboxMessage.batch_id.is_(None),
                                          OutboxMessage.id > after)
                                   .order_by(OutboxMessage.id).limit(BATCH)).all()
        if not rows:
            break
        after = rows[-1].id
        if pages == 0:
            quota = client.pushes_left()
            limits = [x for x in (budget, quota) if x is not None]
            left = min(limits) if limits else None
        pages += 1
        chosen = []
        for row_id, kind in sorted(rows, key=lambda r: (PRIORITY.get(r.kind, 0), r.id)):
            if quiet and kind in SCHEDULED:
                held_quiet += 1
            elif left is not None and len(chosen) >= left:
                held_budget += 1
            else:
                chosen.append(row_id)
        if left is not None:
            left -= len(chosen)
        chosen_total += len(chosen)
        singles = make_batches(sessions, chosen, now)
        delivered += (deliver_batches(sessions, client, now)
                      + deliver(sessions, client, singles, now, threads=THREADS))
    if not pages:
        return f"{leftover} delivered from earlier batches" if leftover else "nothing to send"
    if held_quiet or held_budget:
        log.info("held back %d pushes for quiet hours and %d for the push budget",
                 held_quiet, held_budget)
    return (f"{delivered} of {chosen_total} delivered; held {held_quiet} for quiet hours, "
            f"{held_budget} for the budget")
