"""The console dashboard's figures for any period, from the daily figures the clock keeps.

Two reports (a period and the one before) read every member, purchase, coupon and ledger
row of their periods: 15 to 35 seconds with a million members. The `dashboard` job keeps
per-day figures instead (bot.loyalty.daily), and a period's figures are sums over its days.
The additive ones directly. Customers are purchase days less those whose previous purchase
day is in the period too; such pairs of days are counted by week (visit_pairs), so a
period's are a sum over its whole weeks plus the rows of the few days at its edges; the
same for customers with a single purchase. Dormant members as of a day are the sum of the
changes up to it. While the figures are at most MAX_AGE old the page composes any period
from them and says up to when; otherwise (a clock that is not running) it computes the two
reports live. Either way each figure equals the report's for the period (`from_report`);
the tests compare them over random periods, refunds, erasures and daylight-saving changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from bot.loyalty.daily import NAME, day_date, day_number
from bot.loyalty.report import (
    FunnelStep,
    MemberStats,
    Report,
    SalesStats,
    StampFunnel,
    TierCount,
    WeekRow,
    _pct,
    build_report,
    period,
)
from bot.models import (
    CouponTemplateRow,
    DailyCards,
    DailyCoupons,
    DailyFigures,
    DailyJoins,
    DailyState,
    DormantDays,
    MemberDay,
    VisitDays,
    VisitPairDays,
    VisitPairs,
)
from bot.program import Program

PAIRS = ("all", "one_pd", "one_dq", "one_pq")
EVERY_MINUTES = 10  # the job's schedule (bot.jobs)
MAX_AGE = dt.timedelta(minutes=3 * EVERY_MINUTES)  # older: computed live instead


@dataclass(frozen=True)
class CouponFigures:
    key: str
    title: str
    issued: int
    redeemed: int
    redemption_rate: float | None


@dataclass(frozen=True)
class Period:
    """What the dashboard shows of one period: the report's figures of the same names."""

    first_day: dt.date
    last_day: dt.date
    members: MemberStats
    sales: SalesStats
    coupons: CouponFigures  # all coupons
    templates: tuple[CouponFigures, ...]
    points_outstanding: int
    points_value: float | None
    billed: int
    quota: int | None
    stamps: StampFunnel
    tiers: tuple[TierCount, ...]
    weeks: tuple[WeekRow, ...]


@dataclass(frozen=True)
class Figures:
    current: Period
    previous: Period
    computed_at: dt.datetime | None  # None: computed just now, for this request


def from_report(report: Report) -> Period:
    """The dashboard's figures of a report."""
    def coupon(row: Any) -> CouponFigures:
        return CouponFigures(row.key, row.title, row.issued, row.redeemed, row.redemption_rate)

    return Period(report.first_day, report.last_day, report.members, report.sales,
                  coupon(report.coupons.total),
                  tuple(coupon(row) for row in report.coupons.templates),
                  report.points.outstanding, report.points.outstanding_value,
                  report.pushes.billed, report.pushes.quota, report.stamps, report.tiers,
                  report.weeks)


def previous_days(first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    """The period of as many local days just before first..last."""
    length = (last - first).days + 1
    return first - dt.timedelta(days=length), first - dt.timedelta(days=1)


def compute(session: Session, program: Program, first: dt.date, last: dt.date,
            now: dt.datetime) -> Figures:
    """The figures of first..last and the period before, from two reports computed now."""
    current = build_report(session, program, *period(program, first, last), now,
                           quota=program.allowance)
    previous = build_report(session, program, *period(program, *previous_days(first, last)),
                            now)
    return Figures(from_report(current), from_report(previous), None)


def kept(session: Session, program: Program, first: dt.date, last: dt.date,
         now: dt.datetime) -> Figures | None:
    """The figures of first..last and the period before from the daily figures, if the
    clock brought them up to date at most MAX_AGE ago."""
    state = session.get(DailyState, NAME)
    if state is None or not dt.timedelta(0) <= now - state.computed_at <= MAX_AGE:
        return None
    return Figures(compose(session, program, first, last, state.stock, program.allowance),
                   compose(session, program, *previous_days(first, last), state.stock, None),
                   state.computed_at)


def compose(session: Session, program: Program, first: dt.date, last: dt.date,
            stock: dict[str, Any], quota: int | None) -> Period:
    """One period's figures, summed from the daily figures."""
    a, b = day_number(first), day_number(last)
    f = DailyFigures
    purchases, revenue, refunded, unclaimed, issued, redeemed, billed = (
        int(v) for v in session.execute(
            select(*(_sum(column) for column in (
                f.purchases, f.revenue, f.refunded, f.unclaimed, f.coupons_issued,
                f.coupons_redeemed, f.billed)))
            .where(f.day.between(a, b))).one())
    customers, gaps, gap_sum, singles = _customers(session, a, b)
    sales = SalesStats(
        purchases=purchases, customers=customers, repeat_customers=customers - singles,
        revenue=revenue,
        average_order_value=round(revenue / purchases, 2) if purchases else None,
        repurchase_rate=_pct(customers - singles, customers),
        repurchase_cycle_days=round(gap_sum / gaps, 1) if gaps else None,
        repurchase_gaps=gaps, refunded_excluded=refunded, unclaimed=unclaimed)
    value = getattr(program, "point_value", None)  # as the report: the file has none (yet)
    outstanding = int(stock["outstanding"])
    return Period(
        first_day=first, last_day=last,
        members=_members(session, program, a, b, customers), sales=sales,
        coupons=CouponFigures("total", "total", issued, redeemed, _pct(redeemed, issued)),
        templates=_templates(session, program, a, b),
        points_outstanding=outstanding,
        points_value=round(float(outstanding * value), 2) if value else None,
        billed=billed, quota=quota, stamps=_stamps(session, program, a, b),
        tiers=_tiers(program, stock["tiers"]),
        weeks=_weeks(session, a, b, _week_customers(session, a, b)))


def _sum(expression: Any) -> Any:
    return func.coalesce(func.sum(expression), 0)


def _count_if(condition: Any) -> Any:
    return _sum(case((condition, 1), else_=0))


def _customers(session: Session, a: int, b: int) -> tuple[int, int, int, int]:
    """(customers, repurchase gaps, their days, customers with one purchase) over the days
    a..b.

    A member is counted once, on their first purchase day in the period: every purchase day
    less those whose previous one is in the period too (a gap). With one purchase: the days
    with one purchase, less those with a purchase day before or after in the period."""
    visits, ones = _visits(session, a, b)
    inside = _inside(session, a, b, PAIRS)
    gaps, gap_days = inside["all"]
    singles = ones - inside["one_pd"][0] - inside["one_dq"][0] + inside["one_pq"][0]
    return visits - gaps, gaps, gap_days, singles


def _visits(session: Session, a: int, b: int) -> tuple[int, int]:
    """Purchase days of members in a..b, and of those the ones with a single purchase."""
    v = VisitDays
    visits, ones = session.execute(select(_sum(v.visits), _sum(v.ones))
                                   .where(v.day.between(a, b))).one()
    return int(visits), int(ones)


def _part_week(session: Session, a: int, b: int) -> tuple[int, int]:
    """(new, returning) customers of the days a..b, the end of a week: new if their first
    purchase day ever falls in that week (on these days, or before them since Monday)."""
    visits, _ = _visits(session, a, b)
    customers = visits - _inside(session, a, b, ("all",))["all"][0]
    firsts = int(session.scalar(select(_sum(VisitDays.firsts)).where(
        VisitDays.day.between(a, b))))
    d, monday = MemberDay, a - (a + 3) % 7
    earlier = int(session.scalar(select(func.count()).select_from(d).where(  # once each
        d.first_day >= monday, d.first_day < a, d.day.between(a, b), d.prev_day < a)))
    return firsts + earlier, customers - firsts - earlier


def _whole_weeks(a: int, b: int) -> tuple[int, int]:
    """The first Monday on or after a, and the last Sunday on or before b."""
    return a + (7 - (a + 3) % 7) % 7, b - ((b + 3) % 7 + 1) % 7


def _inside(session: Session, a: int, b: int, kinds: tuple[str, ...]
            ) -> dict[str, tuple[int, int]]:
    """Per kind of pair of purchase days (x, y): how many lie within a..b (a <= x, y <= b)
    and the sum of their y - x: the whole weeks from visit_pairs, the pairs with x in the
    days before the first Monday or y after the last Sunday from visit_pair_days."""
    first, last = _whole_weeks(a, b)
    p = VisitPairs
    found = {kind: [0, 0] for kind in kinds}
    for kind, pairs, days in session.execute(
            select(p.kind, _sum(p.pairs), _sum(p.days))
            .where(p.kind.in_(kinds), p.x_week >= (first + 3) // 7,
                   p.y_week <= (last + 3) // 7).group_by(p.kind)):
        found[kind] = [int(pairs), int(days)]
    q = VisitPairDays  # the edges: x before the first Monday, or y after the last Sunday
    for kind, pairs, days in session.execute(
            select(q.kind, _sum(q.pairs), _sum(q.days))
            .where(q.kind.in_(kinds),
                   or_(and_(q.x_day >= a, q.x_day < first, q.y_day <= b),
                       and_(q.x_day >= first, q.y_day > last, q.y_day <= b)))
            .group_by(q.kind)):
        found[kind][0] += int(pairs)
        found[kind][1] += int(days)
    return {kind: (n, days) for kind, (n, days) in found.items()}


def _week_customers(session: Session, a: int, b: int) -> dict[int, tuple[int, int]]:
    """{week: (new, returning)}: each customer once a week, on their first purchase day in
    the week and the period; new if it is their first purchase day ever."""
    first, _ = _whole_weeks(a, b)
    v = VisitDays
    week = ((v.day + 3) // 7).label("week")
    rows = select(week, v.firsts, v.week_returning).where(v.day.between(first, b)).subquery()
    weeks = {int(n): (int(new), int(back)) for n, new, back in session.execute(
        select(rows.c.week, _sum(rows.c.firsts), _sum(rows.c.week_returning))
        .group_by(rows.c.week))}
    if first > a:  # the period starts inside a week: its days from a on
        weeks[(a + 3) // 7] = _part_week(session, a, min(first - 1, b))
    return weeks


def _members(session: Session, program: Program, a: int, b: int, active: int
             ) -> MemberStats:
    j = DailyJoins
    total, new, blocked = (int(v) for v in session.execute(select(
        _sum(case((j.day <= b, j.joined), else_=0)),
        _sum(case((j.day.between(a, b), j.joined), else_=0)),
        _sum(case((j.day <= b, j.blocked), else_=0)))).one())
    days = program.winback_after_days
    dormant = _dormant(session, b) if days else None
    return MemberStats(total=total, new=new, active=active, dormant=dormant, blocked=blocked,
                       dormant_after_days=days)


def _dormant(session: Session, b: int) -> int:
    """Dormant members as of the end of day b (bot.loyalty.daily keeps when each member
    becomes dormant and stops being so)."""
    return int(session.scalar(select(_sum(DormantDays.change)).where(DormantDays.day <= b)))


def _templates(session: Session, program: Program, a: int, b: int
               ) -> tuple[CouponFigures, ...]:
    """Per template as the report lists them: the program's, then any other with coupons
    issued or redeemed in the period."""
    c = DailyCoupons
    figures = {template: (int(issued), int(redeemed)) for template, issued, redeemed in
               session.execute(select(c.template_id, _sum(c.issued), _sum(c.redeemed))
                               .where(c.day.between(a, b)).group_by(c.template_id))
               if issued or redeemed}
    rows = {row.key: row for row in session.scalars(select(CouponTemplateRow))}
    keys = list(program.coupons) + sorted(
        key for key, row in rows.items() if key not in program.coupons and row.id in figures)
    listed = []
    for key in keys:
        row, template = rows.get(key), program.coupons.get(key)
        issued, redeemed = figures.get(row.id, (0, 0)) if row else (0, 0)
        listed.append(CouponFigures(key, template.title if template else row.title, issued,
                                    redeemed, _pct(redeemed, issued)))
    return tuple(listed)


def _stamps(session: Session, program: Program, a: int, b: int) -> StampFunnel:
    rules = program.stamps
    counts = session.execute(select(DailyCards.stamps, DailyCards.completed,
                                    _sum(DailyCards.cards))
                             .where(DailyCards.day.between(a, b))
                             .group_by(DailyCards.stamps, DailyCards.completed)).all()
    started = sum(int(n) for _, _, n in counts)
    done = sum(int(n) for _, completed, n in counts if completed)

    def reached(at: int) -> int:
        return sum(int(n) for stamps, completed, n in counts if stamps >= at or completed)

    steps = [FunnelStep("started", 0, started, _pct(started, started))]
    steps += [FunnelStep(name, at, reached(at), _pct(reached(at), started))
              for name, at in [("stamped", 1)] + [(f"milestone_{m.at}", m.at)
                                                 for m in rules.milestones]]
    steps.append(FunnelStep("completed", rules.goal, done, _pct(done, started)))
    return StampFunnel(goal=rules.goal, started=started, completed=done, steps=tuple(steps))


def _tiers(program: Program, counts: dict[str, int]) -> tuple[TierCount, ...]:
    total = sum(counts.values())
    known = [(t.key, t.name) for t in program.tiers]
    known += [(key, key) for key in sorted(counts) if key not in {k for k, _ in known}]
    return tuple(TierCount(key, name, counts.get(key, 0), _pct(counts.get(key, 0), total))
                 for key, name in known)


def _weeks(session: Session, a: int, b: int, customers: dict[int, tuple[int, int]]
           ) -> tuple[WeekRow, ...]:
    """Per local week (Monday first) with counted purchases in the period."""
    week = ((DailyFigures.day + 3) // 7).label("week")
    rows = select(week, DailyFigures.purchases, DailyFigures.revenue) \
        .where(DailyFigures.day.between(a, b)).subquery()
    weeks = []
    for number, purchases, revenue in session.execute(
            select(rows.c.week, _sum(rows.c.purchases), _sum(rows.c.revenue))
            .group_by(rows.c.week).order_by(rows.c.week)):
        if int(purchases):
            new, returning = customers.get(int(number), (0, 0))
            weeks.append(WeekRow(day_date(int(number) * 7 - 3).isoformat(), int(purchases),
                                 int(revenue), new, returning))
    return tuple(weeks)
