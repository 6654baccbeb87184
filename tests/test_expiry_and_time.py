"""Points expire on local days: per lot (optionally month end) or on a rolling balance."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.db import transaction
from bot.loyalty.errors import InsufficientPoints
from bot.loyalty.ledger import expire_due_points, lot_expiry
from bot.loyalty.members import adjust_points
from bot.loyalty.summary import member_summary
from bot.loyalty.timeutil import add_months
from bot.models import Member
from tests.helpers import balance, buy, join, ledger_totals

TAIPEI = ZoneInfo("Asia/Taipei")


def at(*args, tz=TAIPEI) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def expire(sessions, now):
    with transaction(sessions) as session:
        return expire_due_points(session, now)


def summary(sessions, program, member, now):
    with transaction(sessions) as session:
        return member_summary(session, program, session.get(Member, member), now)


@pytest.mark.parametrize(("day", "months", "expected"), [
    (dt.date(2026, 1, 31), 1, dt.date(2026, 2, 28)),
    (dt.date(2028, 1, 31), 1, dt.date(2028, 2, 29)),
    (dt.date(2026, 3, 5), 12, dt.date(2027, 3, 5)),
    (dt.date(2026, 11, 30), -12, dt.date(2025, 11, 30)),
])
def test_adding_months_clamps_to_the_end_of_shorter_months(day, months, expected):
    assert add_months(day, months) == expected


def test_a_lot_lasts_through_the_end_of_the_month_twelve_months_on(sessions, program):
    member = join(sessions, program, at(2026, 3, 5, 10))
    buy(sessions, program, member, 300, at(2026, 3, 5, 10))
    assert balance(sessions, member) == 10
    expire(sessions, at(2027, 3, 31, 23, 59))
    assert balance(sessions, member) == 10
    assert expire(sessions, at(2027, 4, 1, 0, 0)) == (1, 10)
    assert ledger_totals(sessions, member) == (0, 0, 0)


def test_points_earned_just_after_local_midnight_belong_to_that_local_day(program):
    # 2026-03-31 23:30 UTC is already April 1st in Taipei
    expires = lot_expiry(program, dt.datetime(2026, 3, 31, 23, 30, tzinfo=dt.UTC))
    assert expires == at(2027, 5, 1, 0, 0)


def test_lot_expiry_without_month_end_is_the_same_day_n_months_later(program):
    exact = dataclasses.replace(program, expiry_end_of_month=False)
    expires = lot_expiry(exact, at(2026, 3, 5, 10))
    assert expires == at(2027, 3, 6, 0, 0)


def test_expiry_is_at_local_midnight_in_a_daylight_saving_zone(sessions, program):
    new_york = ZoneInfo("America/New_York")
    ny = dataclasses.replace(program, timezone=new_york, expiry_months=1,
                             expiry_end_of_month=False)
    earned = at(2026, 10, 8, 12, tz=new_york)  # EDT; the lot lasts through Nov 8 (EST)
    member = join(sessions, ny, earned)
    buy(sessions, ny, member, 300, earned)
    expire(sessions, at(2026, 11, 8, 23, 59, tz=new_york))
    assert balance(sessions, member) == 10
    expire(sessions, at(2026, 11, 9, 0, 0, tz=new_york))
    assert balance(sessions, member) == 0


def test_spends_draw_the_soonest_expiring_points_first(sessions, program):
    member = join(sessions, program, at(2026, 1, 10, 12))
    buy(sessions, program, member, 300, at(2026, 1, 10, 12))   # 10 points, expire 2027-01-31
    buy(sessions, program, member, 600, at(2026, 6, 10, 12))   # 20 points, expire 2027-06-30
    with transaction(sessions) as session:
        adjust_points(session, program, member, -15, at(2026, 7, 1, 12), reason="fix",
                      actor="owner")
    expire(sessions, at(2027, 2, 1, 0, 0))
    assert balance(sessions, member) == 15  # the older lot was used up first, nothing lost
    assert ledger_totals(sessions, member) == (15, 15, 15)


def test_the_summary_shows_points_expiring_soon_with_their_last_day(sessions, program):
    member = join(sessions, program, at(2025, 12, 20, 12))
    buy(sessions, program, member, 300, at(2025, 12, 20, 12))
    buy(sessions, program, member, 600, at(2026, 5, 20, 12))
    view = summary(sessions, program, member, at(2026, 12, 10, 9))
    assert [(e.date, e.points) for e in view.expiring] == [(dt.date(2026, 12, 31), 10)]
    assert view.balance == 30


def test_the_summary_never_counts_points_already_past_expiry(sessions, program):
    member = join(sessions, program, at(2025, 1, 5, 12))
    buy(sessions, program, member, 300, at(2025, 1, 5, 12))
    assert summary(sessions, program, member, at(2026, 2, 1, 9)).balance == 0


def test_points_past_expiry_cannot_be_spent_even_before_the_expiry_run(sessions, program):
    member = join(sessions, program, at(2025, 1, 5, 12))
    buy(sessions, program, member, 300, at(2025, 1, 5, 12))
    with pytest.raises(InsufficientPoints), transaction(sessions) as session:
        adjust_points(session, program, member, -5, at(2026, 2, 1, 9), reason="x", actor="o")


def test_rolling_expiry_is_pushed_out_by_every_purchase(sessions, program):
    rolling = dataclasses.replace(program, expiry_mode="rolling")
    member = join(sessions, rolling, at(2026, 1, 10, 12))
    buy(sessions, rolling, member, 300, at(2026, 1, 10, 12))
    buy(sessions, rolling, member, 300, at(2026, 11, 10, 12))
    expire(sessions, at(2027, 1, 20, 0))  # 12 months after the first, not after the last
    assert balance(sessions, member) == 20
    expire(sessions, at(2027, 11, 11, 0, 0))
    assert balance(sessions, member) == 0


def test_a_shorter_rolling_expiry_never_brings_points_already_earned_forward(sessions,
                                                                           program):
    """12 months, then 3: the 10 points of January keep their January 2027 date when a
    purchase in March renews the balance by 3 months only (to June 2026)."""
    rolling = dataclasses.replace(program, expiry_mode="rolling")
    shorter = dataclasses.replace(rolling, expiry_months=3)
    member = join(sessions, rolling, at(2026, 1, 10, 12))
    buy(sessions, rolling, member, 300, at(2026, 1, 10, 12))
    buy(sessions, shorter, member, 300, at(2026, 3, 10, 12))
    expire(sessions, at(2026, 6, 20, 0))  # the new points: 3 months after March
    assert balance(sessions, member) == 10
    expire(sessions, at(2027, 1, 20, 0))
    assert balance(sessions, member) == 0


def test_in_rolling_mode_points_given_by_hand_also_renew_the_balance(sessions, program):
    rolling = dataclasses.replace(program, expiry_mode="rolling")
    member = join(sessions, rolling, at(2026, 1, 10, 12))
    buy(sessions, rolling, member, 300, at(2026, 1, 10, 12))
    with transaction(sessions) as session:
        adjust_points(session, rolling, member, 5, at(2026, 12, 1, 12), reason="sorry",
                      actor="owner")
    expire(sessions, at(2027, 6, 1, 0))
    assert balance(sessions, member) == 15
    expire(sessions, at(2027, 12, 2, 0))
    assert balance(sessions, member) == 0
