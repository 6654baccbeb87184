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

Pushes: outbox rows (messages) with status 'sent' and sent_at in the period, by kind;
multicast_batches / multicast_recipients say how many went out in multicasts.
  billed             what LINE bills: one per push request (however many messages it
                     combined) and one per multicast recipient; a message carried in a
                     reply (by_reply) costs nothing. billed_by_kind counts a combined push
                     once, for its most urgent kind (in the order receipt, coupon_used,
                     expiry_warning, birthday, tier, nudge, winback, campaign).
  dropped            messages given up as stale (a nudge nobody saw in time), created in
                     the period.
  billed_per_purchase / billed_per_active_member  billed / counted purchases, and billed /
                     members who bought in the period.
  forecast           for a period not over yet: billed so far, extended at the same pace to
                     the period's end.
With a `quota` (the month's allowance, `[messaging] line_plan` or `monthly_push_budget`, for
a one-month report): quota_used = billed / quota in %, quota_left = quota - billed.

Weeks (for charts): per local week, Monday first, of the period's counted purchases:
  purchases, revenue (net), new_customers (whose first counted purchase ever fell in that
  week) and returning_customers (who had bought before it).

Staff (each staff member with activity in the period, and every active one)
  purchases / revenue  purchases they recorded by chat (counted ones) and their net amount.
  redemptions        coupons they redeemed.
  voids              purchases and redemptions they undid with 撤銷 / void.
  refused            their commands refused for a rule: unknown codes, member codes or phones,
                     bad amounts, used or expired coupons, their own account (self_service:
                     how many of these were on their own membership or coupons).
  claims_made / _claimed / _expired   claim codes they made (集點 AMOUNT), how many a
                     customer took, how many expired with nobody taking them.

Taps (counted by the bot, per local day): taps on its buttons, by where the button was
  (`menu`, a message's kind, `campaign_<key>`) and what it asked for.

Customer lifetime value (an estimate)
  CLV = average order value x purchases per customer per year x LIFESPAN_YEARS (3).
  Purchases per customer per year = counted purchases with a customer (claim codes nobody
  took have none) / customers, annualised from the period's length (x DAYS_PER_YEAR / days
  in the period). None without customers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, fields, is_dataclass
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Integer, and_, case, cast, extract, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.loyalty.audiences import counted
from bot.loyalty.audiences import dormant as asleep
from bot.loyalty.claims import ClaimCounts, claim_counts
from bot.loyalty.staff import REFUSALS
from bot.loyalty.taps import tap_counts
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
from bot.program import NOTICE_KINDS, Program

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
    unclaimed: int = 0  # counted purchases whose claim code nobody has taken (no customer)


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
    billed: int
    billed_by_kind: tuple[KindCount, ...]
    by_reply: int
    dropped: int
    billed_per_purchase: float | None
    billed_per_active_member: float | None
    forecast: int | None


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
    claims_made: int = 0  # claim codes they made in the period
    claims_claimed: int = 0  # ... that a customer took
    claims_expired: int = 0  # ... that expired with nobody taking them


@dataclass(frozen=True)
class TapRow:
    source: str  # "menu", a message kind ("nudge", "expiry_warning", ...) or "campaign_<key>"
    action: str  # what the button asked for ("points", "rewards", "claim", ...)
    taps: int


@dataclass(frozen=True)
class LifetimeValue:
    value: float | None
    average_order_value: float | None
    purchases_per_customer: float | None
    purchases_per_year: float | None
    lifespan_years: int
    period_days: float


@dataclass(frozen=True)
class WeekRow:
    key: str  # the week's Monday, ISO (a week may begin before or end after the period)
    purchases: int
    revenue: int
    new_customers: int  # whose first counted purchase ever was in this week
    returning_customers: int  # who had bought before this week


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
    weeks: tuple[WeekRow, ...] = ()
    taps: tuple[TapRow, ...] = ()

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
        pushes=_pushes(session, start, end, now, quota, sales),
        staff=_staff(session, start, end, now),
        lifetime_value=_lifetime_value(sales, start, end),
        weeks=_weeks(session, program, start, end),
        taps=tuple(TapRow(*row) for row in tap_counts(
            session, local_date(start, tz), local_date(end - dt.timedelta(microseconds=1), tz))),
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
    purchases, revenue, excluded, unclaimed = session.execute(
        select(_count_if(counted()), _sum(case((counted(), _net()), else_=0)),
               _count_if(~counted()), _count_if(counted() & Purchase.member_id.is_(None)))
        .select_from(Purchase).where(in_period)).one()
    customer = Purchase.member_id.is_not(None)  # an unclaimed order has no customer yet
    per_member = (select(Purchase.member_id, func.count().label("n"))
                  .where(in_period, counted(), customer).group_by(Purchase.member_id)
                  .subquery())
    customers, repeat = session.execute(
        select(func.count(), _count_if(per_member.c.n >= 2)).select_from(per_member)).one()
    day = _local_day(session, Purchase.created_at, program.timezone, start, end)
    days = (select(Purchase.member_id.label("member_id"), day.label("day"))
            .where(in_period, counted(), customer).distinct().subquery())
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
        repurchase_gaps=int(gap_count), refunded_excluded=int(excluded),
        unclaimed=int(unclaimed))


def _weeks(session: Session, program: Program, start: dt.datetime, end: dt.datetime
           ) -> tuple[WeekRow, ...]:
    """Counted purchases, net revenue, new and returning customers per local week (Monday
    first), within the period."""
    day = _local_day(session, Purchase.created_at, program.timezone, start, end)
    week = (day + 3) // 7  # day 0, 1970-01-01, was a Thursday
    rows = session.execute(
        select(week.label("week"), Purchase.member_id, func.count(), _sum(_net()))
        .where(_within(Purchase.created_at, start, end), counted())
        .group_by(week, Purchase.member_id)).all()
    buyers = (select(Purchase.member_id)  # a subquery: a list of ids would stop PostgreSQL
              .where(_within(Purchase.created_at, start, end), counted()))  # at 65,535
    first = dict(session.execute(
        select(Purchase.member_id, func.min(Purchase.created_at))
        .where(counted(), Purchase.member_id.in_(buyers))
        .group_by(Purchase.member_id)).all()) if rows else {}
    epoch = dt.date(1970, 1, 1)
    weeks: dict[int, list[int]] = {}
    for number, member_id, count, revenue in rows:
        monday = epoch + dt.timedelta(days=int(number) * 7 - 3)
        figures = weeks.setdefault(int(number), [0, 0, 0, 0])
        figures[0] += int(count)
        figures[1] += int(revenue or 0)
        if member_id is None:  # unclaimed orders: revenue without a customer
            continue
        began = local_date(first[member_id].replace(tzinfo=dt.UTC), program.timezone)
        figures[2 if began >= monday else 3] += 1
    return tuple(WeekRow((epoch + dt.timedelta(days=n * 7 - 3)).isoformat(), *figures)
                 for n, figures in sorted(weeks.items()))


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


def _coupon_figures(session: Session, group: Any, start: dt.datetime, end: dt.datetime,
                    only: ColumnElement[bool] | None = None) -> dict[Any, list[int]]:
    """{group value: [issued, redeemed, discount, attributed orders, attributed revenue]};
    with `group` None, one entry under the key None. `only`: a condition on the coupons
    counted (the others are not read, where an index serves it)."""
    coupons = [only] if only is not None else []
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
                                .where(_within(Coupon.issued_at, start, end), *coupons))), 0)
    redeemed = (select(Redemption).join(Coupon, Coupon.id == Redemption.coupon_id)
                .where(_within(Redemption.redeemed_at, start, end),
                       Redemption.voided_at.is_(None), *coupons))
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


def coupons_by_reason(session: Session, reasons: Iterable[str], start: dt.datetime,
                      end: dt.datetime) -> dict[str, CouponRow]:
    """The report's coupon figures (issued, redeemed, attributed orders and revenue) for each
    of these reasons (`campaign:<key>` for a campaign's coupons); a reason without any
    coupon gets zeros. Only these reasons' coupons are read (ix_coupons_reason): the
    campaigns page asks for all time, and a shop's coupons run into millions."""
    reasons = list(reasons)
    found = _coupon_figures(session, Coupon.reason, start, end,
                            only=Coupon.reason.in_(reasons)) if reasons else {}
    return {r: _coupon_row(r, r, found.get(r, [0] * 5)) for r in reasons}


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


def _pushes(session: Session, start: dt.datetime, end: dt.datetime, now: dt.datetime,
            quota: int | None, sales: SalesStats) -> PushStats:
    rows = session.execute(
        select(OutboxMessage.kind, func.count(),
               _count_if(OutboxMessage.batch_id.is_not(None)),
               _count_if(OutboxMessage.via == "reply"))
        .where(OutboxMessage.status == "sent", _within(OutboxMessage.sent_at, start, end))
        .group_by(OutboxMessage.kind)).all()
    by_kind = tuple(sorted((KindCount(kind, int(n)) for kind, n, _, _ in rows),
                           key=lambda k: (-k.sent, k.kind)))
    sent = sum(k.sent for k in by_kind)
    via_batches = sum(int(b) for _, _, b, _ in rows)
    by_reply = sum(int(r) for _, _, _, r in rows)
    batches = session.scalar(
        select(func.count()).select_from(OutboxBatch)
        .where(OutboxBatch.status == "sent", _within(OutboxBatch.sent_at, start, end)))
    billed_by_kind = _billed(session, start, end)
    billed = sum(k.sent for k in billed_by_kind)
    dropped = session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status == "dropped", _within(OutboxMessage.created_at, start, end)))
    forecast = (round(billed * (end - start) / (now - start)) if start < now < end else None)
    return PushStats(sent=sent, by_kind=by_kind, single_pushes=sent - via_batches - by_reply,
                     multicast_batches=int(batches), multicast_recipients=via_batches,
                     quota=quota, quota_used=_pct(billed, quota) if quota is not None else None,
                     quota_left=quota - billed if quota is not None else None,
                     billed=billed, billed_by_kind=billed_by_kind, by_reply=by_reply,
                     dropped=int(dropped or 0),
                     billed_per_purchase=_ratio(billed, sales.purchases),
                     billed_per_active_member=_ratio(billed, sales.customers),
                     forecast=forecast)


def _billed(session: Session, start: dt.datetime, end: dt.datetime) -> tuple[KindCount, ...]:
    """Billed messages by kind: each push request once (for its most urgent kind), each
    multicast recipient once, replies not at all."""
    urgency = {kind: i for i, kind in enumerate(NOTICE_KINDS)}
    requests: dict[str, str] = {}
    counts: dict[str, int] = {}
    for kind, key, batch_id in session.execute(
            select(OutboxMessage.kind, func.coalesce(OutboxMessage.push_key,
                                                     OutboxMessage.retry_key),
                   OutboxMessage.batch_id)
            .where(OutboxMessage.status == "sent", _within(OutboxMessage.sent_at, start, end),
                   or_(OutboxMessage.via.is_(None), OutboxMessage.via != "reply"))):
        if batch_id is not None:
            counts[kind] = counts.get(kind, 0) + 1
        elif key not in requests or urgency.get(kind, 99) < urgency.get(requests[key], 99):
            requests[key] = kind
    for kind in requests.values():
        counts[kind] = counts.get(kind, 0) + 1
    return tuple(sorted((KindCount(k, n) for k, n in counts.items()),
                        key=lambda k: (-k.sent, k.kind)))


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 2) if whole else None


def staff_rows(session: Session, start: dt.datetime, end: dt.datetime, now: dt.datetime
               ) -> tuple[StaffRow, ...]:
    """The report's staff figures alone (build_report(...).staff), for the console's staff
    page: the same queries, without the rest of the report."""
    if end <= start:
        raise ValueError("the period must end after it starts")
    return _staff(session, start, end, now)


def _staff(session: Session, start: dt.datetime, end: dt.datetime, now: dt.datetime
           ) -> tuple[StaffRow, ...]:
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
    codes = claim_counts(session, start, end, now)
    rows = []
    for worker in session.scalars(select(Staff).order_by(Staff.id)):
        void_redeem, refused, own = audits.get(str(worker.id), (0, 0, 0))
        made = codes.get(worker.id, ClaimCounts(0, 0, 0, 0))
        figures = (*bought.get(worker.id, (0, 0)), redeemed.get(worker.id, (0,))[0],
                   voided.get(worker.id, (0,))[0] + void_redeem, refused, own,
                   made.made, made.claimed, made.expired)
        if worker.active or any(figures):
            rows.append(StaffRow(f"{worker.id} {worker.name}".strip(), worker.active,
                                 *(int(f or 0) for f in figures)))
    return tuple(rows)



def _lifetime_value(sales: SalesStats, start: dt.datetime, end: dt.datetime) -> LifetimeValue:
    days = (end - start).total_seconds() / SECONDS_PER_DAY
    if not sales.customers:  # no purchase, or none claimed by a customer yet
        return LifetimeValue(None, None, None, None, LIFESPAN_YEARS, round(days, 2))
    aov = sales.revenue / sales.purchases
    per_customer = (sales.purchases - sales.unclaimed) / sales.customers
    per_year = per_customer * DAYS_PER_YEAR / days
    return LifetimeValue(value=round(aov * per_year * LIFESPAN_YEARS, 2),
                         average_order_value=round(aov, 2),
                         purchases_per_customer=round(per_customer, 2),
                         purchases_per_year=round(per_year, 2),
                         lifespan_years=LIFESPAN_YEARS, period_days=round(days, 2))


def report_from_dict(data: dict[str, Any]) -> Report:
    """The Report that Report.to_dict() made `data` from (times come back with a fixed UTC
    offset: the same instants)."""
    return _unplain(Report, data)


def _unplain(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if is_dataclass(kind):
        hints = get_type_hints(kind)
        return kind(**{f.name: _unplain(hints[f.name], value[f.name])
                       for f in fields(kind) if f.name in value})
    origin, args = get_origin(kind), get_args(kind)
    if origin is tuple:
        return tuple(_unplain(args[0], item) for item in value)
    if origin in (Union, UnionType):
        return _unplain(next(a for a in args if a is not type(None)), value)
    if kind in (dt.datetime, dt.date):
        return kind.fromisoformat(value)
    return value
