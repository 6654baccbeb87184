"""Stamp cards: one a day in the shop's timezone, milestones, completion and a new card."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.db import transaction
from bot.loyalty.coupons import wallet
from bot.loyalty.summary import member_summary
from bot.models import AuditLog, Coupon, CouponTemplateRow, Member, StampCard
from bot.program import Milestone
from tests.helpers import buy, join

TAIPEI = ZoneInfo("Asia/Taipei")


def at(*args, tz=TAIPEI) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def coupons_of(sessions, member) -> list[str]:
    with sessions() as session:
        return list(session.scalars(
            select(CouponTemplateRow.key).join(Coupon).where(Coupon.member_id == member)
            .order_by(Coupon.id)))


def test_the_first_purchase_adds_the_starter_stamp(sessions, program, now):
    member = join(sessions, program, now)
    assert buy(sessions, program, member, 100, now).stamps == 2
    assert buy(sessions, program, member, 100, now + dt.timedelta(days=1)).stamps == 1


def test_a_purchase_below_the_minimum_earns_no_visit_stamp(sessions, program, now):
    member = join(sessions, program, now)
    assert buy(sessions, program, member, 79, now).stamps == 1  # the starter stamp only


def test_a_zero_amount_purchase_earns_no_stamp_even_without_a_minimum(sessions, program, now):
    no_minimum = dataclasses.replace(program, stamps=dataclasses.replace(program.stamps,
                                                                         min_amount=0))
    member = join(sessions, no_minimum, now)
    assert buy(sessions, no_minimum, member, 0, now).stamps == 0
    assert buy(sessions, no_minimum, member, 1, now).stamps == 2  # the visit and the starter


def test_only_one_visit_stamp_per_local_day_even_across_utc_midnight(sessions, program):
    member = join(sessions, program, at(2026, 11, 22, 7))
    # 07:50 and 23:50 Taipei are the same local day, though UTC sees two different days
    assert buy(sessions, program, member, 100, at(2026, 11, 22, 7, 50)).stamps == 2
    assert buy(sessions, program, member, 100, at(2026, 11, 22, 23, 50)).stamps == 0
    # 00:10 the next morning is a new day in Taipei, though still the same UTC day
    assert buy(sessions, program, member, 100, at(2026, 11, 23, 0, 10)).stamps == 1


def test_the_fifth_stamp_gives_the_milestone_coupon_and_the_tenth_completes_the_card(
        sessions, program, now):
    member = join(sessions, program, now)
    for day in range(4):  # 2 + 1 + 1 + 1 = 5 stamps
        buy(sessions, program, member, 100, now + dt.timedelta(days=day))
    assert coupons_of(sessions, member) == ["welcome", "pct10"]
    for day in range(4, 9):  # 5 more: 10
        buy(sessions, program, member, 100, now + dt.timedelta(days=day))
    assert coupons_of(sessions, member) == ["welcome", "pct10", "free_drink"]
    with sessions() as session:
        cards = session.scalars(select(StampCard).where(StampCard.member_id == member)
                                .order_by(StampCard.id)).all()
        assert [(c.status, c.stamps) for c in cards] == [("completed", 10), ("active", 0)]


def test_stamps_beyond_the_goal_carry_over_to_the_new_card(sessions, program, now):
    per_amount = dataclasses.replace(program, stamps=dataclasses.replace(
        program.stamps, per="amount", amount_per_stamp=100, one_per_day=False))
    member = join(sessions, per_amount, now)
    result = buy(sessions, per_amount, member, 1200, now)  # 12 + 1 starter
    assert result.stamps == 13
    assert [c.template.key for c in _wallet(sessions, per_amount, member, now)].count(
        "free_drink") == 1
    with transaction(sessions) as session:
        summary = member_summary(session, per_amount, session.get(Member, member), now)
    assert (summary.stamps, summary.stamp_goal, summary.stamps_to_next_reward) == (3, 10, 2)


def test_a_card_not_completed_in_time_expires_and_a_new_one_starts(sessions, program, now):
    short = dataclasses.replace(program, stamps=dataclasses.replace(program.stamps,
                                                                    card_valid_days=30))
    member = join(sessions, short, now)
    buy(sessions, short, member, 100, now)
    buy(sessions, short, member, 100, now + dt.timedelta(days=31))
    with sessions() as session:
        cards = session.scalars(select(StampCard).where(StampCard.member_id == member)
                                .order_by(StampCard.id)).all()
        assert [(c.status, c.stamps) for c in cards] == [("expired", 2), ("active", 1)]


def test_one_stamp_a_day_follows_local_days_through_a_daylight_saving_change(sessions, program):
    new_york = ZoneInfo("America/New_York")
    ny_program = dataclasses.replace(program, timezone=new_york)
    # 2026-11-01 is the autumn change in New York: the day has 25 hours
    member = join(sessions, ny_program, at(2026, 11, 1, 0, 30, tz=new_york))
    assert buy(sessions, ny_program, member, 100, at(2026, 11, 1, 0, 30, tz=new_york)).stamps == 2
    assert buy(sessions, ny_program, member, 100, at(2026, 11, 1, 23, 30, tz=new_york)).stamps == 0
    assert buy(sessions, ny_program, member, 100, at(2026, 11, 2, 0, 5, tz=new_york)).stamps == 1


def _wallet(sessions, program, member, now):
    with sessions() as session:
        return wallet(session, program, member, now)


def test_a_card_keeps_the_rewards_it_started_with_when_the_program_changes(sessions, program,
                                                                            now):
    """The milestone moves from the 5th stamp (10% off) to the 3rd (NT$50 off): a card begun
    before still gives 10% off at 5, and its card says so; the next card follows the change."""
    moved = dataclasses.replace(program, stamps=dataclasses.replace(
        program.stamps, milestones=(Milestone(3, "nt50"),)))
    member = join(sessions, program, now)
    buy(sessions, program, member, 100, now)  # 2 stamps (the starter) on a card of today's
    for day in range(1, 4):
        buy(sessions, moved, member, 100, now + dt.timedelta(days=day))
    assert coupons_of(sessions, member) == ["welcome", "pct10"]  # at 5, not at 3
    with sessions() as session:
        summary = member_summary(session, moved, session.get(Member, member),
                                 now + dt.timedelta(days=4))
    assert summary.stamp_rewards == {5: "pct10", 10: "free_drink"}
    assert summary.stamps_to_next_reward == 5  # 5 of 10: the full card is next
    for day in range(4, 12):
        buy(sessions, moved, member, 100, now + dt.timedelta(days=day))
    with sessions() as session:
        cards = session.scalars(select(StampCard).where(StampCard.member_id == member)
                                .order_by(StampCard.id)).all()
        assert [c.rewards for c in cards] == [{"5": "pct10", "10": "free_drink"},
                                              {"3": "nt50", "10": "free_drink"}]
    assert coupons_of(sessions, member) == ["welcome", "pct10", "free_drink", "nt50"]


def test_a_kept_reward_whose_template_was_removed_is_recorded_not_given(sessions, program,
                                                                         now):
    member = join(sessions, program, now)
    buy(sessions, program, member, 100, now)
    coupons = {k: v for k, v in program.coupons.items() if k != "pct10"}
    without = dataclasses.replace(program, coupons=coupons, stamps=dataclasses.replace(
        program.stamps, milestones=()))
    for day in range(1, 4):
        result = buy(sessions, without, member, 100, now + dt.timedelta(days=day))
    assert result.stamps == 1 and coupons_of(sessions, member) == ["welcome"]
    with sessions() as session:
        noted = session.scalars(select(AuditLog).where(
            AuditLog.action == "coupon.not_issued")).one()
        assert (noted.reason, noted.details["template"]) == ("template_removed", "pct10")


def test_a_nudge_names_the_cards_own_next_reward_not_the_programs(sessions, program, now,
                                                                  line_config):
    """A card begun with 10% off at 5 stamps, at 4 stamps, after the milestone moved to 6
    (NT$50 off): it is one stamp from ITS reward, and the nudge says 10% off."""
    from bot.jobs import JOBS, run_job
    from bot.models import Notice
    from tests.test_jobs import make_runtime

    member = join(sessions, program, now)
    for day in range(3):
        buy(sessions, program, member, 100, now + dt.timedelta(days=day))  # 4 stamps
    moved = dataclasses.replace(program, stamps=dataclasses.replace(
        program.stamps, milestones=(Milestone(6, "nt50"),)))
    rt = make_runtime(sessions, moved, line_config)
    run_job(rt, JOBS["nudges"], now + dt.timedelta(days=4))
    with sessions() as session:
        keys = session.scalars(select(Notice.key)).all()
        card = session.scalars(select(StampCard.id).where(StampCard.member_id == member,
                                                          StampCard.status == "active")).one()
    assert [k for k in keys if k.startswith("nudge:card:")] == [f"nudge:card:{card}:5"]
