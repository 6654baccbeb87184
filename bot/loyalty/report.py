"""The analytics report: members, sales, coupons, points, stamps, tiers, pushes and CLV.

`build_report(session, program, start, end, now, quota=None)` reads everything with a few
aggregate queries (nothing is loaded member by member, so a shop with a million members is
fine) and returns a frozen `Report`; `Report.to_dict()` is JSON-ready, `render_text()` and
`render_csv()` print it. `period(program, first_day, last_day)` turns local calendar days
into the [start, end) instants.

Times are stored as naive UTC; every "day" below is a calendar day in the program's
timezone (`[shop] timezone`), daylight-saving changes included.

Definitions
-----------
Period: the instants [start, end). Activity figures (new members, purchases, coupons issued
and redeemed, points moved, stamp cards started, pushes sent) count what happened in the
period. Stock figures are as of `end` (members total, blocked, dormant) or as of `now`
(tier distribution, outstanding points), since the database keeps no history of those.

Counted purchase: any purchase except a fully refunded one (refunded_amount >= amount > 0).
Revenue is net of refunds: amount - refunded_amount. Every purchase-based figure (active,
dormant, repurchase rate and cycle, average order value, CLV) uses counted purchases only.

Rates are percentages with one decimal (26.7 means 26.7 %); a rate whose denominator is
zero is None, as is any average over nothing.

Members
  total    members who joined before `end`, blocked ones included; POS records merged
           into a LINE member and erased members are not counted (status 'merged' or
           'erased').
  new      members who joined in the period.
  active   members with at least one counted purchase in the period.
  dormant  members whose status is 'active', who joined at least `winback.after_days`
           before `end` and made no counted purchase in the `winback.after_days` before
           `end` (those who never purchased count too; the win-back job, as of `end`,
           takes from them only customers with a counted purchase who are not staff).
           None when the program has no `winback.after_days`.
  blocked  members (joined before `end`) whose status is 'blocked' (they blocked the
           LINE account).

Sales
  customers          members with >= 1 counted purchase in the period (= active).
  repeat_customers   members with >= 2 counted purchases in the period.
  repurchase_rate    repeat_customers / customers, in %: 30,000 customers of whom 8,000
                     bought at least twice -> 26.7.
  repurchase_cycle_days  the mean of the gaps, in local calendar days, between each
                     member's consecutive purchase days within the period (LAG over the
                     member's distinct purchase days, so two purchases on one local day
                     are one visit). Purchases on 3/18, 5/20 and 7/28 -> gaps of 63 and
                     69 days -> 66.0. All gaps of all members are averaged together.
  average_order_value  revenue / counted purchases.

Coupons (per template, per campaign, and in total)
  issued             coupons issued in the period.
  redeemed           redemptions (Redemption rows) in the period, whenever the coupon
                     was issued; a redemption staff voided is not counted.
  redemption_rate    redeemed / issued, in % (above 100 when coupons issued earlier are
                     used now).
  discount           the money off given by those redemptions.
  attributed_orders / attributed_revenue  the purchases linked to those redemptions
                     (each purchase once per row) and their amounts net of refunds.
  claimed / claim_rate  templates only: coupons of the template ever issued, and that as
                     a % of its total cap (None without a cap).
  "Campaign" is the coupon's `reason` (welcome, birthday, stamp_card, reward, winback,
  and campaign:<name> once campaigns exist): there is no campaign table yet.

Points
  issued             positive earn and adjust entries in the period.
  redeemed           spend entries (points exchanged for rewards) in the period.
  expired            expire entries in the period.
  reversed           reverse entries (taken back by refunds) in the period.
  adjusted_out       negative adjust entries in the period.
  outstanding        the sum of all members' point balances now: the liability.
  outstanding_past_expiry  of which lots already past their expiry that the expiry job
                     has not settled yet.
  outstanding_value  outstanding x the program's money value per point; None, as the
                     program file defines no such value.

Stamps (cards started in the period)
  started            stamp cards started (a new card starts at a member's first stamp
                     and right after a card is completed).
  stamped            of those, cards with at least one stamp.
  milestone_<n>      of those, cards holding n stamps or more now, or completed
                     (stamps a refund took back no longer count).
  completed          of those, cards completed. Each step's share is % of started.

Tiers: members per tier now (all statuses), in the program's tier order, with the share
of all members in %.

Pushes: outbox rows with status 'sent' and sent_at in the period, by kind. A multicast
batch marks each of its outbox rows sent, so `sent` already counts every recipient once
(the way LINE bills); multicast_batches / multicast_recipients say how many of them went
out in batches. With a `quota` (for example `[messaging] monthly_push_budget` for a
one-month report): quota_used = sent / quota in %, quota_left = quota - sent.

Staff (each staff member with activity in the period, and every active one)
  purchases / revenue  purchases they recorded by chat (counted ones) and their net amount.
  redemptions        coupons they redeemed.
  voids              purchases and redemptions they undid with 撤銷 / void.
  refused            their commands refused for a rule: unknown codes, member codes or phones,
                     bad amounts, used or expired coupons, their own account (self_service:
                     how many of these were on their own membership or coupons).

Customer lifetime value (an estimate)
  CLV = average order value x purchases per customer per year x LIFESPAN_YEARS (3).
  Purchases per customer per year = counted purchases / customers, annualised from the
  period's length (x DAYS_PER_YEAR / days in the period). None without purchases.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, fields, is_dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Integer, and_, case, cast, extract, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.loyalty.audiences import counted
from bot.loyalty.audiences import dormant as asleep
from bot.loyalty.staff import REFUSALS
from bot.loyalty.timeutil import end_of_day, local_date, start_of_day
from bot.models import (
    AuditLog,
    Coupon,
    CouponTemplateRow,
    Member,
    OutboxBatch,
    OutboxMessage,
    PointEntry,
    Purchase,
    Redemption,
    Refund,
    Staff,
    StampCard,
)
from bot.program import Program

DEFAULT_DAYS = 30  # the period when none is given: the last 30 local days
LIFESPAN_YEARS = 3  # the assumed customer lifespan of the CLV estimate
DAYS_PER_YEAR = 365  # the CLV estimate annualises the period with this
SECONDS_PER_DAY = 86_400
_OFFSET_PROBE = dt.timedelta(hours=6)  # how finely the zone's offset changes are looked for


# -- the report ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemberStats:
    total: int
    new: int
    active: int
    dormant: int | None
    blocked: int
    dormant_after_days: int | None


@dataclass(frozen=True)
class SalesStats:
    purchases: int
    customers: int
    repeat_customers: int
    revenue: int
    average_order_value: float | None
    repurchase_rate: float | None
    repurchase_cycle_days: float | None
    repurchase_gaps: int
    refunded_excluded: int  # fully refunded purchases in the period, left out of everything


@dataclass(frozen=True)
class CouponRow:
    key: str
    title: str
    issued: int
    redeemed: int
    redemption_rate: float | None
    discount: int
    attributed_orders: int
    attributed_revenue: int
    total_cap: int | None = None
    claimed: int | None = None
    claim_rate: float | None = None


@dataclass(frozen=True)
class CouponStats:
    total: CouponRow
    templates: tuple[CouponRow, ...]
    campaigns: tuple[CouponRow, ...]


@dataclass(frozen=True)
class PointStats:
    issued: int
    redeemed: int
    expired: int
    reversed: int
    adjusted_out: int
    outstanding: int
    outstanding_past_expiry: int
    outstanding_value: float | None
    members_with_points: int


@dataclass(frozen=True)
class FunnelStep:
    step: str  # started | stamped | milestone_<n> | completed
    stamps: int  # stamps a card needs for this step
    cards: int
    share: float | None  # % of cards started


@dataclass(frozen=True)
class StampFunnel:
    goal: int
    started: int
    completed: int
    steps: tuple[FunnelStep, ...]


@dataclass(frozen=True)
class TierCount:
    key: str
    name: str
    members: int
    share: float | None


@dataclass(frozen=True)
class KindCount:
    kind: str
    sent: int


@dataclass(frozen=True)
class PushStats:
    sent: int
    by_kind: tuple[KindCount, ...]
    single_pushes: int
    multicast_batches: int
    multicast_recipients: int
    quota: int | None
    quota_used: float | None
    quota_left: int | None


@dataclass(frozen=True)
class StaffRow:
    key: str  # "3 阿明": the staff id and name (an erased staff member has no name)
    active: bool
    purchases: int
    revenue: int
    redemptions: int
    voids: int
    refused: int
    self_service: int


@dataclass(frozen=True)
class LifetimeValue:
    value: float | None
    average_order_value: float | None
    purchases_per_customer: float | None
    purchases_per_year: float | None
    lifespan_years: int
    period_days: float


@dataclass(frozen=True)
class Report:
    shop: str
    currency: str
    timezone: str
    start: dt.datetime  # in the program's timezone
    end: dt.datetime
    first_day: dt.date  # the local days the period covers
    last_day: dt.date
    generated_at: dt.datetime
    members: MemberStats
    sales: SalesStats
    coupons: CouponStats
    points: PointStats
    stamps: StampFunnel
    tiers: tuple[TierCount, ...]
    pushes: PushStats
    staff: tuple[StaffRow, ...]
    lifetime_value: LifetimeValue

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: dates and times as ISO strings, tuples as lists."""
        return _plain(self)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    return value


# -- building it -----------------------------------------------------------------------------
def period(program: Program, first_day: dt.date, last_day: dt.date
           ) -> tuple[dt.datetime, dt.datetime]:
    """The [start, end) instants of the local days first_day..last_day (inclusive)."""
    return (start_of_day(first_day, program.timezone),
            end_of_day(last_day, program.timezone))


def report_period(program: Program, first: dt.date | None, last: dt.date | None,
                  now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) for the local days first..last; by default the last DEFAULT_DAYS days,
    today included. Raises ValueError if first comes after last."""
    last = last or local_date(now, program.timezone)
    first = first or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ValueError(f"the first day {first} is after the last day {last}")
    if first.year < 2000 or last.year > 2999:
        raise ValueError("the days must fall in the years 2000 to 2999")
    return period(program, first, last)


def build_report(session: Session, program: Program, start: dt.datetime, end: dt.datetime,
                 now: dt.datetime, *, quota: int | None = None) -> Report:
    """The analytics report for [start, end), stock figures as of `end` and `now`."""
    for name, value in (("start", start), ("end", end), ("now", now)):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be an aware datetime")
    if end <= start:
        raise ValueError("the period must end after it starts")
    if quota is not None and quota < 0:
        raise ValueError("quota must not be negative")
    tz = program.timezone
    sales = _sales(session, program, start, end)
    return Report(
        shop=program.shop_name, currency=program.currency, timezone=str(tz.key),
        start=start.astimezone(tz), end=end.astimezone(tz),
        first_day=local_date(start, tz),
        last_day=local_date(end - dt.timedelta(microseconds=1), tz),
        generated_at=now.astimezone(tz),
        members=_members(session, program, start, end, sales.customers),
        sales=sales,
        coupons=_coupons(session, program, start, end),
        points=_points(session, program, start, end, now),
        stamps=_stamps(session, program, start, end),
        tiers=_tiers(session, program),
        pushes=_pushes(session, start, end, quota),
        staff=_staff(session, start, end),
        lifetime_value=_lifetime_value(sales, start, end),
    )


def _pct(part: int | float, whole: int | float) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _within(column: Any, start: dt.datetime, end: dt.datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


def _net() -> ColumnElement[int]:
    return Purchase.amount - Purchase.refunded_amount


def _sum(expression: Any) -> Any:
    return func.coalesce(func.sum(expression), 0)


def _count_if(condition: ColumnElement[bool]) -> Any:
    return _sum(case((condition, 1), else_=0))


def _members(session: Session, program: Program, start: dt.datetime, end: dt.datetime,
             active: int) -> MemberStats:
    total, new, blocked = session.execute(
        select(func.count(), _count_if(Member.joined_at >= start),
               _count_if(Member.status == "blocked"))
        .select_from(Member).where(Member.joined_at < end,
                                   Member.status.in_(("active", "blocked")))).one()
    days, dormant = program.winback_after_days, None
    if days:
        dormant = session.scalar(select(func.count()).select_from(Member)
                                 .where(Member.status == "active", asleep(days, end)))
    return MemberStats(total=int(total), new=int(new), active=active,
                       dormant=None if dormant is None else int(dormant),
                       blocked=int(blocked), dormant_after_days=days)


def _sales(session: Session, program: Program, start: dt.datetime, end: dt.datetime
           ) -> SalesStats:
    in_period = _within(Purchase.created_at, start, end)
    purchases, revenue, excluded = session.execute(
        select(_count_if(counted()), _sum(case((counted(), _net()), else_=0)),
               _count_if(~counted()))
        .select_from(Purchase).where(in_period)).one()
    per_member = (select(Purchase.member_id, func.count().label("n"))
                  .where(in_period, counted()).group_by(Purchase.member_id).subquery())
    customers, repeat = session.execute(
        select(func.count(), _count_if(per_member.c.n >= 2)).select_from(per_member)).one()
    day = _local_day(session, Purchase.created_at, program.timezone, start, end)
    days = (select(Purchase.member_id.label("member_id"), day.label("day"))
            .where(in_period, counted()).distinct().subquery())
    previous = func.lag(days.c.day).over(partition_by=days.c.member_id, order_by=days.c.day)
    gaps = select((days.c.day - previous).label("gap")).subquery()
    gap_count, gap_sum = session.execute(
        select(func.count(gaps.c.gap), _sum(gaps.c.gap))).one()
    purchases, revenue, customers = int(purchases), int(revenue), int(customers)
    return SalesStats(
        purchases=purchases, customers=customers, repeat_customers=int(repeat),
        revenue=revenue,
        average_order_value=round(revenue / purchases, 2) if purchases else None,
        repurchase_rate=_pct(int(repeat), customers),
        repurchase_cycle_days=round(int(gap_sum) / gap_count, 1) if gap_count else None,
        repurchase_gaps=int(gap_count), refunded_excluded=int(excluded))


def _epoch_seconds(session: Session, column: Any) -> ColumnElement[int]:
    """Whole seconds since 1970 of a naive-UTC column, the same way on both databases."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def _utc_offsets(tz: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[tuple[int, int]]:
    """[(from epoch second, UTC offset in seconds)] of `tz` over [start, end), oldest first."""
    def offset(second: int) -> int:
        instant = dt.datetime.fromtimestamp(second, dt.UTC)
        return int(instant.astimezone(tz).utcoffset().total_seconds())

    first, last = math.floor(start.timestamp()), math.ceil(end.timestamp()) - 1
    step = int(_OFFSET_PROBE.total_seconds())
    segments = [(first, offset(first))]
    probe = first
    while probe < last:
        ahead = min(probe + step, last)
        if offset(ahead) != segments[-1][1]:
            low, high = probe, ahead  # offset(low) is the old one, offset(high) the new
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == segments[-1][1] else (low, middle)
            segments.append((high, offset(high)))
        probe = ahead
    return segments


def _local_day(session: Session, column: Any, tz: ZoneInfo, start: dt.datetime,
               end: dt.datetime) -> ColumnElement[int]:
    """The local calendar day (days since 1970-01-01) of a naive-UTC column in [start, end)."""
    seconds = _epoch_seconds(session, column)
    segments = _utc_offsets(tz, start, end)
    if len(segments) == 1:
        offset: Any = segments[0][1]
    else:
        offset = case(*((seconds < since, earlier)
                        for (_, earlier), (since, _) in zip(segments, segments[1:],
                                                           strict=False)),
                      else_=segments[-1][1])
    return (seconds + offset) // SECONDS_PER_DAY


def _coupon_figures(session: Session, group: Any, start: dt.datetime, end: dt.datetime
                    ) -> dict[Any, list[int]]:
    """{group value: [issued, redeemed, discount, attributed orders, attributed revenue]};
    with `group` None, one entry under the key None."""
    keys = [group] if group is not None else []

    def grouped(statement: Any) -> Any:
        return statement.group_by(group) if group is not None else statement

    figures: dict[Any, list[int]] = {}

    def add(rows: Iterable[Any], at: int) -> None:
        for row in rows:
            key = row[0] if group is not None else None
            values = row[1:] if group is not None else row
            slot = figures.setdefault(key, [0, 0, 0, 0, 0])
            for i, value in enumerate(values):
                slot[at + i] = int(value or 0)

    add(session.execute(grouped(select(*keys, func.count()).select_from(Coupon)
                                .where(_within(Coupon.issued_at, start, end)))), 0)
    redeemed = (select(Redemption).join(Coupon, Coupon.id == Redemption.coupon_id)
                .where(_within(Redemption.redeemed_at, start, end),
                       Redemption.voided_at.is_(None)))
    add(session.execute(grouped(redeemed.with_only_columns(
        *keys, func.count(Redemption.id), _sum(Redemption.discount)))), 1)
    linked = (redeemed.with_only_columns(*[k.label("g") for k in keys],
                                         Redemption.purchase_id.label("purchase_id"))
              .where(Redemption.purchase_id.is_not(None)).distinct().subquery())
    add(session.execute(
        select(*([linked.c.g] if keys else []), func.count(), _sum(_net()))
        .select_from(linked).join(Purchase, Purchase.id == linked.c.purchase_id)
        .group_by(*([linked.c.g] if keys else []))), 3)
    if group is None:
        figures.setdefault(None, [0, 0, 0, 0, 0])
    return figures


def _coupon_row(key: str, title: str, figures: list[int], *, total_cap: int | None = None,
                claimed: int | None = None) -> CouponRow:
    issued, redeemed, discount, orders, revenue = figures
    return CouponRow(key=key, title=title, issued=issued, redeemed=redeemed,
                     redemption_rate=_pct(redeemed, issued), discount=discount,
                     attributed_orders=orders, attributed_revenue=revenue,
                     total_cap=total_cap, claimed=claimed,
                     claim_rate=_pct(claimed or 0, total_cap) if total_cap else None)


def _coupons(session: Session, program: Program, start: dt.datetime, end: dt.datetime
             ) -> CouponStats:
    rows = {row.key: row for row in session.scalars(select(CouponTemplateRow))}
    by_template = _coupon_figures(session, Coupon.template_id, start, end)
    keys = list(program.coupons) + sorted(
        key for key, row in rows.items() if key not in program.coupons and row.id in by_template)
    templates = []
    for key in keys:
        row, template = rows.get(key), program.coupons.get(key)
        figures = by_template.get(row.id, [0] * 5) if row else [0] * 5
        cap = template.total_cap if template else row.total_cap
        templates.append(_coupon_row(key, template.title if template else row.title, figures,
                                     total_cap=cap, claimed=row.issued_count if row else 0))
    by_reason = _coupon_figures(session, Coupon.reason, start, end)
    campaigns = tuple(_coupon_row(reason, reason, by_reason[reason])
                      for reason in sorted(by_reason))
    total = _coupon_figures(session, None, start, end)[None]
    return CouponStats(total=_coupon_row("total", "total", total), templates=tuple(templates),
                       campaigns=campaigns)


def _points(session: Session, program: Program, start: dt.datetime, end: dt.datetime,
            now: dt.datetime) -> PointStats:
    kind, points = PointEntry.kind, PointEntry.points
    issued, redeemed, expired, reversed_, adjusted_out = session.execute(
        select(_sum(case((and_(kind.in_(("earn", "adjust")), points > 0), points), else_=0)),
               *(_sum(case((condition, -points), else_=0)) for condition in (
                   kind == "spend", kind == "expire", kind == "reverse",
                   and_(kind == "adjust", points < 0))))
        .where(_within(PointEntry.created_at, start, end))).one()
    outstanding, holders = session.execute(
        select(_sum(Member.points_balance), _count_if(Member.points_balance > 0))).one()
    past_expiry = session.scalar(
        select(_sum(PointEntry.remaining))
        .where(PointEntry.remaining > 0, PointEntry.expires_at <= now))
    value = getattr(program, "point_value", None)  # the program file has none (yet)
    return PointStats(
        issued=int(issued), redeemed=int(redeemed), expired=int(expired),
        reversed=int(reversed_), adjusted_out=int(adjusted_out), outstanding=int(outstanding),
        outstanding_past_expiry=int(past_expiry),
        outstanding_value=round(float(int(outstanding) * value), 2) if value else None,
        members_with_points=int(holders))


def _stamps(session: Session, program: Program, start: dt.datetime, end: dt.datetime
            ) -> StampFunnel:
    rules = program.stamps
    completed = StampCard.status == "completed"
    steps = [("stamped", 1)] + [(f"milestone_{m.at}", m.at) for m in rules.milestones]
    started, done, *reached = session.execute(
        select(func.count(), _count_if(completed),
               *(_count_if(or_(StampCard.stamps >= at, completed)) for _, at in steps))
        .select_from(StampCard).where(_within(StampCard.started_at, start, end))).one()
    started, done = int(started), int(done)
    funnel = [FunnelStep("started", 0, started, _pct(started, started))]
    funnel += [FunnelStep(name, at, int(cards), _pct(int(cards), started))
               for (name, at), cards in zip(steps, reached, strict=True)]
    funnel.append(FunnelStep("completed", rules.goal, done, _pct(done, started)))
    return StampFunnel(goal=rules.goal, started=started, completed=done, steps=tuple(funnel))


def _tiers(session: Session, program: Program) -> tuple[TierCount, ...]:
    counts = {key: int(n) for key, n in session.execute(
        select(Member.tier, func.count()).group_by(Member.tier))}
    total = sum(counts.values())
    known = [(t.key, t.name) for t in program.tiers]
    known += [(key, key) for key in sorted(counts) if key not in {k for k, _ in known}]
    return tuple(TierCount(key, name, counts.get(key, 0), _pct(counts.get(key, 0), total))
                 for key, name in known)


def _pushes(session: Session, start: dt.datetime, end: dt.datetime, quota: int | None
            ) -> PushStats:
    rows = session.execute(
        select(OutboxMessage.kind, func.count(),
               _count_if(OutboxMessage.batch_id.is_not(None)))
        .where(OutboxMessage.status == "sent", _within(OutboxMessage.sent_at, start, end))
        .group_by(OutboxMessage.kind)).all()
    by_kind = tuple(sorted((KindCount(kind, int(n)) for kind, n, _ in rows),
                           key=lambda k: (-k.sent, k.kind)))
    sent = sum(k.sent for k in by_kind)
    via_batches = sum(int(b) for _, _, b in rows)
    batches = session.scalar(
        select(func.count()).select_from(OutboxBatch)
        .where(OutboxBatch.status == "sent", _within(OutboxBatch.sent_at, start, end)))
    return PushStats(sent=sent, by_kind=by_kind, single_pushes=sent - via_batches,
                     multicast_batches=int(batches), multicast_recipients=via_batches,
                     quota=quota, quota_used=_pct(sent, quota) if quota is not None else None,
                     quota_left=quota - sent if quota is not None else None)


def _staff(session: Session, start: dt.datetime, end: dt.datetime) -> tuple[StaffRow, ...]:
    """Per staff member: what they did by chat in the period, and what was refused."""
    def by_staff(statement: Any) -> dict[int, Any]:
        return {row[0]: row[1:] for row in session.execute(statement)}

    actor_id = func.substr(AuditLog.actor, 7)  # "staff:12" -> "12"
    audits = by_staff(
        select(actor_id, _count_if(AuditLog.action == "coupon.void_redemption"),
               _count_if(AuditLog.action.in_(REFUSALS)),
               _count_if(AuditLog.action.in_(REFUSALS) & (AuditLog.reason == "self_service")))
        .where(AuditLog.actor.like("staff:%"), _within(AuditLog.at, start, end))
        .group_by(actor_id))
    bought = by_staff(select(Purchase.staff_id, func.count(), _sum(_net()))
                      .where(Purchase.staff_id.is_not(None), counted(),
                             _within(Purchase.created_at, start, end))
                      .group_by(Purchase.staff_id))
    redeemed = by_staff(select(Redemption.staff_id, func.count())
                        .where(Redemption.staff_id.is_not(None),
                               Redemption.voided_at.is_(None),
                               _within(Redemption.redeemed_at, start, end))
                        .group_by(Redemption.staff_id))
    voided = by_staff(select(Purchase.staff_id, func.count()).join(Refund)
                      .where(Refund.refund_id.like("void:%"),
                             _within(Refund.created_at, start, end))
                      .group_by(Purchase.staff_id))
    rows = []
    for worker in session.scalars(select(Staff).order_by(Staff.id)):
        void_redeem, refused, own = audits.get(str(worker.id), (0, 0, 0))
        figures = (*bought.get(worker.id, (0, 0)), redeemed.get(worker.id, (0,))[0],
                   voided.get(worker.id, (0,))[0] + void_redeem, refused, own)
        if worker.active or any(figures):
            rows.append(StaffRow(f"{worker.id} {worker.name}".strip(), worker.active,
                                 *(int(f or 0) for f in figures)))
    return tuple(rows)



def _lifetime_value(sales: SalesStats, start: dt.datetime, end: dt.datetime) -> LifetimeValue:
    days = (end - start).total_seconds() / SECONDS_PER_DAY
    if not sales.purchases:
        return LifetimeValue(None, None, None, None, LIFESPAN_YEARS, round(days, 2))
    aov = sales.revenue / sales.purchases
    per_customer = sales.purchases / sales.customers
    per_year = per_customer * DAYS_PER_YEAR / days
    return LifetimeValue(value=round(aov * per_year * LIFESPAN_YEARS, 2),
                         average_order_value=round(aov, 2),
                         purchases_per_customer=round(per_customer, 2),
                         purchases_per_year=round(per_year, 2),
                         lifespan_years=LIFESPAN_YEARS, period_days=round(days, 2))


# -- printing it -----------------------------------------------------------------------------
def _width(text: str) -> int:
    """Columns a terminal gives `text`: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def _num(value: Any, suffix: str = "") -> str:
    """1,234 / 66.0 / 26.7% ; "-" where undefined."""
    if value is None:
        return "-"
    if suffix == "%":
        return f"{value:.1f}%"
    return f"{value:,}{suffix}"


def _money(report: Report, value: int | float | None) -> str:
    if value is None:
        return "-"
    amount = f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
    return f"{report.currency} {amount}"


def _table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Columns padded to their widest cell; the first column left, the others right."""
    widths = [max(_width(cell) for cell in column) for column in zip(header, *rows,
                                                                      strict=True)]
    return [indent + "  ".join(_pad(cell, w, right=i > 0)
                               for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
            .rstrip() for line in [header, *rows]]


def render_text(report: Report) -> str:
    """A plain-text report for a terminal or an e-mail, labels in English and zh-TW."""
    m, s, p, c, pu, clv = (report.members, report.sales, report.points, report.coupons,
                           report.pushes, report.lifetime_value)
    lines = [f"Loyalty report 會員報表 · {report.shop}",
             f"{report.first_day.isoformat()} - {report.last_day.isoformat()} "
             f"({report.timezone}), generated {report.generated_at:%Y-%m-%d %H:%M}", ""]

    def section(title: str, rows: list[tuple[str, str]]) -> None:
        lines.append(title)
        lines.extend(_table(["", ""], [list(row) for row in rows])[1:])
        lines.append("")

    section("Members 會員", [
        ("Total 全部", _num(m.total)), ("New 新加入", _num(m.new)),
        ("Active 有消費", _num(m.active)),
        (f"Dormant 沉睡 ({m.dormant_after_days or '-'} days)", _num(m.dormant)),
        ("Blocked 已封鎖", _num(m.blocked))])
    section("Sales 消費", [
        ("Purchases 筆數", _num(s.purchases)), ("Customers 消費人數", _num(s.customers)),
        ("Repeat customers 回購人數", _num(s.repeat_customers)),
        ("Repurchase rate 回購率", _num(s.repurchase_rate, "%")),
        ("Repurchase cycle 回購週期 (days)", _num(s.repurchase_cycle_days)),
        ("Revenue 營收", _money(report, s.revenue)),
        ("Average order 客單價", _money(report, s.average_order_value)),
        ("Fully refunded, excluded 全額退款", _num(s.refunded_excluded))])
    lines.append("Coupons 優惠券")
    header = ["", "issued", "redeemed", "rate", "discount", "orders", "revenue", "cap used"]

    def coupon_line(row: CouponRow) -> list[str]:
        cap = f"{row.claimed:,}/{row.total_cap:,}" if row.total_cap else ""
        return [row.key if row.title == row.key else f"{row.key} {row.title}",
                _num(row.issued), _num(row.redeemed), _num(row.redemption_rate, "%"),
                _num(row.discount), _num(row.attributed_orders),
                _num(row.attributed_revenue), cap]
    lines.extend(_table(header, [coupon_line(r) for r in c.templates]
                        + [coupon_line(c.total)]))
    if c.campaigns:
        lines.append("  by campaign 活動別 (coupon reason)")
        lines.extend(_table(header[:-1], [coupon_line(r)[:-1] for r in c.campaigns]))
    lines.append("")
    section("Points 點數", [
        ("Issued 發出", _num(p.issued)), ("Redeemed 兌換", _num(p.redeemed)),
        ("Expired 到期", _num(p.expired)), ("Reversed by refunds 退款收回", _num(p.reversed)),
        ("Adjusted down 人工扣除", _num(p.adjusted_out)),
        ("Outstanding 流通在外", _num(p.outstanding)),
        ("  of which past expiry 已過期未結算", _num(p.outstanding_past_expiry)),
        ("Outstanding value 負債金額", _money(report, p.outstanding_value))])
    lines.append(f"Stamp cards 集點卡 (goal {report.stamps.goal})")
    lines.extend(_table(["", "stamps", "cards", "share"],
                        [[f.step, _num(f.stamps), _num(f.cards), _num(f.share, "%")]
                         for f in report.stamps.steps]))
    lines.append("")
    lines.append("Tiers 會員等級")
    lines.extend(_table(["", "members", "share"],
                        [[f"{t.key} {t.name}" if t.name != t.key else t.key,
                          _num(t.members), _num(t.share, "%")] for t in report.tiers]))
    lines.append("")
    section("Pushes 推播", [
        ("Sent 已送出", _num(pu.sent)),
        *((f"  {k.kind}", _num(k.sent)) for k in pu.by_kind),
        ("Single pushes 單則", _num(pu.single_pushes)),
        ("Multicast recipients 群發人數", _num(pu.multicast_recipients)),
        ("Multicast batches 群發批次", _num(pu.multicast_batches)),
        ("Quota 額度", _num(pu.quota)), ("Quota used 已用", _num(pu.quota_used, "%")),
        ("Quota left 剩餘", _num(pu.quota_left))])
    if report.staff:
        lines.append("Staff 員工")
        lines.extend(_table(
            ["", "purchases", "revenue", "redemptions", "voids", "refused", "of which own"],
            [[row.key + ("" if row.active else " (removed)"), _num(row.purchases),
              _num(row.revenue), _num(row.redemptions), _num(row.voids), _num(row.refused),
              _num(row.self_service)] for row in report.staff]))
        lines.append("")
    section(f"Customer lifetime value 顧客終身價值 (estimate, {clv.lifespan_years} years)", [
        ("CLV", _money(report, clv.value)),
        ("Average order 客單價", _money(report, clv.average_order_value)),
        ("Purchases per customer 人均筆數", _num(clv.purchases_per_customer)),
        ("Purchases per year 年化筆數", _num(clv.purchases_per_year))])
    return "\n".join(lines).rstrip() + "\n"


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, item, out)
    elif isinstance(value, list):
        for item in value:
            name = next(item[k] for k in ("key", "kind", "step") if k in item)
            _flatten(f"{prefix}.{name}" if prefix else str(name),
                     {k: v for k, v in item.items() if k not in ("key", "kind", "step")}, out)
    else:
        out.append((prefix, "" if value is None else value))


def render_csv(report: Report) -> str:
    """section,metric,value rows (a header first); empty values where undefined."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "metric", "value"])
    for section, value in report.to_dict().items():
        if isinstance(value, dict | list):
            rows: list[tuple[str, Any]] = []
            _flatten("", value, rows)
            writer.writerows((section, metric, item) for metric, item in rows)
        else:
            writer.writerow(("report", section, value))
    return buffer.getvalue()
