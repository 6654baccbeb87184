"""The outbox sender: most important pushes first, within quiet hours and the month's
allowance, each member's due messages combined into one billed push."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from sqlalchemy import String, cast, func, or_, select, update
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
PRIORITY = {"receipt": 0, "coupon_used": 0, "owner_alert": 0, "expiry_warning": 1,
            "birthday": 2, "tier": 2, "nudge": 3, "winback": 4, "campaign": 5}
# these wait out quiet hours
SCHEDULED = {"expiry_warning", "birthday", "tier", "nudge", "winback", "campaign",
             "owner_alert"}
# these may use the month's last messages (the reserve); the others leave them (an owner's
# alert may say the allowance is nearly used: it must not wait for a month that ran out)
ESSENTIAL = {"receipt", "coupon_used", "expiry_warning", "owner_alert"}
# marketing: a member gets at most [messaging] marketing_per_day / _per_week pushes of these
MARKETING = ("nudge", "winback", "campaign")
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
    user: str = ""  # the member's LINE id, for a push to one member
    rows: tuple[int, ...] = ()  # a planned push: its rows, keyed once admitted


class Gate:
    """What this run may send: nothing scheduled in quiet hours, and no more recipients than
    the month's allowance and LINE's quota leave (left None: no limit), the last `reserve`
    of them kept for receipts and expiry warnings. First sends and retries pass the same
    gate."""

    def __init__(self, quiet: bool, left: int | None, reserve: int = 0,
                 capped: Cap | None = None) -> None:
        self.quiet, self.left, self.reserve = quiet, left, reserve
        self.capped = capped or Cap(None, None, None)
        self.chosen = self.held_quiet = self.held_budget = self.held_cap = 0

    def admit(self, due: list[Due]) -> list[Due]:
        """The ones that may go, most important kinds first."""
        chosen = []
        for item in sorted(due, key=lambda d: (PRIORITY.get(d.kind, 0), d.batch_id is None,
                                                d.batch_id or d.row_id or min(d.rows, default=0),
                                                d.push_key or "")):
            if self.quiet and item.kind in SCHEDULED:
                self.held_quiet += item.recipients
            elif item.kind in MARKETING and item.user and self.capped(item.user):
                self.held_cap += 1
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
                program.reserve, Cap(sessions, program, now))


class Cap:
    """Marketing pushes a member has had in the last day and week (read once a run, then
    counted as this run admits more): capped when either limit is reached."""

    def __init__(self, sessions: sessionmaker[Session] | None, program: Program | None,
                 now: dt.datetime | None) -> None:
        self.sessions, self.now = sessions, now  # without sessions: no cap
        self.per_day = program.marketing_per_day if program else 0
        self.per_week = program.marketing_per_week if program else 0
        # read now, before any transaction of the run: on SQLite a read from a second
        # session inside the run's write transaction would wait for that transaction
        self.counts: dict[str, list[dt.datetime]] | None = (
            self._read() if sessions is not None and now is not None else None)

    def full(self, user: str) -> bool:
        """Has this member had all the marketing pushes allowed?"""
        if self.counts is None or self.now is None:
            return False
        sent = self.counts.get(user, [])
        today = sum(1 for at in sent if at > self.now - dt.timedelta(days=1))
        return today >= self.per_day or len(sent) >= self.per_week

    def __call__(self, user: str) -> bool:
        """True if capped; otherwise the push is counted as admitted."""
        if self.full(user):
            return True
        if self.counts is not None and self.now is not None:
            self.counts.setdefault(user, []).append(self.now)
        return False

    def _read(self) -> dict[str, list[dt.datetime]]:
        request = func.coalesce(OutboxMessage.push_key, cast(OutboxMessage.batch_id, String),
                                OutboxMessage.retry_key)
        counts: dict[str, list[dt.datetime]] = {}
        with self.sessions() as session:
            for user, at in session.execute(
                    select(OutboxMessage.line_user_id, func.max(OutboxMessage.sent_at))
                    .where(OutboxMessage.status == "sent", OutboxMessage.kind.in_(MARKETING),
                           OutboxMessage.via.in_(("push", "multicast")),
                           OutboxMessage.sent_at > self.now - dt.timedelta(days=7))
                    .group_by(OutboxMessage.line_user_id, request)):
                counts.setdefault(user, []).append(at)
        return counts


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
        if not rows and not due:
            break
        gate = gate or _gate(sessions, client, program, now)  # LINE is asked once a run
        due += combine(sessions, rows, now, quiet, gate.capped.full)
        if not due:
            break
        delivered += _deliver(sessions, client, gate.admit(due), now)
        if not rows:
            break
        after, due = rows[-1].id, []
    return _summary(gate, delivered, lapsed) + _waiting(sessions, now) + _dropped(dropped)


def combine(sessions: sessionmaker[Session], rows: list, now: dt.datetime, quiet: bool,
            full: Callable[[str], bool]) -> list[Due]:
    """The pushes these due rows make: rows already in a push go with it; a member's rows
    in no push yet are planned as pushes (with whatever else waits for them, unbilled);
    a member's single row stays free for a multicast. One Due per push, of its most urgent
    kind. Planned pushes get their keys only once admitted (see _key)."""
    free: dict[str, list[int]] = {}
    keyed: dict[str, list[str]] = {}
    users = {}
    for row in rows:
        if row.push_key is None:
            free.setdefault(row.line_user_id, []).append(row.id)
        else:
            keyed.setdefault(row.push_key, []).append(row.kind)
            users[row.push_key] = row.line_user_id
    due = [Due(_urgent(kinds), 1, push_key=key, user=users[key]) for key, kinds in keyed.items()]
    planned = _plan(sessions, list(free), now, quiet, full)
    in_plans = {row_id for plan in planned for row_id, _ in plan.rows}
    kinds = {row.id: row.kind for row in rows}
    return due + [Due(_urgent([kind for _, kind in plan.rows]), 1, user=plan.user,
                      rows=tuple(row_id for row_id, _ in plan.rows)) for plan in planned] + [
        Due(kinds[row_id], 1, row_id=row_id, user=user) for user, ids in free.items()
        for row_id in ids if row_id not in in_plans]


def _urgent(kinds: list[str]) -> str:
    return min(kinds, key=lambda kind: PRIORITY.get(kind, 0))


class Plan(NamedTuple):
    user: str
    rows: list[tuple[int, str]]  # (row id, kind) in id order


def _plan(sessions: sessionmaker[Session], users: list[str], now: dt.datetime, quiet: bool,
          full: Callable[[str], bool]) -> list[Plan]:
    """For each member with a due row and something else free (due, or still waiting for a
    reply: it rides along unbilled), their pushes: 5 messages each, the most urgent first,
    each push in id order. Every push carries a row that is due now; marketing alone makes
    at most one push a run, and none for a member the marketing cap has reached (`full`):
    it waits, free to ride a reply."""
    if not users:
        return []
    allowed = [OutboxMessage.kind.not_in(SCHEDULED)] if quiet else []
    by_user: dict[str, list] = {}
    with sessions() as session:
        for row in session.execute(
                select(OutboxMessage.id, OutboxMessage.line_user_id, OutboxMessage.kind,
                       OutboxMessage.payload, OutboxMessage.hold_until)
                .join(Member, Member.id == OutboxMessage.member_id)
                .where(OutboxMessage.line_user_id.in_(users), *FREE, *allowed,
                       Member.status == "active")
                .order_by(OutboxMessage.line_user_id, OutboxMessage.id)):
            by_user.setdefault(row.line_user_id, []).append(row)
    plans = []
    for user, rows in by_user.items():
        pushes = _pushes_for(rows, now, full(user)) if len(rows) > 1 else []
        if sum(len(push) for push in pushes) > 1:
            plans += [Plan(user, [(row.id, row.kind) for row in push]) for push in pushes]
    return plans


def _pushes_for(rows: list, now: dt.datetime, capped: bool) -> list[list]:
    """A member's free rows as pushes of at most 5 messages, most urgent kinds first."""
    chunks: list[list] = [[]]
    used = 0
    for row in sorted(rows, key=lambda r: (PRIORITY.get(r.kind, 0), r.id)):
        size = len(row.payload["messages"])
        if used + size > MESSAGES_MAX:
            chunks.append([])
            used = 0
        chunks[-1].append(row)
        used += size
    pushes, marketing = [], 0
    for chunk in chunks:
        if all(row.hold_until is not None and row.hold_until > now for row in chunk):
            continue  # nothing in it is due: it keeps waiting for a reply
        if all(row.kind in MARKETING for row in chunk):
            if capped or marketing:
                continue
            marketing += 1
        pushes.append(sorted(chunk, key=lambda r: r.id))
    return pushes


def _key(sessions: sessionmaker[Session], plans: list[Due]) -> list[str]:
    """Give admitted planned pushes their keys (a row's own retry key), with every row
    still free under the lock: a row a reply or another clock took meanwhile is left out."""
    ids = [row_id for plan in plans for row_id in plan.rows]
    if not ids:
        return []
    keys = []
    with transaction(sessions) as session:
        free = {row.id: row for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_(ids), *FREE)
            .with_for_update(of=OutboxMessage).execution_options(populate_existing=True))}
        for plan in plans:
            rows = [free[row_id] for row_id in plan.rows if row_id in free]
            for row in rows:
                row.push_key = rows[0].retry_key
            keys += [rows[0].retry_key] if rows else []
    return keys


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
    keys += _key(sessions, [d for d in chosen if d.rows])
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
    capped = f", {gate.held_cap} for the marketing cap" if gate.held_cap else ""
    return (f"{delivered} messages delivered in {gate.chosen} pushes and multicast "
            f"recipients; held {gate.held_quiet} for quiet hours, "
            f"{gate.held_budget} for the budget{capped}{given_up}")
