"""Daily figures for the console's dashboard, kept up to date by the `dashboard` clock job.

A day is a local calendar day in the program's timezone, stored as days since 1970-01-01.
Each run re-counts only what may have changed since the previous one:

- the days of rows written since (purchases, refunds and the purchases they refunded,
  coupons issued, redemptions made or voided, stamp cards started or stamped, messages
  sent, claim codes taken) into `daily_figures`, `daily_coupons` and `daily_cards`;
- every day of each member whose purchases changed since (bought, refunded, a claim code
  taken, merged, erased: anything with a purchase, a refund or an audit row) into
  `member_days`;
- all members' join days by their status now (`daily_joins`), and the stock figures of
  the moment (members per tier, points outstanding): one pass over the members table.

"Since" is both: rows whose id is above the last id the previous run saw (a purchase
recorded with an earlier time is caught), and rows whose time is within MARGIN of the
previous run (a row whose transaction was still open when the previous run read is
caught). Nothing else changes these figures; a full rebuild (the first run, or
`refresh(..., full=True)`) gives the same rows, which the tests check.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, case, delete, func, insert, or_, select, union
from sqlalchemy.orm import Session

from bot.loyalty.audiences import counted
from bot.loyalty.report import _local_day
from bot.loyalty.timeutil import end_of_day, local_date, start_of_day
from bot.models import (
    AuditLog,
    Claim,
    Coupon,
    DailyCards,
    DailyCoupons,
    DailyFigures,
    DailyJoins,
    DailyState,
    Member,
    MemberDay,
    OutboxMessage,
    Purchase,
    Redemption,
    Refund,
    Stamp,
    StampCard,
)
from bot.program import Program

NAME = "default"
EPOCH = dt.date(1970, 1, 1)
MARGIN = dt.timedelta(minutes=10)  # longer than any transaction that writes these rows
MARKED = {"purchases": Purchase, "refunds": Refund, "coupons": Coupon,
          "redemptions": Redemption, "stamps": Stamp, "stamp_cards": StampCard,
          "audit_log": AuditLog}


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def day_date(number: int) -> dt.date:
    return EPOCH + dt.timedelta(days=number)


def refresh(session: Session, program: Program, now: dt.datetime, *, full: bool = False
            ) -> str:
    """Bring the daily figures up to `now` (the clock job); everything again with `full`."""
    began = time.perf_counter()
    state = session.get(DailyState, NAME)
    full = full or state is None
    marks = {name: int(session.scalar(select(func.max(model.id))) or 0)
             for name, model in MARKED.items()}
    tz = program.timezone
    if full:
        days = _all_days(session, program, now)
        members = None
    else:
        since, seen = state.computed_at - MARGIN, state.marks
        days = _changed_days(session, program, since, seen)
        members = _changed_members(since, seen)
    _recount_days(session, program, days)
    _recount_members(session, program, members, now)
    _recount_joins(session, program, now)
    stock = _stock(session)
    took = round(1000 * (time.perf_counter() - began))
    row = state or DailyState(name=NAME)
    row.computed_at, row.took_ms, row.marks, row.stock = now, took, marks, stock
    session.merge(row)
    session.flush()
    what = "all days" if full else f"{len(days)} days"
    return (f"daily figures up to {now.astimezone(tz):%Y-%m-%d %H:%M} ({what}) "
            f"computed in {took} ms")


# -- which days and members changed ----------------------------------------------------------
def _all_days(session: Session, program: Program, now: dt.datetime) -> set[int]:
    firsts = [session.scalar(select(func.min(column))) for column in (
        Purchase.created_at, Coupon.issued_at, Redemption.redeemed_at, StampCard.started_at,
        OutboxMessage.sent_at)]
    first = min((f for f in firsts if f is not None), default=now)
    tz = program.timezone
    return set(range(day_number(local_date(first, tz)), day_number(local_date(now, tz)) + 1))


def _recent(model: Any, column: Any, since: dt.datetime, seen: dict[str, int]) -> Any:
    """Rows of a marked table written since the last run: a higher id or a recent time."""
    name = model.__tablename__
    return or_(model.id > int(seen.get(name, 0)), column >= since)


def _changed_days(session: Session, program: Program, since: dt.datetime,
                  seen: dict[str, int]) -> set[int]:
    times: list[Select[Any]] = [
        select(Purchase.created_at).where(_recent(Purchase, Purchase.created_at, since, seen)),
        select(Purchase.created_at).join(Refund, Refund.purchase_id == Purchase.id)
        .where(_recent(Refund, Refund.created_at, since, seen)),
        select(Purchase.created_at).join(Claim, Claim.purchase_id == Purchase.id)
        .where(Claim.claimed_at >= since),
        select(Coupon.issued_at).where(_recent(Coupon, Coupon.issued_at, since, seen)),
        select(Redemption.redeemed_at).where(
            or_(_recent(Redemption, Redemption.redeemed_at, since, seen),
                Redemption.voided_at >= since)),
        select(StampCard.started_at).where(
            _recent(StampCard, StampCard.started_at, since, seen)),
        select(StampCard.started_at).join(Stamp, Stamp.card_id == StampCard.id)
        .where(_recent(Stamp, Stamp.created_at, since, seen)),
        select(OutboxMessage.sent_at).where(OutboxMessage.sent_at >= since),
    ]
    tz = program.timezone
    return {day_number(local_date(at, tz))
            for statement in times for at in session.scalars(statement.distinct())}


def _changed_members(since: dt.datetime, seen: dict[str, int]) -> Any:
    """A subquery of the members whose purchase days may have changed since the last run."""
    return union(
        select(Purchase.member_id).where(_recent(Purchase, Purchase.created_at, since, seen),
                                         Purchase.member_id.is_not(None)),
        select(Purchase.member_id).join(Refund, Refund.purchase_id == Purchase.id)
        .where(_recent(Refund, Refund.created_at, since, seen),
               Purchase.member_id.is_not(None)),
        select(AuditLog.member_id).where(_recent(AuditLog, AuditLog.at, since, seen),
                                         AuditLog.member_id.is_not(None)),
    )


# -- re-counting -----------------------------------------------------------------------------
def _spans(days: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive runs of days, as (first, last)."""
    spans: list[tuple[int, int]] = []
    for day in sorted(days):
        if spans and spans[-1][1] == day - 1:
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return spans


def _recount_days(session: Session, program: Program, days: set[int]) -> None:
    for first, last in _spans(days):
        for model in (DailyFigures, DailyCoupons, DailyCards):
            session.execute(delete(model).where(model.day.between(first, last)))
        start = start_of_day(day_date(first), program.timezone)
        end = end_of_day(day_date(last), program.timezone)
        _count_figures(session, program, start, end)
        _count_coupons(session, program, start, end)
        _count_cards(session, program, start, end)


def _by_day(session: Session, program: Program, column: Any, start: dt.datetime,
            end: dt.datetime, *values: Any, where: Iterable[Any] = (), extra: Iterable[Any] = ()
            ) -> Any:
    """A subquery of the rows in [start, end) of `column`'s table, with their local day."""
    day = _local_day(session, column, program.timezone, start, end)
    return (select(day.label("day"), *extra, *values)
            .where(column >= start, column < end, *where).subquery())


def _sum(expression: Any) -> Any:
    return func.coalesce(func.sum(expression), 0)


def _count_figures(session: Session, program: Program, start: dt.datetime,
                   end: dt.datetime) -> None:
    figures: dict[int, dict[str, int]] = {}

    def add(rows: Iterable[Any], *names: str) -> None:
        for day, *values in rows:
            slot = figures.setdefault(int(day), dict.fromkeys(
                ("purchases", "revenue", "refunded", "unclaimed", "coupons_issued",
                 "coupons_redeemed", "billed"), 0))
            for name, value in zip(names, values, strict=True):
                slot[name] = int(value or 0)

    kept = counted()
    p = _by_day(session, program, Purchase.created_at, start, end,
                case((kept, 1), else_=0).label("counted"),
                case((kept, Purchase.amount - Purchase.refunded_amount), else_=0).label("net"),
                case((kept & Purchase.member_id.is_(None), 1), else_=0).label("unclaimed"))
    add(session.execute(select(p.c.day, _sum(p.c.counted), _sum(p.c.net),
                               _sum(1 - p.c.counted), _sum(p.c.unclaimed)).group_by(p.c.day)),
        "purchases", "revenue", "refunded", "unclaimed")
    c = _by_day(session, program, Coupon.issued_at, start, end, Coupon.id)
    add(session.execute(select(c.c.day, func.count()).group_by(c.c.day)), "coupons_issued")
    r = _by_day(session, program, Redemption.redeemed_at, start, end, Redemption.id,
                where=[Redemption.voided_at.is_(None)])
    add(session.execute(select(r.c.day, func.count()).group_by(r.c.day)), "coupons_redeemed")
    sent = OutboxMessage
    o = _by_day(session, program, sent.sent_at, start, end, sent.batch_id,
                func.coalesce(sent.push_key, sent.retry_key).label("push"),
                where=[sent.status == "sent", or_(sent.via.is_(None), sent.via != "reply")])
    # LINE bills each push request once (however many messages it combined) and each
    # multicast recipient once, as the report counts them
    add(session.execute(select(o.c.day, _sum(case((o.c.batch_id.is_not(None), 1), else_=0))
                               + func.count(func.distinct(case((o.c.batch_id.is_(None),
                                                                o.c.push))))
                               ).group_by(o.c.day)), "billed")
    if figures:
        session.execute(insert(DailyFigures), [{"day": day, **values}
                                               for day, values in sorted(figures.items())])


def _count_coupons(session: Session, program: Program, start: dt.datetime,
                   end: dt.datetime) -> None:
    counts: dict[tuple[int, int], list[int]] = {}
    c = _by_day(session, program, Coupon.issued_at, start, end, Coupon.template_id)
    for day, template, n in session.execute(select(c.c.day, c.c.template_id, func.count())
                                            .group_by(c.c.day, c.c.template_id)):
        counts.setdefault((int(day), template), [0, 0])[0] = int(n)
    r = _by_day(session, program, Redemption.redeemed_at, start, end, Coupon.template_id,
                where=[Redemption.voided_at.is_(None), Coupon.id == Redemption.coupon_id])
    for day, template, n in session.execute(select(r.c.day, r.c.template_id, func.count())
                                            .group_by(r.c.day, r.c.template_id)):
        counts.setdefault((int(day), template), [0, 0])[1] = int(n)
    rows = [{"day": day, "template_id": template, "issued": issued, "redeemed": redeemed}
            for (day, template), (issued, redeemed) in sorted(counts.items())
            if template is not None]
    if rows:
        session.execute(insert(DailyCoupons), rows)


def _count_cards(session: Session, program: Program, start: dt.datetime,
                 end: dt.datetime) -> None:
    s = _by_day(session, program, StampCard.started_at, start, end, StampCard.stamps,
                case((StampCard.status == "completed", 1), else_=0).label("completed"))
    rows = [{"day": int(day), "stamps": int(stamps), "completed": int(done), "cards": int(n)}
            for day, stamps, done, n in session.execute(
                select(s.c.day, s.c.stamps, s.c.completed, func.count())
                .group_by(s.c.day, s.c.stamps, s.c.completed))]
    if rows:
        session.execute(insert(DailyCards), rows)


def _recount_members(session: Session, program: Program, members: Any,
                     now: dt.datetime) -> None:
    """Each member's purchase days, linked to their previous and next (all members, or the
    members of the `members` subquery)."""
    if members is None:
        session.execute(delete(MemberDay))
    else:
        session.execute(delete(MemberDay).where(MemberDay.member_id.in_(members)))
    first = session.scalar(select(func.min(Purchase.created_at))) or now
    wanted = [counted(), Purchase.member_id.is_not(None)]
    if members is not None:
        wanted.append(Purchase.member_id.in_(members))
    p = _by_day(session, program, Purchase.created_at, first,
                max(now, session.scalar(select(func.max(Purchase.created_at))) or now)
                + dt.timedelta(seconds=1),
                Purchase.created_at.label("at"), extra=[Purchase.member_id], where=wanted)
    visits = (select(p.c.member_id, p.c.day, func.count().label("n"),
                     func.max(p.c.at).label("last_at"))
              .group_by(p.c.member_id, p.c.day).subquery())
    order = {"partition_by": visits.c.member_id, "order_by": visits.c.day}
    session.execute(insert(MemberDay).from_select(
        ["member_id", "day", "purchases", "last_at", "prev_day", "next_day", "first_day"],
        select(visits.c.member_id, visits.c.day, visits.c.n, visits.c.last_at,
               func.lag(visits.c.day).over(**order), func.lead(visits.c.day).over(**order),
               func.min(visits.c.day).over(partition_by=visits.c.member_id))))


def _recount_joins(session: Session, program: Program, now: dt.datetime) -> None:
    session.execute(delete(DailyJoins))
    first = session.scalar(select(func.min(Member.joined_at))) or now
    last = max(now, session.scalar(select(func.max(Member.joined_at))) or now)
    j = _by_day(session, program, Member.joined_at, first, last + dt.timedelta(seconds=1),
                case((Member.status == "blocked", 1), else_=0).label("blocked"),
                where=[Member.status.in_(("active", "blocked"))])
    session.execute(insert(DailyJoins).from_select(
        ["day", "joined", "blocked"],
        select(j.c.day, func.count(), _sum(j.c.blocked)).group_by(j.c.day)))


def _stock(session: Session) -> dict[str, Any]:
    """The figures the report takes as of now: members per tier, points outstanding."""
    tiers = {key: int(n) for key, n in session.execute(
        select(Member.tier, func.count()).group_by(Member.tier))}
    outstanding = session.scalar(select(_sum(Member.points_balance)))
    return {"tiers": tiers, "outstanding": int(outstanding)}

