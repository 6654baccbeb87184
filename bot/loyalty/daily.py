"""Daily figures for the console's dashboard, kept up to date by the `dashboard` clock job.

A day is a local calendar day in the program's timezone, stored as days since 1970-01-01.
Each run re-counts only what may have changed since the previous one:

- the days of rows written since (purchases, refunds and the purchases they refunded,
  coupons issued, redemptions made or voided, stamp cards started or stamped, messages
  sent, claim codes taken) into `daily_figures`, `daily_coupons` and `daily_cards`;
- every day of each member whose purchases changed since (bought, refunded, a claim code
  taken, merged, erased: anything with a purchase, a refund or an audit row) into
  `member_days`;
- the join days of members who joined, left, came back, were merged or erased since
  (`daily_joins`: members per join day by their status now);
- the stock figures of the moment (members per tier, points outstanding): one pass over
  the members table.

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

from sqlalchemy import Select, and_, case, delete, func, insert, or_, select, text, union
from sqlalchemy.orm import Session

from bot.db import dialect_insert
from bot.loyalty.audiences import counted
from bot.loyalty.report import _local_day
from bot.loyalty.timeutil import end_of_day, local_date, start_of_day
from bot.models import (
    AuditLog,
    Claim,
    CountedMember,
    Coupon,
    DailyCards,
    DailyCoupons,
    DailyFigures,
    DailyJoins,
    DailyState,
    DormantDays,
    Member,
    MemberDay,
    OutboxMessage,
    Purchase,
    Redemption,
    Refund,
    Stamp,
    StampCard,
    VisitDays,
    VisitPairDays,
    VisitPairs,
)
from bot.program import Program

NAME = "default"
EPOCH = dt.date(1970, 1, 1)
MARGIN = dt.timedelta(minutes=10)  # longer than any transaction that writes these rows
MANY_SPANS = 20  # days changed in more runs than this: re-count every day between instead
MARKED = {"members": Member, "purchases": Purchase, "refunds": Refund, "coupons": Coupon,
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
    if session.get_bind().dialect.name == "postgresql":  # SQLite's writers queue anyway
        # one snapshot for the whole run: each statement sees the same members changed,
        # so none is taken away without being added back, or the other way round
        session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
    state = session.get(DailyState, NAME)
    rules = {"timezone": program.timezone.key, "dormant_after_days": program.winback_after_days}
    full = full or state is None or state.stock.get("rules") != rules  # new days, new rules
    marks = {name: int(session.scalar(select(func.max(model.id))) or 0)
             for name, model in MARKED.items()}
    tz = program.timezone
    if full:
        days, joins, members = _all_days(session, program, now), None, None
    else:
        since, seen = state.computed_at - MARGIN, state.marks
        days = _changed_days(session, program, since, seen)
        joins = _changed_joins(session, program, since, seen)
        members = _changed_members(since, seen)
    _recount_days(session, program, days, full=full)
    _recount_joins(session, program, joins, now)
    _recount_members(session, program, members, now)
    stock = {**_stock(session), "rules": rules}
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


def _changed_joins(session: Session, program: Program, since: dt.datetime,
                   seen: dict[str, int]) -> set[int]:
    """The join days of members who joined since, or left, came back, were merged or
    erased since (each of those writes an audit row; a join time never changes)."""
    touched = select(AuditLog.member_id).where(
        _recent(AuditLog, AuditLog.at, since, seen), AuditLog.member_id.is_not(None))
    tz = program.timezone
    return {day_number(local_date(at, tz)) for at in session.scalars(
        select(Member.joined_at).where(or_(_recent(Member, Member.joined_at, since, seen),
                                           Member.id.in_(touched))).distinct())}


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


Ranges = list[tuple[dt.datetime, dt.datetime]]


def _ranges(program: Program, days: set[int]) -> Ranges:
    """The [start, end) instants of each run of consecutive days."""
    tz = program.timezone
    return [(start_of_day(day_date(first), tz), end_of_day(day_date(last), tz))
            for first, last in _spans(days)]


def _recount_days(session: Session, program: Program, days: set[int], *, full: bool) -> None:
    if len(_spans(days)) > MANY_SPANS:  # one pass over all the days between is quicker
        days = set(range(min(days), max(days) + 1))
    for model in (DailyFigures, DailyCoupons, DailyCards):
        session.execute(delete(model) if full else delete(model).where(model.day.in_(days)))
    if not days:
        return
    ranges = _ranges(program, days)
    _count_figures(session, program, ranges)
    _count_coupons(session, program, ranges)
    _count_cards(session, program, ranges)


def _by_day(session: Session, program: Program, column: Any, ranges: Ranges, *values: Any,
            where: Iterable[Any] = (), extra: Iterable[Any] = ()) -> Any:
    """A subquery of the rows of `column`'s table within `ranges`, with their local day."""
    day = _local_day(session, column, program.timezone, ranges[0][0], ranges[-1][1])
    within = or_(*(and_(column >= start, column < end) for start, end in ranges))
    return select(day.label("day"), *extra, *values).where(within, *where).subquery()


def _sum(expression: Any) -> Any:
    return func.coalesce(func.sum(expression), 0)


def _count_figures(session: Session, program: Program, ranges: Ranges) -> None:
    figures: dict[int, dict[str, int]] = {}

    def add(rows: Iterable[Any], *names: str) -> None:
        for day, *values in rows:
            slot = figures.setdefault(int(day), dict.fromkeys(
                ("purchases", "revenue", "refunded", "unclaimed", "coupons_issued",
                 "coupons_redeemed", "billed"), 0))
            for name, value in zip(names, values, strict=True):
                slot[name] = int(value or 0)

    kept = counted()
    p = _by_day(session, program, Purchase.created_at, ranges,
                case((kept, 1), else_=0).label("counted"),
                case((kept, Purchase.amount - Purchase.refunded_amount), else_=0).label("net"),
                case((kept & Purchase.member_id.is_(None), 1), else_=0).label("unclaimed"))
    add(session.execute(select(p.c.day, _sum(p.c.counted), _sum(p.c.net),
                               _sum(1 - p.c.counted), _sum(p.c.unclaimed)).group_by(p.c.day)),
        "purchases", "revenue", "refunded", "unclaimed")
    c = _by_day(session, program, Coupon.issued_at, ranges, Coupon.id)
    add(session.execute(select(c.c.day, func.count()).group_by(c.c.day)), "coupons_issued")
    r = _by_day(session, program, Redemption.redeemed_at, ranges, Redemption.id,
                where=[Redemption.voided_at.is_(None)])
    add(session.execute(select(r.c.day, func.count()).group_by(r.c.day)), "coupons_redeemed")
    sent = OutboxMessage
    o = _by_day(session, program, sent.sent_at, ranges, sent.batch_id,
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


def _count_coupons(session: Session, program: Program, ranges: Ranges) -> None:
    counts: dict[tuple[int, int], list[int]] = {}
    c = _by_day(session, program, Coupon.issued_at, ranges, Coupon.template_id)
    for day, template, n in session.execute(select(c.c.day, c.c.template_id, func.count())
                                            .group_by(c.c.day, c.c.template_id)):
        counts.setdefault((int(day), template), [0, 0])[0] = int(n)
    r = _by_day(session, program, Redemption.redeemed_at, ranges, Coupon.template_id,
                where=[Redemption.voided_at.is_(None), Coupon.id == Redemption.coupon_id])
    for day, template, n in session.execute(select(r.c.day, r.c.template_id, func.count())
                                            .group_by(r.c.day, r.c.template_id)):
        counts.setdefault((int(day), template), [0, 0])[1] = int(n)
    rows = [{"day": day, "template_id": template, "issued": issued, "redeemed": redeemed}
            for (day, template), (issued, redeemed) in sorted(counts.items())
            if template is not None]
    if rows:
        session.execute(insert(DailyCoupons), rows)


def _count_cards(session: Session, program: Program, ranges: Ranges) -> None:
    s = _by_day(session, program, StampCard.started_at, ranges, StampCard.stamps,
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
        for model in (MemberDay, VisitDays, VisitPairs, VisitPairDays, DormantDays,
                      CountedMember):
            session.execute(delete(model))
    else:
        _add(session, _tally(session, members), -1)  # their days as they were...
        _add_changes(session, _dormant_changes(session, program, members, counted=True), -1)
        session.execute(delete(MemberDay).where(MemberDay.member_id.in_(members)))
    first = session.scalar(select(func.min(Purchase.created_at))) or now
    wanted = [counted(), Purchase.member_id.is_not(None)]
    if members is not None:
        wanted.append(Purchase.member_id.in_(members))
    last = max(now, session.scalar(select(func.max(Purchase.created_at))) or now)
    p = _by_day(session, program, Purchase.created_at, [(first, last + dt.timedelta(seconds=1))],
                Purchase.created_at.label("at"), extra=[Purchase.member_id], where=wanted)
    visits = (select(p.c.member_id, p.c.day, func.count().label("n"),
                     func.max(p.c.at).label("last_at"))
              .group_by(p.c.member_id, p.c.day).subquery())
    order = {"partition_by": visits.c.member_id, "order_by": visits.c.day}
    session.execute(insert(MemberDay).from_select(
        ["member_id", "day", "purchases", "last_at", "prev_day", "next_day", "first_day"],
        select(visits.c.member_id, visits.c.day, visits.c.n, visits.c.last_at,
               func.lag(visits.c.day).over(**order), func.lead(visits.c.day).over(**order),
               func.min(visits.c.day).over(partition_by=visits.c.member_id))
        .order_by(visits.c.day)))  # a period's rows close together on disk
    _add(session, _tally(session, members), 1)  # ... and as they are
    _note_counted(session, members)
    _add_changes(session, _dormant_changes(session, program, members), 1)


def _note_counted(session: Session, members: Any) -> None:
    """Remember which of `members` (all with None) dormant_days now counts: the active."""
    if members is not None:
        session.execute(delete(CountedMember).where(CountedMember.member_id.in_(members)))
    chosen = [Member.status == "active"]
    if members is not None:
        chosen.append(Member.id.in_(members))
    session.execute(insert(CountedMember).from_select(
        ["member_id"], select(Member.id).where(*chosen)))


def _dormant_changes(session: Session, program: Program, members: Any, *,
                     counted: bool = False) -> dict[int, int]:
    """The dormant_days changes of active `members` (all with None): as the report counts
    them as of a day's end E, an active member is dormant when they joined at least
    `after_days` before E and made no counted purchase in the `after_days` up to E. So from
    each of their purchase days (and from joining) on, they are dormant as of the first day
    whose end is `after_days` after its last purchase (or the join), until the day before
    their next purchase day. With `counted`: of the members who were active when last
    counted (to take their changes away), whatever their status now."""
    days = program.winback_after_days
    if not days:
        return {}
    tz, wait = program.timezone, dt.timedelta(days=days) - dt.timedelta(microseconds=1)
    d = MemberDay
    active = (Member.id.in_(select(CountedMember.member_id)) if counted
              else Member.status == "active")
    statement = (select(Member.id, Member.joined_at, d.day, d.last_at)
                 .outerjoin(d, d.member_id == Member.id).where(active)
                 .order_by(Member.id, d.day).execution_options(yield_per=10_000))
    if members is not None:
        statement = statement.where(Member.id.in_(members))
    changes: dict[int, int] = {}

    def spell(since: dt.datetime, until: int | None) -> None:
        first = day_number(local_date(since + wait, tz))
        if until is None or first < until:
            changes[first] = changes.get(first, 0) + 1
            if until is not None:
                changes[until] = changes.get(until, 0) - 1

    current, since = None, None
    for member_id, joined_at, day, last_at in session.execute(statement):
        if member_id != current:
            if current is not None:
                spell(since, None)
            current, since = member_id, joined_at
        if day is not None:
            spell(since, day)
            since = max(last_at, joined_at)
    if current is not None:
        spell(since, None)
    return changes


def _add_changes(session: Session, changes: dict[int, int], sign: int) -> None:
    rows = [{"day": day, "change": sign * n} for day, n in changes.items() if n]
    if rows:
        statement = dialect_insert(session, DormantDays)
        session.execute(statement.on_conflict_do_update(
            index_elements=["day"],
            set_={"change": DormantDays.change + statement.excluded.change}), rows)
    session.execute(delete(DormantDays).where(DormantDays.change == 0))


Cells = dict[tuple[str, int, int], list[int]]
Tally = tuple[dict[int, list[int]], Cells, Cells]
VISIT_COLUMNS = ("visits", "firsts", "week_returning", "ones")


def _tally(session: Session, members: Any) -> Tally:
    """The visit_days, visit_pairs (by week) and visit_pair_days figures of the
    member_days rows of `members` (all members with None)."""
    d = MemberDay
    mine = [] if members is None else [d.member_id.in_(members)]
    monday = d.day - (d.day + 3) % 7
    one = d.purchases == 1
    days = {int(day): [int(v) for v in values] for day, *values in session.execute(
        select(d.day, func.count(), _sum(case((d.prev_day.is_(None), 1), else_=0)),
               _sum(case((d.prev_day < monday, 1), else_=0)), _sum(case((one, 1), else_=0)))
        .where(*mine).group_by(d.day))}
    pairs: Cells = {}
    by_day: Cells = {}
    for kind, x, y, only in (("all", d.prev_day, d.day, None), ("one_pd", d.prev_day, d.day, one),
                             ("one_dq", d.day, d.next_day, one),
                             ("one_pq", d.prev_day, d.next_day, one)):
        wanted = [x.is_not(None), y.is_not(None), *mine, *([] if only is None else [only])]
        rows = select(x.label("x"), y.label("y")).where(*wanted).subquery()
        for x_day, y_day, n in session.execute(
                select(rows.c.x, rows.c.y, func.count()).group_by(rows.c.x, rows.c.y)):
            x_day, y_day, n = int(x_day), int(y_day), int(n)
            by_day[(kind, x_day, y_day)] = [n, n * (y_day - x_day)]
            cell = pairs.setdefault((kind, (x_day + 3) // 7, (y_day + 3) // 7), [0, 0])
            cell[0] += n
            cell[1] += n * (y_day - x_day)
    return days, pairs, by_day


def _add(session: Session, tally: Tally, sign: int) -> None:
    """Add (or with sign -1 take away) a tally to visit_days and visit_pairs."""
    days, pairs, by_day = tally
    for model, keys, names, rows in (
            (VisitDays, ["day"], VISIT_COLUMNS,
             [{"day": day, **dict(zip(VISIT_COLUMNS, values, strict=True))}
              for day, values in days.items()]),
            (VisitPairs, ["kind", "x_week", "y_week"], ("pairs", "days"),
             [{"kind": k, "x_week": x, "y_week": y, "pairs": n, "days": span}
              for (k, x, y), (n, span) in pairs.items()]),
            (VisitPairDays, ["kind", "x_day", "y_day"], ("pairs", "days"),
             [{"kind": k, "x_day": x, "y_day": y, "pairs": n, "days": span}
              for (k, x, y), (n, span) in by_day.items()])):
        if not rows:
            continue
        for row in rows:
            for name in names:
                row[name] *= sign
        statement = dialect_insert(session, model)
        table = model.__table__
        session.execute(statement.on_conflict_do_update(
            index_elements=keys,
            set_={name: table.c[name] + statement.excluded[name] for name in names}), rows)
    session.execute(delete(VisitDays).where(VisitDays.visits == 0))
    session.execute(delete(VisitPairs).where(VisitPairs.pairs == 0))
    session.execute(delete(VisitPairDays).where(VisitPairDays.pairs == 0))


def _recount_joins(session: Session, program: Program, days: set[int] | None,
                   now: dt.datetime) -> None:
    """Members per join day, active or blocked now (every day, or `days`)."""
    if days is None:
        session.execute(delete(DailyJoins))
        first = session.scalar(select(func.min(Member.joined_at))) or now
        last = max(now, session.scalar(select(func.max(Member.joined_at))) or now)
        ranges = [(first, last + dt.timedelta(seconds=1))]
    elif days:
        session.execute(delete(DailyJoins).where(DailyJoins.day.in_(days)))
        ranges = _ranges(program, days)
    else:
        return
    j = _by_day(session, program, Member.joined_at, ranges,
                case((Member.status == "blocked", 1), else_=0).label("blocked"),
                where=[Member.status.in_(("active", "blocked"))])
    session.execute(insert(DailyJoins).from_select(
        ["day", "joined", "blocked"],
        select(j.c.day, func.count(), _sum(j.c.blocked)).group_by(j.c.day)))


def _stock(session: Session) -> dict[str, Any]:
    """The figures the report takes as of now: members per tier, points outstanding."""
    rows = session.execute(select(Member.tier, func.count(), _sum(Member.points_balance))
                           .group_by(Member.tier)).all()
    return {"tiers": {key: int(n) for key, n, _ in rows},
            "outstanding": sum(int(points) for _, _, points in rows)}

