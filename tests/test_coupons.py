"""Coupons: readable one-time codes, caps, validity and exactly-once redemption."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest
from sqlalchemy import func, select

from bot.db import transaction
from bot.loyalty.codes import ALPHABET, LENGTH, format_code, new_code, normalize_code
from bot.loyalty.coupons import (
    check_coupon,
    expire_due_coupons,
    issue_coupon,
    redeem_coupon,
    wallet,
)
from bot.loyalty.errors import (
    CapReached,
    CouponAlreadyRedeemed,
    CouponExpired,
    CouponNotYetValid,
    CouponNotYours,
    CouponWindowClosed,
    InsufficientPoints,
    MinimumSpendNotMet,
    RewardUnavailable,
    UnknownCode,
    UnknownReward,
)
from bot.loyalty.members import adjust_points
from bot.loyalty.rewards import available_rewards, redeem_reward, within_reach
from bot.models import AuditLog, Coupon, Redemption
from tests.helpers import balance, join

TAIPEI = dt.timezone(dt.timedelta(hours=8))


def issue(sessions, program, member, key, now, **kwargs):
    with transaction(sessions) as session:
        return issue_coupon(session, program, member, key, now, reason="test", **kwargs)


def redeem(sessions, program, code, now, **kwargs):
    with transaction(sessions) as session:
        return redeem_coupon(session, program, code, now, actor="staff:test", **kwargs)


def test_codes_carry_at_least_44_bits_and_avoid_confusable_symbols():
    assert LENGTH * math.log2(len(ALPHABET)) >= 44
    assert not set("0O1IL") & set(ALPHABET)
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(len(c) == 9 and set(c) <= set(ALPHABET) for c in codes)
    assert format_code("7KQ2M9XHF") == "7KQ-2M9-XHF"


@pytest.mark.parametrize("typed", ["7KQ-2M9-XHF", "7kq2m9xhf", " 7KQ 2M9 XHF ",
                                   "７ＫＱ－２Ｍ９－ＸＨＦ", "７ｋｑ２ｍ９ｘｈｆ"])
def test_a_code_is_accepted_in_any_case_with_or_without_dashes_full_or_half_width(typed):
    assert normalize_code(typed) == "7KQ2M9XHF"


@pytest.mark.parametrize("typed", ["", "7KQ-2M9", "7KQ2M9XHFF", "0KQ2M9XHF", "7KQ2M9XH!",
                                   None])
def test_a_string_that_cannot_be_a_code_is_rejected(typed):
    assert normalize_code(typed) is None


def test_a_coupon_is_redeemed_once_and_the_second_try_says_already_used(sessions, program, now):
    member = join(sessions, program, now)
    coupon = issue(sessions, program, member, "nt50", now)
    view = redeem(sessions, program, format_code(coupon.code).lower(), now, order_amount=300)
    assert view.discount == 50
    with pytest.raises(CouponAlreadyRedeemed) as caught:
        redeem(sessions, program, coupon.code, now)
    assert caught.value.code == "already_redeemed"
    assert "已經使用過" in caught.value.message("zh-TW")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Redemption)) == 1
        assert session.scalar(select(func.count()).select_from(AuditLog)
                              .where(AuditLog.action == "coupon.redeem")) == 1


def test_checking_a_coupon_has_no_side_effect(sessions, program, now):
    member = join(sessions, program, now)
    coupon = issue(sessions, program, member, "pct10", now)
    with transaction(sessions) as session:
        view = check_coupon(session, program, coupon.code, now, order_amount=3000)
    assert view.discount == 200  # 10% of 3000 capped at max_discount 200
    with sessions() as session:
        assert session.get(Coupon, coupon.id).status == "issued"


def test_a_minimum_spend_is_checked_against_the_order_amount(sessions, program, now):
    member = join(sessions, program, now)
    coupon = issue(sessions, program, member, "nt120_over_500", now)
    with pytest.raises(MinimumSpendNotMet) as caught:
        redeem(sessions, program, coupon.code, now, order_amount=499)
    assert "500" in caught.value.message("en") and "499" in caught.value.message("en")
    assert redeem(sessions, program, coupon.code, now, order_amount=500).discount == 120


def test_an_expired_coupon_is_refused_with_its_last_day(sessions, program, now):
    member = join(sessions, program, now)
    coupon = issue(sessions, program, member, "nt50", now)  # 60 days: through 2027-01-21
    last_moment = dt.datetime(2027, 1, 21, 23, 59, tzinfo=TAIPEI)
    assert redeem(sessions, program, coupon.code, last_moment).coupon.status == "redeemed"
    other = issue(sessions, program, member, "nt50", now)
    with pytest.raises(CouponExpired) as caught:
        redeem(sessions, program, other.code, last_moment + dt.timedelta(minutes=1))
    assert "2027/01/21" in caught.value.message("en")


def test_a_coupon_with_a_fixed_window_is_not_valid_before_it_opens(sessions, program, now):
    member = join(sessions, program, now)
    coupon = issue(sessions, program, member, "xmas_beans", now)  # window Dec 1-31
    with pytest.raises(CouponNotYetValid) as caught:
        redeem(sessions, program, coupon.code, now)
    assert "2026/12/01" in caught.value.message("en")
    opening = dt.datetime(2026, 12, 1, 0, 0, tzinfo=TAIPEI)
    assert redeem(sessions, program, coupon.code, opening).coupon.status == "redeemed"


def test_a_fixed_window_coupon_cannot_be_issued_after_it_closes(sessions, program, now):
    member = join(sessions, program, now)
    with pytest.raises(CouponWindowClosed):
        issue(sessions, program, member, "xmas_beans", dt.datetime(2027, 1, 1, tzinfo=TAIPEI))


def test_another_members_coupon_is_not_yours(sessions, program, now):
    alice, bob = join(sessions, program, now), join(sessions, program, now, user="U-bob")
    coupon = issue(sessions, program, alice, "nt50", now)
    with pytest.raises(CouponNotYours):
        redeem(sessions, program, coupon.code, now, member_id=bob)
    with pytest.raises(UnknownCode):
        redeem(sessions, program, "ZZZ-ZZZ-ZZZ", now)


def test_the_per_member_cap_stops_a_second_coupon(sessions, program, now):
    member = join(sessions, program, now)
    issue(sessions, program, member, "xmas_beans", now)
    with pytest.raises(CapReached) as caught:
        issue(sessions, program, member, "xmas_beans", now)
    assert caught.value.code == "quantity_exceeded"


def test_the_total_cap_counts_every_member(sessions, program, now):
    template = dataclasses.replace(program.coupons["cake_set"], total_cap=2)
    capped = dataclasses.replace(program, coupons={**program.coupons, "cake_set": template})
    members = [join(sessions, capped, now, user=f"U-{i}") for i in range(3)]
    issue(sessions, capped, members[0], "cake_set", now)
    issue(sessions, capped, members[1], "cake_set", now)
    with pytest.raises(CapReached):
        issue(sessions, capped, members[2], "cake_set", now)


def test_an_issue_key_gives_a_grant_once_ever(sessions, program, now):
    member = join(sessions, program, now)
    first = issue(sessions, program, member, "nt50", now, issue_key="promo:1")
    again = issue(sessions, program, member, "nt50", now, issue_key="promo:1")
    assert again.id == first.id


def test_expiry_marks_only_coupons_past_their_last_day(sessions, program, now):
    member = join(sessions, program, now)
    keep = issue(sessions, program, member, "free_drink", now)  # 90 days
    drop = issue(sessions, program, member, "free_shipping", now)  # 30 days
    later = now + dt.timedelta(days=45)
    with transaction(sessions) as session:
        assert expire_due_coupons(session, later) == 2  # the welcome coupon too
    with sessions() as session:
        assert session.get(Coupon, drop.id).status == "expired"
        assert session.get(Coupon, keep.id).status == "issued"
        assert [v.coupon.id for v in wallet(session, program, member, later)] == [keep.id]
    with pytest.raises(CouponExpired):
        redeem(sessions, program, drop.code, now)


def test_points_buy_a_catalog_reward_coupon(sessions, program, now):
    member = join(sessions, program, now)
    with transaction(sessions) as session:
        adjust_points(session, program, member, 120, now, reason="gift", actor="owner")
        coupon = redeem_reward(session, program, member, "nt50", now, actor="member")
    assert balance(sessions, member) == 20
    with sessions() as session:
        codes = [v.coupon.code for v in wallet(session, program, member, now)]
    assert coupon.code in codes


def test_a_reward_without_enough_points_changes_nothing(sessions, program, now):
    member = join(sessions, program, now)
    with transaction(sessions) as session:
        adjust_points(session, program, member, 99, now, reason="gift", actor="owner")
    with pytest.raises(InsufficientPoints) as caught, transaction(sessions) as session:
        redeem_reward(session, program, member, "nt50", now, actor="member")
    assert "100" in caught.value.message("en") and "99" in caught.value.message("en")
    with pytest.raises(UnknownReward), transaction(sessions) as session:
        redeem_reward(session, program, member, "gone", now, actor="member")
    assert balance(sessions, member) == 99
    with sessions() as session:
        assert len(wallet(session, program, member, now)) == 1  # just the welcome coupon


def test_an_owner_may_lower_a_cap_below_what_was_already_given(sessions, program, now):
    members = [join(sessions, program, now, user=f"U-{i}") for i in range(3)]
    for member in members[:2]:
        issue(sessions, program, member, "cake_set", now)
    template = dataclasses.replace(program.coupons["cake_set"], total_cap=1)
    lowered = dataclasses.replace(program, coupons={**program.coupons, "cake_set": template})
    with pytest.raises(CapReached):
        issue(sessions, lowered, members[2], "cake_set", now)


def test_a_redemption_against_an_order_is_linked_to_that_purchase(sessions, program, now):
    from tests.helpers import buy

    member = join(sessions, program, now)
    coupon = issue(sessions, program, member, "nt50", now)
    purchase = buy(sessions, program, member, 450, now).purchase
    redeem(sessions, program, coupon.code, now, order_amount=450, purchase_id=purchase.id,
           member_id=member)
    with sessions() as session:
        redemption = session.scalars(select(Redemption)).one()
    assert (redemption.purchase_id, redemption.order_amount, redemption.discount) == (
        purchase.id, 450, 50)


# -- terms kept as issued ----------------------------------------------------------------------
def edited(program, key, **changes):
    coupons = {**program.coupons, key: dataclasses.replace(program.coupons[key], **changes)}
    return dataclasses.replace(program, coupons=coupons)


def test_a_coupon_keeps_the_terms_it_was_issued_with_when_the_template_is_edited(
        sessions, program, now):
    member_id = join(sessions, program, now, "U-terms")
    with transaction(sessions) as session:
        before = issue_coupon(session, program, member_id, "nt50", now, reason="t", actor="t")
    cheaper = edited(program, "nt50", amount=30, title="折 30 元", min_spend=500)
    with transaction(sessions) as session:
        after = issue_coupon(session, cheaper, member_id, "nt50", now, reason="t", actor="t")
    with sessions() as session:
        shown = {v.coupon.code: v.template for v in wallet(session, cheaper, member_id, now)}
    assert (shown[before.code].amount, shown[before.code].title) == (
        program.coupons["nt50"].amount, program.coupons["nt50"].title)
    assert (shown[after.code].amount, shown[after.code].title) == (30, "折 30 元")
    with transaction(sessions) as session:  # redeemed by its own terms: no new minimum
        used = redeem_coupon(session, cheaper, before.code, now, actor="t", order_amount=200)
    assert used.discount == program.coupons["nt50"].amount
    with sessions() as session, pytest.raises(MinimumSpendNotMet):
        check_coupon(session, cheaper, after.code, now, order_amount=200)


def test_coupons_issued_before_terms_were_kept_get_todays_terms_from_the_migration(
        tmp_path, program, now):
    from sqlalchemy import text

    from bot import migrate
    from bot.db import make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0008")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO members (member_code, display_name, language, status, "
                          "points_balance, tier, tier_since, joined_at, last_activity_at, "
                          "bonus_multiplier) VALUES ('M1', '', 'zh-TW', 'active', 0, "
                          "'silver', :t, :t, :t, 1)"),
                     {"t": now})
        conn.execute(text("INSERT INTO coupon_templates (key, title, kind, issued_count) "
                          "VALUES ('nt50', 'x', 'amount_off', 1), ('gone', 'Old', 'gift', 1)"))
        for n, template in ((1, 1), (2, 2)):
            conn.execute(text("INSERT INTO coupons (code, template_id, member_id, status, "
                              "valid_from, valid_until, issued_at, reason) VALUES "
                              "(:c, :t, 1, 'issued', :n, :n, :n, 'r')"),
                         {"c": f"CODE{n}", "t": template, "n": now})
    engine.dispose()
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        kept = dict(conn.execute(text(
            "SELECT c.code, t.terms FROM coupons c LEFT JOIN coupon_terms t "
            "ON t.id = c.terms_id")).all())
    engine.dispose()
    import json
    assert json.loads(kept["CODE1"])["amount"] == program.coupons["nt50"].amount
    assert kept["CODE2"] is None  # its template is gone: shown from its stored title


def test_the_catalog_hides_rewards_retired_out_of_their_dates_or_out_of_stock(sessions, program,
                                                                             now):
    today = now.astimezone(program.timezone).date()
    rewards = (
        dataclasses.replace(program.rewards[0], key="r1"),  # nt50: offered
        dataclasses.replace(program.rewards[0], key="r2", retired=True),
        dataclasses.replace(program.rewards[0], key="r3", starts=today + dt.timedelta(days=1)),
        dataclasses.replace(program.rewards[0], key="r4", ends=today - dt.timedelta(days=1)),
        dataclasses.replace(program.rewards[1], key="r5"),  # cake_set: a cap of 1, given below
        dataclasses.replace(program.rewards[0], key="r6", coupon="xmas_beans"),  # window over
    )
    coupons = {**program.coupons,
               "cake_set": dataclasses.replace(program.coupons["cake_set"], total_cap=1),
               "xmas_beans": dataclasses.replace(program.coupons["xmas_beans"],
                                                 valid_from=today - dt.timedelta(days=9),
                                                 valid_until=today - dt.timedelta(days=1))}
    shop = dataclasses.replace(program, rewards=rewards, coupons=coupons)
    member = join(sessions, shop, now)
    with sessions() as session:
        assert [r.key for r in available_rewards(session, shop, now)] == ["r1", "r5"]
    issue(sessions, shop, member, "cake_set", now)  # the last one
    with sessions() as session:
        assert [r.key for r in available_rewards(session, shop, now)] == ["r1"]
    with transaction(sessions) as session:
        adjust_points(session, shop, member, 1000, now, reason="gift", actor="owner")
    for hidden in ("r2", "r3", "r4"):
        with pytest.raises(RewardUnavailable), transaction(sessions) as session:
            redeem_reward(session, shop, member, hidden, now, actor="member")
    assert balance(sessions, member) == 1000


def test_the_reward_within_reach_is_the_dearest_affordable_or_the_cheapest(program):
    rewards = program.rewards  # 100, 500 and 1,000 points
    assert within_reach(rewards, 620) == (rewards[1], 0)
    assert within_reach(rewards, 40) == (rewards[0], 60)
    assert within_reach((), 40) is None
