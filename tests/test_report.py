"""The analytics report: numbers a shop owner reads, checked against hand-computed fixtures."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Integer, String, cast, func, insert, literal, literal_column, select

from bot.db import transaction
from bot.loyalty.coupons import redeem_coupon
from bot.loyalty.members import adjust_points, register_member, unfollow
from bot.loyalty.purchases import refund_order
from bot.loyalty.report import LIFESPAN_YEARS, Report, build_report, period
from bot.loyalty.rewards import redeem_reward
from bot.models import Member, Purchase
from bot.outbox import deliver, deliver_batches, enqueue, make_batches
from bot.report_format import _width, render_csv, render_text
from tests.helpers import buy, join

TAIPEI = ZoneInfo("Asia/Taipei")


def local(year: int, month: int, day: int, hour: int = 12, minute: int = 0,
          tz: ZoneInfo = TAIPEI) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz)


def report(sessions, program, first: dt.date, last: dt.date, now: dt.datetime | None = None,
           **kwargs) -> Report:
    start, end = period(program, first, last)
    with sessions() as session:
        return build_report(session, program, start, end, now or end, **kwargs)


def year_2026(sessions, program, **kwargs) -> Report:
    return report(sessions, program, dt.date(2026, 1, 1), dt.date(2026, 12, 31), **kwargs)


def refund(sessions, program, order_id, amount, now, refund_id="R-1"):
    with transaction(sessions) as session:
        refund_order(session, program, amount, now, source="pos", order_id=order_id,
                     refund_id=refund_id, actor="test")


# -- the marketers' worked examples ----------------------------------------------------------
def bulk_customers(session, program, count: int, repeaters: int, joined: dt.datetime,
                   first: dt.datetime, second: dt.datetime) -> None:
    """`count` members with a NT$100 purchase each, the first `repeaters` of them with a
    second NT$200 purchase: three INSERT ... SELECT statements, no rows built in Python."""
    when = Member.__table__.c.joined_at.type
    numbers = select(literal_column("1").label("i")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.i + literal_column("1"))
                                .where(numbers.c.i < count))
    session.execute(insert(Member.__table__).from_select(
        ["line_user_id", "member_code", "display_name", "language", "tier", "tier_since",
         "status", "points_balance", "joined_at", "last_activity_at", "bonus_multiplier"],
        select(literal("U-bulk-") + cast(numbers.c.i, String),
               literal("B") + cast(numbers.c.i, String), literal(""), literal("zh-TW"),
               literal(program.tiers[0].key), literal(joined, when), literal("active"),
               literal_column("0"), literal(joined, when), literal(joined, when),
               literal_column("1"))))
    lowest = session.scalar(select(func.min(Member.id)))
    for prefix, amount, at, members in (
            ("a-", 100, first, select(Member.id)),
            ("b-", 200, second, select(Member.id).where(Member.id < lowest + repeaters))):
        ids = members.subquery()
        session.execute(insert(Purchase.__table__).from_select(
            ["member_id", "source", "external_order_id", "amount", "categories",
             "points_earned", "stamps_earned", "refunded_amount", "created_at"],
            select(ids.c.id, literal("bulk"), literal(prefix) + cast(ids.c.id, String),
                   literal(amount, Integer), literal_column("'{}'"), literal_column("0"),
                   literal_column("0"), literal_column("0"), literal(at, when))))


def test_30000_customers_of_whom_8000_bought_twice_repurchase_at_26_7_percent(
        sessions, program):
    """How long this takes on each database: benchmarks/report.py."""
    with transaction(sessions) as session:
        bulk_customers(session, program, 30_000, 8_000, joined=local(2026, 2, 1),
                       first=local(2026, 3, 1), second=local(2026, 3, 11))
    result = year_2026(sessions, program)
    sales = result.sales
    assert (sales.customers, sales.repeat_customers) == (30_000, 8_000)
    assert sales.repurchase_rate == 26.7  # 8,000 / 30,000 = 26.67 %
    assert sales.purchases == 38_000
    assert sales.revenue == 30_000 * 100 + 8_000 * 200
    assert sales.average_order_value == 121.05  # 4,600,000 / 38,000
    assert (sales.repurchase_cycle_days, sales.repurchase_gaps) == (10.0, 8_000)
    members = result.members
    assert (members.total, members.new, members.active, members.blocked) == (
        30_000, 30_000, 30_000, 0)
    assert members.dormant == 30_000  # nobody bought in the 60 days before new year
    assert result.tiers[0].members == 30_000
    assert result.to_dict()["sales"]["repurchase_rate"] == 26.7


def test_purchases_on_3_18_5_20_and_7_28_make_a_66_day_cycle_counted_in_local_days(
        sessions, program):
    member = join(sessions, program, local(2026, 3, 1))
    # 00:30 on 3/18 in Taipei is still 3/17 in UTC, and 23:30 on 5/20 is 15:30 UTC: counted
    # by UTC dates the gaps would be 64 and 69.
    buy(sessions, program, member, 120, local(2026, 3, 18, 0, 30))
    buy(sessions, program, member, 150, local(2026, 5, 20, 23, 30))
    buy(sessions, program, member, 180, local(2026, 7, 28, 8, 0))
    whole = year_2026(sessions, program).sales
    assert (whole.repurchase_cycle_days, whole.repurchase_gaps) == (66.0, 2)  # (63 + 69) / 2
    assert (whole.customers, whole.repeat_customers, whole.repurchase_rate) == (1, 1, 100.0)
    first_gap = report(sessions, program, dt.date(2026, 3, 18), dt.date(2026, 5, 20)).sales
    assert (first_gap.repurchase_cycle_days, first_gap.purchases) == (63.0, 2)
    second_gap = report(sessions, program, dt.date(2026, 5, 20), dt.date(2026, 7, 28)).sales
    assert (second_gap.repurchase_cycle_days, second_gap.purchases) == (69.0, 2)
    # the 23:30 purchase belongs to 5/20 in Taipei: a period starting 5/21 does not see it
    later = report(sessions, program, dt.date(2026, 5, 21), dt.date(2026, 12, 31)).sales
    assert (later.purchases, later.repurchase_cycle_days) == (1, None)


def test_weeks_count_purchases_revenue_and_new_and_returning_customers_in_local_weeks(
        sessions, program):
    alice = join(sessions, program, local(2026, 10, 1))
    bob = join(sessions, program, local(2026, 10, 1), user="U-bob")
    buy(sessions, program, alice, 100, local(2026, 10, 28, 12))  # before the period
    buy(sessions, program, alice, 200, local(2026, 11, 2, 0, 30))  # Monday 00:30 in Taipei
    buy(sessions, program, bob, 300, local(2026, 11, 8, 23, 30))  # Sunday: the same week
    buy(sessions, program, bob, 400, local(2026, 11, 9, 9))  # the next Monday
    weeks = report(sessions, program, dt.date(2026, 11, 1), dt.date(2026, 11, 30)).weeks
    assert [(w.key, w.purchases, w.revenue, w.new_customers, w.returning_customers)
            for w in weeks] == [("2026-11-02", 2, 500, 1, 1), ("2026-11-09", 1, 400, 0, 1)]


def test_two_purchases_on_one_local_day_are_one_visit_for_the_cycle(sessions, program):
    member = join(sessions, program, local(2026, 3, 1))
    buy(sessions, program, member, 120, local(2026, 3, 18, 9))
    buy(sessions, program, member, 120, local(2026, 3, 18, 23, 59))
    buy(sessions, program, member, 120, local(2026, 3, 28, 0, 1))
    sales = year_2026(sessions, program).sales
    assert (sales.repurchase_cycle_days, sales.repurchase_gaps) == (10.0, 1)
    assert (sales.purchases, sales.repeat_customers) == (3, 1)


def test_the_cycle_follows_daylight_saving_changes_in_the_shop_timezone(sessions, program):
    new_york = ZoneInfo("America/New_York")  # clocks go forward on 2026-03-08
    program = dataclasses.replace(program, timezone=new_york)
    member = join(sessions, program, local(2026, 3, 1, tz=new_york))
    buy(sessions, program, member, 120, local(2026, 3, 7, 0, 30, tz=new_york))  # 05:30 UTC
    buy(sessions, program, member, 120, local(2026, 3, 9, 0, 30, tz=new_york))  # 04:30 UTC
    buy(sessions, program, member, 120, local(2026, 11, 2, 0, 30, tz=new_york))  # EST again
    sales = report(sessions, program, dt.date(2026, 1, 1), dt.date(2026, 12, 31)).sales
    assert sales.repurchase_gaps == 2
    assert sales.repurchase_cycle_days == (2 + 238) / 2  # 3/7 -> 3/9 -> 11/2


# -- empty shop and refunds ------------------------------------------------------------------
def test_an_empty_database_gives_none_instead_of_dividing_by_zero(sessions, program, now):
    result = year_2026(sessions, program, now=now, quota=4000)
    sales = result.sales
    assert (sales.purchases, sales.customers, sales.revenue) == (0, 0, 0)
    assert sales.repurchase_rate is None
    assert sales.repurchase_cycle_days is None
    assert sales.average_order_value is None
    members = result.members
    assert (members.total, members.new, members.active, members.dormant, members.blocked) == (
        0, 0, 0, 0, 0)
    assert result.coupons.total.redemption_rate is None
    assert all(row.issued == 0 and row.redemption_rate is None
               for row in result.coupons.templates)
    assert result.coupons.campaigns == ()
    assert result.stamps.started == 0
    assert all(step.share is None for step in result.stamps.steps)
    assert [(t.key, t.members, t.share) for t in result.tiers] == [
        ("member", 0, None), ("silver", 0, None), ("gold", 0, None)]
    assert (result.pushes.sent, result.pushes.quota_used, result.pushes.quota_left) == (
        0, 0.0, 4000)
    assert result.points.outstanding == 0 and result.points.outstanding_value is None
    assert result.lifetime_value.value is None
    text = json.dumps(result.to_dict())  # plain JSON types only
    assert json.loads(text)["first_day"] == "2026-01-01"
    assert "Repurchase rate" in render_text(result)
    assert "sales,repurchase_rate,\n" in render_csv(result)


def test_fully_refunded_purchases_are_left_out_and_partial_refunds_are_netted(
        sessions, program):
    alice = join(sessions, program, local(2026, 3, 1))
    bob = join(sessions, program, local(2026, 3, 1), user="U-bob")
    buy(sessions, program, alice, 500, local(2026, 4, 1), order_id="A-1")
    buy(sessions, program, alice, 300, local(2026, 4, 20), order_id="A-2")
    refund(sessions, program, "A-2", 300, local(2026, 4, 21))  # all of it: not a purchase
    buy(sessions, program, bob, 400, local(2026, 4, 2), order_id="B-1")
    buy(sessions, program, bob, 600, local(2026, 4, 12), order_id="B-2")
    refund(sessions, program, "B-2", 100, local(2026, 4, 13), refund_id="R-2")  # NT$500 kept
    sales = year_2026(sessions, program).sales
    assert (sales.purchases, sales.customers, sales.repeat_customers) == (3, 2, 1)
    assert sales.repurchase_rate == 50.0
    assert sales.revenue == 500 + 400 + 500
    assert sales.refunded_excluded == 1
    assert (sales.repurchase_cycle_days, sales.repurchase_gaps) == (10.0, 1)  # Bob's only


# -- members ---------------------------------------------------------------------------------
def test_merged_pos_records_and_erased_members_are_not_counted_as_members(sessions, program):
    for user in ("U-a", "U-b", "U-c", "U-d"):
        join(sessions, program, local(2026, 1, 5), user=user)
    with transaction(sessions) as session:
        unfollow(session, "U-b", local(2026, 6, 1))
        for user, status in (("U-c", "merged"), ("U-d", "erased")):
            session.scalars(select(Member).where(Member.line_user_id == user)).one().status = \
                status
    result = report(sessions, program, dt.date(2026, 10, 1), dt.date(2026, 10, 31),
                    now=local(2026, 11, 20))
    assert (result.members.total, result.members.blocked) == (2, 1)


def test_members_new_active_dormant_and_blocked_as_of_the_period_end(sessions, program):
    old = local(2026, 1, 5)
    dormant_buyer = join(sessions, program, old, user="U-a")
    join(sessions, program, old, user="U-b")  # never bought: dormant too
    active = join(sessions, program, old, user="U-c")
    join(sessions, program, local(2026, 10, 5), user="U-d")  # new, too new to be dormant
    recent = join(sessions, program, old, user="U-e")
    join(sessions, program, old, user="U-f")
    join(sessions, program, local(2026, 11, 10), user="U-g")  # after the period
    buy(sessions, program, dormant_buyer, 200, local(2026, 3, 1))
    buy(sessions, program, active, 200, local(2026, 10, 10))
    buy(sessions, program, recent, 200, local(2026, 9, 15))  # within 60 days of the end
    with transaction(sessions) as session:
        unfollow(session, "U-f", local(2026, 6, 1))
    result = report(sessions, program, dt.date(2026, 10, 1), dt.date(2026, 10, 31),
                    now=local(2026, 11, 20))
    assert result.members.dormant_after_days == 60
    assert (result.members.total, result.members.new, result.members.active,
            result.members.dormant, result.members.blocked) == (6, 1, 1, 2, 1)
    assert sum(t.members for t in result.tiers) == 7  # tiers are as of now


# -- coupons ---------------------------------------------------------------------------------
def join_with_coupon(sessions, program, user: str, now: dt.datetime) -> tuple[int, str]:
    with transaction(sessions) as session:
        joined = register_member(session, program, user, now)
        return joined.member.id, joined.welcome_coupon.code


def redeem(sessions, program, code: str, now: dt.datetime, **kwargs) -> None:
    with transaction(sessions) as session:
        redeem_coupon(session, program, code, now, actor="staff", **kwargs)


def test_coupon_rates_and_attributed_revenue_per_template_and_campaign(sessions, program):
    alice, alice_code = join_with_coupon(sessions, program, "U-alice", local(2026, 11, 2))
    bob, _ = join_with_coupon(sessions, program, "U-bob", local(2026, 11, 3))
    carol, carol_code = join_with_coupon(sessions, program, "U-carol", local(2026, 10, 20))
    order = buy(sessions, program, alice, 500, local(2026, 11, 5), order_id="A-1").purchase
    redeem(sessions, program, alice_code, local(2026, 11, 5), order_amount=500,
           purchase_id=order.id)
    order = buy(sessions, program, carol, 1000, local(2026, 11, 6), order_id="C-1").purchase
    redeem(sessions, program, carol_code, local(2026, 11, 6), order_amount=1000,
           purchase_id=order.id)
    refund(sessions, program, "C-1", 200, local(2026, 11, 8))
    with transaction(sessions) as session:
        adjust_points(session, program, bob, 500, local(2026, 11, 7), reason="gift",
                      actor="owner")
        redeem_reward(session, program, bob, "cake_set", local(2026, 11, 7), actor="U-bob")
    result = report(sessions, program, dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    rows = {row.key: row for row in result.coupons.templates}
    assert list(rows)[:3] == ["welcome", "pct10", "free_drink"]  # the program's order
    welcome = rows["welcome"]
    # Alice's and Bob's welcome gifts were issued in November, Carol's in October
    assert (welcome.issued, welcome.redeemed, welcome.redemption_rate) == (2, 2, 100.0)
    assert (welcome.discount, welcome.attributed_orders) == (100, 2)
    assert welcome.attributed_revenue == 500 + 800  # Carol's order net of its refund
    assert (welcome.claimed, welcome.total_cap, welcome.claim_rate) == (3, None, None)
    cake = rows["cake_set"]
    assert (cake.issued, cake.redeemed, cake.redemption_rate, cake.attributed_revenue) == (
        1, 0, 0.0, 0)
    assert (cake.claimed, cake.total_cap, cake.claim_rate) == (1, 200, 0.5)
    assert rows["nt50"].redemption_rate is None  # none issued
    campaigns = {row.key: row for row in result.coupons.campaigns}
    assert list(campaigns) == ["reward", "welcome"]
    assert (campaigns["welcome"].issued, campaigns["welcome"].redeemed,
            campaigns["welcome"].attributed_revenue) == (2, 2, 1300)
    assert (campaigns["reward"].issued, campaigns["reward"].redemption_rate) == (1, 0.0)
    total = result.coupons.total
    assert (total.issued, total.redeemed, total.redemption_rate) == (3, 2, 66.7)
    assert (total.attributed_orders, total.attributed_revenue) == (2, 1300)
    october = report(sessions, program, dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert october.coupons.total.issued == 1  # Carol's welcome gift
    from bot.loyalty.report import coupons_by_reason

    with sessions() as session:  # a campaign's figures: its own coupons, by reason
        asked = coupons_by_reason(session, ["welcome", "campaign:none"],
                                  local(2026, 11, 1), local(2026, 12, 1))
        assert coupons_by_reason(session, [], local(2026, 11, 1), local(2026, 12, 1)) == {}
    assert list(asked) == ["welcome", "campaign:none"]
    assert (asked["welcome"].issued, asked["welcome"].redeemed, asked["welcome"].discount,
            asked["welcome"].attributed_orders, asked["welcome"].attributed_revenue) == (
        2, 2, 100, 2, 1300)  # as the report's row: the reward's coupon is not counted
    assert (asked["campaign:none"].issued, asked["campaign:none"].attributed_revenue) == (0, 0)


# -- points ----------------------------------------------------------------------------------
def test_points_issued_redeemed_expired_and_the_outstanding_liability(sessions, program):
    alice = join(sessions, program, local(2025, 6, 1))
    bob = join(sessions, program, local(2025, 6, 1), user="U-bob")
    buy(sessions, program, alice, 900, local(2025, 6, 10))  # 30 points, lapse after 2026-06-30
    buy(sessions, program, bob, 300, local(2025, 6, 10))  # 10 points, never settled
    buy(sessions, program, alice, 3000, local(2026, 6, 5), order_id="A-big")  # 100 points
    with transaction(sessions) as session:  # settles Alice's 30 lapsed points first
        adjust_points(session, program, alice, 20, local(2026, 7, 2), reason="sorry",
                      actor="owner")
    with transaction(sessions) as session:
        adjust_points(session, program, alice, -5, local(2026, 7, 3), reason="typo",
                      actor="owner")
    with transaction(sessions) as session:
        redeem_reward(session, program, alice, "nt50", local(2026, 7, 4), actor="U-alice")
    refund(sessions, program, "A-big", 300, local(2026, 7, 5))  # a tenth: 10 points back
    points = report(sessions, program, dt.date(2026, 6, 1), dt.date(2026, 7, 31),
                    now=local(2026, 8, 1)).points
    assert (points.issued, points.redeemed, points.expired) == (120, 100, 30)
    assert (points.reversed, points.adjusted_out) == (10, 5)
    assert points.outstanding == 5 + 10  # Alice 130 - 30 + 20 - 5 - 100 - 10; Bob 10
    assert points.outstanding_past_expiry == 10  # Bob's lot, waiting for the expiry job
    assert points.members_with_points == 2
    assert points.outstanding_value is None  # the program has no money value per point


# -- stamps and tiers ------------------------------------------------------------------------
def test_the_stamp_card_funnel_counts_cards_started_in_the_period(sessions, program):
    # a first purchase earns its visit stamp plus the starter stamp; then one a day
    visits = {"U-a": 6, "U-b": 9, "U-c": 1, "U-d": 0}
    for user, count in visits.items():
        member = join(sessions, program, local(2026, 2, 1), user=user)
        for day in range(count):
            buy(sessions, program, member, 100, local(2026, 3, 1 + day))
    funnel = year_2026(sessions, program).stamps
    # A holds 7 stamps, B filled a card (10) and got a new one, C holds 2, D has no card
    assert (funnel.goal, funnel.started, funnel.completed) == (10, 4, 1)
    assert [(s.step, s.stamps, s.cards, s.share) for s in funnel.steps] == [
        ("started", 0, 4, 100.0), ("stamped", 1, 3, 75.0), ("milestone_5", 5, 2, 50.0),
        ("completed", 10, 1, 25.0)]


def test_the_tier_distribution_is_counted_now_in_the_program_order(sessions, program):
    spend = {"U-a": 0, "U-b": 200, "U-c": 6000, "U-d": 16000}  # silver 5,000, gold 15,000
    for user, amount in spend.items():
        member = join(sessions, program, local(2026, 2, 1), user=user)
        if amount:
            buy(sessions, program, member, amount, local(2026, 3, 1))
    tiers = year_2026(sessions, program).tiers
    assert [(t.key, t.name, t.members, t.share) for t in tiers] == [
        ("member", "一般會員", 2, 50.0), ("silver", "銀卡會員", 1, 25.0),
        ("gold", "金卡會員", 1, 25.0)]


# -- pushes ----------------------------------------------------------------------------------
@dataclass
class Outcome:
    delivered: bool
    retry: bool = False
    error: str = ""
    refused: bool = False
    limit_reached: bool = False


class Sender:
    def __init__(self, refuse: set[str] = frozenset()):
        self.refuse = refuse

    def push(self, user_id, messages, retry_key, unit=None):
        return Outcome(user_id not in self.refuse, error="refused" if user_id in self.refuse
                       else "")

    def multicast(self, user_ids, messages, retry_key, unit=None):
        return Outcome(True)


def text(words: str) -> list[dict]:
    return [{"type": "text", "text": words}]


def test_pushes_sent_in_the_period_count_each_recipient_once_against_the_quota(
        sessions, program):
    users = ["U-a", "U-b", "U-c", "U-d", "U-e", "U-f"]
    for user in users:
        join(sessions, program, local(2026, 2, 1), user=user)
    sent_at = local(2026, 3, 10)
    with transaction(sessions) as session:
        members = {m.line_user_id: m for m in session.scalars(select(Member))}
        old = enqueue(session, members["U-a"], "reminder", "old", text("舊"), local(2026, 1, 1))
        session.flush()
        old_id = old.id
    deliver(sessions, Sender(), [old_id], local(2025, 12, 31))  # before the period
    with transaction(sessions) as session:
        rows = [enqueue(session, members["U-a"], "receipt", "r-a", text("謝謝 A"), sent_at),
                enqueue(session, members["U-b"], "receipt", "r-b", text("謝謝 B"), sent_at),
                enqueue(session, members["U-f"], "receipt", "r-f", text("謝謝 F"), sent_at)]
        rows += [enqueue(session, members[u], "birthday", f"b-{u}", text("生日快樂"), sent_at)
                 for u in ("U-c", "U-d", "U-e")]
        session.flush()
        ids = [row.id for row in rows]
    grouped = make_batches(sessions, ids, sent_at)
    assert len(grouped.singles) == 3
    deliver_batches(sessions, Sender(), sent_at, grouped.batches)
    deliver(sessions, Sender(refuse={"U-f"}), grouped.singles, sent_at)
    result = year_2026(sessions, program, quota=10)
    pushes = result.pushes
    assert pushes.sent == 5  # F's receipt failed, A's reminder went out in 2025
    assert [(k.kind, k.sent) for k in pushes.by_kind] == [("birthday", 3), ("receipt", 2)]
    assert (pushes.single_pushes, pushes.multicast_recipients, pushes.multicast_batches) == (
        2, 3, 1)
    assert (pushes.quota, pushes.quota_used, pushes.quota_left) == (10, 50.0, 5)
    assert year_2026(sessions, program).pushes.quota_used is None  # no quota given


# -- lifetime value and printing -------------------------------------------------------------
def two_customers(sessions, program) -> None:
    alice = join(sessions, program, local(2026, 1, 2))
    bob = join(sessions, program, local(2026, 1, 2), user="U-bob")
    buy(sessions, program, alice, 300, local(2026, 2, 1))
    buy(sessions, program, alice, 500, local(2026, 3, 3))
    buy(sessions, program, bob, 100, local(2026, 4, 1))


def test_lifetime_value_is_order_value_times_yearly_purchases_times_three_years(
        sessions, program):
    two_customers(sessions, program)
    clv = year_2026(sessions, program).lifetime_value
    assert clv.period_days == 365
    assert (clv.average_order_value, clv.purchases_per_customer, clv.purchases_per_year) == (
        300.0, 1.5, 1.5)  # NT$900 / 3 purchases; 3 purchases / 2 customers in one year
    assert clv.lifespan_years == LIFESPAN_YEARS == 3
    assert clv.value == 300 * 1.5 * 3  # NT$1,350
    half = report(sessions, program, dt.date(2026, 1, 1), dt.date(2026, 4, 30)).lifetime_value
    assert half.period_days == 120
    assert half.purchases_per_year == round(1.5 * 365 / 120, 2)  # annualised from 120 days
    assert half.value == round(300 * 1.5 * 365 / 120 * 3, 2)


def test_text_and_csv_reports_show_the_same_numbers(sessions, program):
    two_customers(sessions, program)
    result = year_2026(sessions, program, quota=4000)
    text_report = render_text(result)
    lines = text_report.splitlines()
    assert lines[0] == "Loyalty report 會員報表 · 山嵐咖啡"
    assert "2026/01/01 - 2026/12/31 (Asia/Taipei)" in lines[1]
    line = next(x for x in lines if x.strip().startswith("Repurchase rate"))
    assert line.endswith(" 50.0%")
    assert next(x for x in lines if x.strip().startswith("CLV")).endswith(" NT$1,350")
    assert next(x for x in lines if x.strip().startswith("Revenue")).endswith(" NT$900")
    sales = lines[lines.index("Sales 消費") + 1:lines.index("Coupons 優惠券") - 1]
    assert len({_width(x) for x in sales}) == 1  # values right-aligned, CJK counted as two
    coupons = lines[lines.index("Coupons 優惠券") + 1:]
    table = coupons[:coupons.index("  by campaign 活動別 (coupon reason)")]
    assert len({_width(x) for x in table if "welcome" in x or "total" in x}) == 1
    assert "welcome 新會員見面禮 折NT$50" in text_report
    rows = list(csv.reader(io.StringIO(render_csv(result))))
    assert rows[0] == ["section", "metric", "value"]
    values = {(section, metric): value for section, metric, value in rows[1:]}
    assert values["sales", "repurchase_rate"] == "50.0"
    assert values["sales", "repurchase_cycle_days"] == "30.0"
    assert values["lifetime_value", "value"] == "1350.0"
    assert values["coupons", "templates.welcome.issued"] == "2"
    assert values["coupons", "campaigns.welcome.issued"] == "2"
    assert values["tiers", "member.members"] == "2"
    assert values["stamps", "steps.milestone_5.cards"] == "0"
    assert values["pushes", "quota_left"] == "4000"
    assert values["members", "dormant"] == "2"
    assert values["report", "first_day"] == "2026-01-01"
    assert values["report", "start"] == "2026-01-01T00:00:00+08:00"


def test_a_period_must_be_aware_and_forward(sessions, program, now):
    with sessions() as session, pytest.raises(ValueError):
        build_report(session, program, now, now - dt.timedelta(days=1), now)
    with sessions() as session, pytest.raises(ValueError):
        build_report(session, program, now.replace(tzinfo=None), now, now)


def test_the_report_command_prints_text_json_and_csv(cli, sessions, program):
    from bot.loyalty.purchases import record_purchase
    from bot.loyalty.timeutil import utcnow
    from tests.cli_helpers import exited_cleanly

    with transaction(sessions) as session:
        member = register_member(session, program, "U" + "1" * 32, utcnow()).member
        record_purchase(session, program, member.id, 450, utcnow(), source="pos",
                        order_id="cli-1", actor="test")
    shown = cli("report", "--format", "json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["sales"]["revenue"] == 450 and data["members"]["total"] == 1
    text = cli("report")
    assert text.exit_code == 0 and "450" in text.stdout
    table = cli("report", "--format", "csv")
    assert table.stdout.startswith("section,metric,value")
    bad = cli("report", "--from", "2026-05-02", "--to", "2026-05-01")
    assert bad.exit_code != 0 and "after" in bad.stderr and "Traceback" not in bad.stderr
    assert exited_cleanly(bad), bad.exc_info


def test_each_staff_members_purchases_redemptions_voids_and_refusals_are_reported(
        sessions, program):
    from bot.loyalty import audit
    from bot.loyalty.coupons import issue_coupon
    from bot.loyalty.purchases import record_purchase
    from bot.loyalty.staff import add_staff, remove_staff

    when = local(2026, 5, 1)
    alice = join(sessions, program, when, "U-alice")
    with transaction(sessions) as session:
        amy = add_staff(session, "U" + "a" * 32, when, name="Amy", actor="t").id
        ben = add_staff(session, "U" + "b" * 32, when, name="Ben", actor="t").id
        add_staff(session, "U" + "c" * 32, when, name="Cat", actor="t")
        remove_staff(session, "U" + "c" * 32, when, actor="t")  # no activity, removed
        for n, amount in enumerate((300, 500)):
            record_purchase(session, program, alice, amount, when, source="line",
                            order_id=f"earn:{n}", staff_id=amy, actor=f"staff:{amy}")
        code = issue_coupon(session, program, alice, "nt50", when, reason="t").code
        redeem_coupon(session, program, code, when, actor=f"staff:{ben}", staff_id=ben)
        refund_order(session, program, 500, when, source="line", order_id="earn:1",
                     refund_id="void:2", actor=f"staff:{amy}")
        for reason in ("not_found", "self_service", "self_service"):
            audit.record(session, "staff.earn_failed", member_id=None, actor=f"staff:{ben}",
                         at=when, reason=reason)
    result = year_2026(sessions, program)
    rows = {row.key: row for row in result.staff}
    assert set(rows) == {f"{amy} Amy", f"{ben} Ben"}
    assert (rows[f"{amy} Amy"].purchases, rows[f"{amy} Amy"].revenue,
            rows[f"{amy} Amy"].voids) == (1, 300, 1)  # the voided one is fully refunded
    assert (rows[f"{ben} Ben"].redemptions, rows[f"{ben} Ben"].refused,
            rows[f"{ben} Ben"].self_service) == (1, 3, 2)
    text_report = render_text(result)
    assert "Staff 員工" in text_report and "Ben" in text_report
    values = {(s, m): v for s, m, v in list(csv.reader(io.StringIO(render_csv(result))))[1:]}
    assert values["staff", f"{ben} Ben.refused"] == "3"
