"""Purchases earn points and stamps once; refunds take back their share, never below zero."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.db import transaction
from bot.loyalty.errors import (
    InvalidAmount,
    OrderConflict,
    RefundExceedsPurchase,
    UnknownOrder,
)
from bot.loyalty.members import adjust_points
from bot.loyalty.purchases import points_for, refund_order
from bot.loyalty.rewards import redeem_reward
from bot.models import AuditLog, Member, Purchase
from tests.helpers import balance, buy, join, ledger_totals

DAY = dt.timedelta(days=1)

TAIPEI = dt.timezone(dt.timedelta(hours=8))


def refund(sessions, program, order_id, amount, refund_id, now):
    with transaction(sessions) as session:
        return refund_order(session, program, amount, now, source="pos", order_id=order_id,
                            refund_id=refund_id, actor="test")


def test_every_nt30_spent_earns_one_point_rounded_down(sessions, program, now):
    member = join(sessions, program, now)
    assert buy(sessions, program, member, 299, now).points == 9
    assert balance(sessions, member) == 9


@pytest.mark.parametrize(("rounding", "expected"), [("floor", 9), ("round", 10), ("ceil", 10)])
def test_the_program_rounding_rule_applies_once_per_purchase(program, now, rounding, expected):
    program = dataclasses.replace(program, rounding=rounding)
    assert points_for(program, 290, {}, "member", now) == expected  # 9.67 points


def test_categories_earn_their_multiplier_and_the_rest_counts_once(program, now):
    # NT$300 of beans (x2) + NT$150 of drinks (x1) = 750 weighted / 30 = 25 points
    assert points_for(program, 450, {"beans": 300}, "member", now) == 25
    assert points_for(program, 450, {"beans": 300, "cake": 150}, "member", now) == 25


def test_higher_tiers_earn_their_multiplier(program, now):
    assert points_for(program, 300, {}, "member", now) == 10
    assert points_for(program, 300, {}, "silver", now) == 12
    assert points_for(program, 300, {}, "gold", now) == 15


def test_double_points_campaign_counts_days_in_the_shop_timezone(program):
    eve_local_morning = dt.datetime(2026, 12, 24, 0, 30, tzinfo=TAIPEI)  # Dec 23 in UTC
    after = dt.datetime(2026, 12, 27, 0, 30, tzinfo=TAIPEI)
    assert points_for(program, 300, {}, "member", eve_local_morning) == 20
    assert points_for(program, 300, {}, "member", after) == 10


def test_recording_the_same_order_twice_returns_the_first_result_and_changes_nothing(
        sessions, program, now):
    member = join(sessions, program, now)
    first = buy(sessions, program, member, 600, now, order_id="A-1")
    again = buy(sessions, program, member, 600, now + dt.timedelta(minutes=5), order_id="A-1")
    assert again.duplicate and again.purchase.id == first.purchase.id
    assert (again.points, again.stamps) == (first.points, first.stamps)
    assert balance(sessions, member) == 20
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Purchase)) == 1


def test_an_order_id_reused_with_other_details_is_refused(sessions, program, now):
    member = join(sessions, program, now)
    buy(sessions, program, member, 600, now, order_id="A-1")
    with pytest.raises(OrderConflict):
        buy(sessions, program, member, 700, now, order_id="A-1")
    other = join(sessions, program, now, user="U-bob")
    with pytest.raises(OrderConflict):
        buy(sessions, program, other, 600, now, order_id="A-1")
    assert balance(sessions, other) == 0


@pytest.mark.parametrize("amount", [-1, 1.5, "300", True, None, 10**12])
def test_a_bad_amount_is_refused_with_a_clear_error_and_changes_nothing(
        sessions, program, now, amount):
    member = join(sessions, program, now)
    with pytest.raises(InvalidAmount) as caught:
        buy(sessions, program, member, amount, now)
    assert "amount" in caught.value.message("en")
    assert caught.value.message("zh-TW").startswith("金額")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Purchase)) == 0


def test_category_amounts_larger_than_the_purchase_are_refused(sessions, program, now):
    member = join(sessions, program, now)
    with pytest.raises(InvalidAmount):
        buy(sessions, program, member, 100, now, categories={"beans": 200})


def test_a_zero_amount_purchase_leaves_a_win_back_bonus_for_the_next_paid_one(
        sessions, program, now):
    member = join(sessions, program, now)
    with transaction(sessions) as session:
        session.get(Member, member).bonus_multiplier = 2  # what the winback job sets
    assert buy(sessions, program, member, 0, now).points == 0
    assert buy(sessions, program, member, 300, now).points == 20  # doubled
    assert buy(sessions, program, member, 300, now).points == 10  # once


def test_a_full_refund_takes_back_all_the_points_and_stamps(sessions, program, now):
    member = join(sessions, program, now)
    buy(sessions, program, member, 900, now, order_id="A-1")
    result = refund(sessions, program, "A-1", 900, "R-1", now).refund
    assert (result.points_reversed, result.points_unrecovered) == (30, 0)
    assert balance(sessions, member) == 0
    assert result.stamps_reversed == 2  # the visit stamp and the starter stamp
    assert ledger_totals(sessions, member) == (0, 0, 0)


def test_partial_refunds_add_up_to_exactly_the_points_of_the_order(sessions, program, now):
    member = join(sessions, program, now)
    buy(sessions, program, member, 1000, now, order_id="A-1")  # 33 points
    reversed_points = [refund(sessions, program, "A-1", 333, f"R-{i}", now).refund.points_reversed
                       for i in range(3)]
    reversed_points.append(refund(sessions, program, "A-1", 1, "R-3", now).refund.points_reversed)
    assert sum(reversed_points) == 33
    assert balance(sessions, member) == 0


def test_a_repeated_refund_id_changes_nothing(sessions, program, now):
    member = join(sessions, program, now)
    buy(sessions, program, member, 900, now, order_id="A-1")
    first = refund(sessions, program, "A-1", 300, "R-1", now)
    again = refund(sessions, program, "A-1", 300, "R-1", now)
    assert again.duplicate and again.refund.id == first.refund.id
    assert balance(sessions, member) == 20


def test_a_refund_cannot_exceed_what_is_left_of_the_order(sessions, program, now):
    member = join(sessions, program, now)
    buy(sessions, program, member, 900, now, order_id="A-1")
    refund(sessions, program, "A-1", 600, "R-1", now)
    with pytest.raises(RefundExceedsPurchase) as caught:
        refund(sessions, program, "A-1", 301, "R-2", now)
    assert "300" in caught.value.message("en")
    with pytest.raises(UnknownOrder):
        refund(sessions, program, "nope", 1, "R-3", now)
    assert balance(sessions, member) == 10


def test_points_already_spent_are_recorded_as_unrecovered_and_the_balance_stays_zero(
        sessions, program, now):
    member = join(sessions, program, now)
    buy(sessions, program, member, 3000, now, order_id="A-1")  # 100 points
    with transaction(sessions) as session:
        redeem_reward(session, program, member, "nt50", now, actor="test")  # spends 100
    result = refund(sessions, program, "A-1", 3000, "R-1", now).refund
    assert (result.points_reversed, result.points_unrecovered) == (0, 100)
    assert balance(sessions, member) == 0
    with sessions() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "refund")).one()
        assert audit.details["points_unrecovered"] == 100


def test_a_refund_takes_the_orders_own_points_before_older_ones(sessions, program, now):
    member = join(sessions, program, now)
    with transaction(sessions) as session:
        adjust_points(session, program, member, 50, now, reason="opening balance", actor="t")
    buy(sessions, program, member, 300, now + dt.timedelta(days=40), order_id="A-1")
    refund(sessions, program, "A-1", 300, "R-1", now + dt.timedelta(days=41))
    assert balance(sessions, member) == 50


def test_spend_over_the_window_lifts_the_member_to_the_next_tier(sessions, program, now):
    member = join(sessions, program, now)
    assert buy(sessions, program, member, 4999, now).tier_change is None
    change = buy(sessions, program, member, 1, now).tier_change
    assert change.upgraded and change.new.key == "silver"
    with sessions() as session:
        assert session.get(Member, member).tier == "silver"


def test_the_grace_rule_does_not_keep_a_tier_whose_purchase_was_refunded(sessions, program,
                                                                         now):
    """Grace keeps a tier while spend lapses; a refund undoes the purchase that bought it."""
    member = join(sessions, program, now)
    buy(sessions, program, member, 6000, now, order_id="A-1")
    refund(sessions, program, "A-1", 6000, "R-1", now + dt.timedelta(days=1))
    with sessions() as session:
        assert session.get(Member, member).tier == "member"


# -- a refund takes back the tier the purchase bought ------------------------------------------
def tier_of(sessions, member_id: int) -> str:
    with sessions() as session:
        return session.get(Member, member_id).tier


def test_a_full_refund_of_the_purchase_that_reached_gold_takes_gold_back(
        sessions, program, now):
    from bot.loyalty.coupons import issue_coupon
    from bot.models import Coupon

    alice = join(sessions, program, now)
    buy(sessions, program, alice, 3000, now, order_id="small")
    buy(sessions, program, alice, 15000, now + DAY, order_id="big")
    assert tier_of(sessions, alice) == "gold"
    with transaction(sessions) as session:  # a gold birthday gift came meanwhile
        gift = issue_coupon(session, program, alice, "bday_gold", now + 2 * DAY,
                            reason="birthday").id
    before_small = balance(sessions, alice)
    refund(sessions, program, "big", 15000, "R-big", now + 3 * DAY)
    assert tier_of(sessions, alice) == "member"  # 3,000 left earns no tier, grace or not
    with sessions() as session:
        assert session.get(Coupon, gift).status == "void"
    assert balance(sessions, alice) < before_small  # the big order's points went back
    assert balance(sessions, alice) > 0  # the small order's points stay


def test_a_partial_refund_keeps_the_tier_while_the_rest_still_earns_it(sessions, program, now):
    alice = join(sessions, program, now)
    buy(sessions, program, alice, 16000, now, order_id="big")
    refund(sessions, program, "big", 500, "R-1", now + DAY)
    assert tier_of(sessions, alice) == "gold"  # 15,500 is still gold
    refund(sessions, program, "big", 6000, "R-2", now + DAY)
    assert tier_of(sessions, alice) == "silver"  # 9,500 earns silver


def test_a_refund_of_a_purchase_made_after_the_tier_was_reached_keeps_the_grace(
        sessions, program, now):
    alice = join(sessions, program, now)
    buy(sessions, program, alice, 15000, now, order_id="reached-gold")
    buy(sessions, program, alice, 2000, now + DAY, order_id="later")
    refund(sessions, program, "later", 2000, "R-later", now + 2 * DAY)
    assert tier_of(sessions, alice) == "gold"


def test_a_purchase_undone_by_its_savepoint_leaves_the_member_as_stored(sessions, program, now):
    """The staff chat and the API record a purchase in a savepoint: when something after it
    fails, the savepoint is rolled back, and the member the rest of the transaction goes on
    with (and shows) has the balance and last purchase the database has, not the undone
    ones; a purchase after it in the same transaction counts from there."""
    from bot.loyalty.ledger import lock_member
    from bot.loyalty.purchases import record_purchase

    member_id = join(sessions, program, now)
    buy(sessions, program, member_id, 300, now)
    before = balance(sessions, member_id)
    with transaction(sessions) as session:
        member = lock_member(session, member_id)
        first_bought = member.last_purchase_at
        with pytest.raises(RuntimeError), session.begin_nested():
            record_purchase(session, program, member_id, 900, now + dt.timedelta(hours=1),
                            source="pos", order_id="undone", actor="test")
            assert member.points_balance == before + 30
            raise RuntimeError("what came after the purchase failed")
        assert member.points_balance == before
        assert member.last_purchase_at == first_bought
        record_purchase(session, program, member_id, 600, now + dt.timedelta(hours=2),
                        source="pos", order_id="kept", actor="test")
    assert balance(sessions, member_id) == before + 20 == ledger_totals(sessions, member_id)[0]
