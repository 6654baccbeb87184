"""The dashboard's figures composed from the clock's daily figures equal the report's, for
any period, after refunds of old purchases, erasures and merges, run after run."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db import transaction
from bot.loyalty import daily, dashboard
from bot.loyalty.coupons import issue_coupon, redeem_coupon
from bot.loyalty.erasure import erase_member
from bot.loyalty.members import unfollow
from bot.loyalty.purchases import refund_order
from bot.loyalty.report import build_report, period
from bot.loyalty.stamps import adjust_stamps
from bot.models import (
    CountedMember,
    DailyCards,
    DailyCoupons,
    DailyFigures,
    DailyJoins,
    DormantDays,
    MemberDay,
    Purchase,
    VisitDays,
    VisitPairs,
)
from tests.helpers import buy, join

TAIPEI = ZoneInfo("Asia/Taipei")
FIRST = dt.date(2026, 1, 1)


def at(day: dt.date, hour: int, tz: ZoneInfo = TAIPEI) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=tz)


def shop(sessions, program, rng: random.Random, members: int, days: int,
         tz: ZoneInfo = TAIPEI) -> list[int]:
    """Members joining over `days` days from FIRST, buying 0-6 times (some twice a day),
    with coupons issued and some redeemed; returns their ids."""
    ids = []
    for n in range(members):
        joined = FIRST + dt.timedelta(days=rng.randrange(days // 2))
        member = join(sessions, program, at(joined, 9, tz), user=f"U-{n}")
        ids.append(member)
        day = joined
        for _ in range(rng.randrange(7)):
            day += dt.timedelta(days=rng.choice((0, 1, 3, 9, 20)))
            buy(sessions, program, member, rng.randrange(50, 900),
                at(day, rng.choice((0, 10, 23)), tz))
        if rng.random() < 0.5:
            with transaction(sessions) as session:
                code = issue_coupon(session, program, member, rng.choice(("nt50", "pct10")),
                                    at(day, 12, tz), reason="test").code
                if rng.random() < 0.6:
                    redeem_coupon(session, program, code, at(day, 13, tz), actor="test",
                                  order_amount=600)
    return ids


def refund_some(sessions, program, rng: random.Random, count: int, when: dt.datetime) -> None:
    """Refund `count` purchases (old ones included), fully or in part, at `when`."""
    with sessions() as session:
        orders = session.execute(select(Purchase.external_order_id, Purchase.amount)
                                 .where(Purchase.refunded_amount == 0)
                                 .order_by(Purchase.id)).all()
    for order_id, amount in rng.sample(orders, min(count, len(orders))):
        with transaction(sessions) as session:
            refund_order(session, program, amount if rng.random() < 0.6 else amount // 2,
                         when, source="pos", order_id=order_id, refund_id=f"R-{order_id}",
                         actor="test")


def ranges(rng: random.Random, last: dt.date, count: int) -> list[tuple[dt.date, dt.date]]:
    picked = [(last - dt.timedelta(days=6), last), (FIRST, last),
              (FIRST - dt.timedelta(days=30), FIRST + dt.timedelta(days=2))]
    span = (last - FIRST).days
    for _ in range(count):
        first = FIRST + dt.timedelta(days=rng.randrange(span))
        picked.append((first, min(last, first + dt.timedelta(days=rng.randrange(1, 120)))))
    return picked


def assert_same_as_the_report(sessions, program, spans, now: dt.datetime) -> None:
    with sessions() as session:
        for first, last in spans:
            kept = dashboard.kept(session, program, first, last, now)
            assert kept is not None and kept.computed_at <= now
            live = dashboard.compute(session, program, first, last, now)
            assert kept.current == live.current, (first, last)
            assert kept.previous == live.previous, (first, last)


def tables(sessions) -> dict[str, list[tuple]]:
    with sessions() as session:
        return {model.__tablename__: [tuple(row) for row in session.execute(
            select(*model.__table__.columns).order_by(*model.__table__.primary_key))]
            for model in (DailyFigures, DailyJoins, DailyCoupons, DailyCards, MemberDay,
                          VisitDays, VisitPairs, DormantDays, CountedMember)}


def refresh(sessions, program, now: dt.datetime, *, full: bool = False) -> str:
    with transaction(sessions) as session:
        return daily.refresh(session, program, now, full=full)


def test_any_period_from_the_daily_figures_equals_the_report_after_refunds_and_erasures(
        sessions, program):
    rng = random.Random(16)
    members = shop(sessions, program, rng, 40, 120)
    first_run = at(FIRST + dt.timedelta(days=130), 8)
    assert "all days" in refresh(sessions, program, first_run)
    assert_same_as_the_report(sessions, program, ranges(rng, first_run.date(), 6),
                              first_run + dt.timedelta(minutes=1))

    later = first_run + dt.timedelta(hours=5)
    refund_some(sessions, program, rng, 12, later)  # months after the purchases
    buy(sessions, program, members[3], 480, later)
    with transaction(sessions) as session:
        adjust_stamps(session, program, members[4], 2, later, actor="test", reason="test")
        unfollow(session, "U-5", later)
        erase_member(session, members[6], later, actor="test")
    second_run = later + dt.timedelta(minutes=3)
    summary = refresh(sessions, program, second_run)
    assert "all days" not in summary  # only what changed
    assert_same_as_the_report(sessions, program, ranges(rng, second_run.date(), 10),
                              second_run + dt.timedelta(minutes=1))
    incremental = tables(sessions)
    refresh(sessions, program, second_run, full=True)
    assert tables(sessions) == incremental


@pytest.mark.parametrize("spans", [daily.MANY_SPANS, 0])  # 0: every day between re-counted
def test_a_purchase_recorded_with_an_earlier_time_after_a_run_is_counted_by_the_next(
        sessions, program, monkeypatch, spans):
    monkeypatch.setattr(daily, "MANY_SPANS", spans)
    rng = random.Random(7)
    shop(sessions, program, rng, 8, 40)
    ran = at(FIRST + dt.timedelta(days=60), 8)
    refresh(sessions, program, ran)
    member = join(sessions, program, at(FIRST, 9), user="U-late")
    buy(sessions, program, member, 700, at(FIRST + dt.timedelta(days=10), 12))  # a POS catching up
    refresh(sessions, program, ran + dt.timedelta(hours=2))
    assert_same_as_the_report(sessions, program, ranges(rng, ran.date(), 4),
                              ran + dt.timedelta(hours=2, minutes=1))


def test_figures_follow_the_shop_timezone_across_daylight_saving_changes(sessions, program):
    new_york = ZoneInfo("America/New_York")  # clocks go forward on 2026-03-08
    program = dataclasses.replace(program, timezone=new_york)
    rng = random.Random(3)
    shop(sessions, program, rng, 15, 120, tz=new_york)
    ran = at(FIRST + dt.timedelta(days=130), 8, new_york)
    refresh(sessions, program, ran)
    assert_same_as_the_report(sessions, program,
                              [(dt.date(2026, 3, 1), dt.date(2026, 3, 14)),
                               (dt.date(2026, 2, 1), dt.date(2026, 5, 10))],
                              ran + dt.timedelta(minutes=1))


def test_stale_daily_figures_are_not_used(sessions, program):
    join(sessions, program, at(FIRST, 9))
    ran = at(FIRST + dt.timedelta(days=3), 8)
    refresh(sessions, program, ran)
    with sessions() as session:
        assert dashboard.kept(session, program, FIRST, FIRST, ran) is not None
        late = ran + dashboard.MAX_AGE + dt.timedelta(seconds=1)
        assert dashboard.kept(session, program, FIRST, FIRST, late) is None


@pytest.mark.parametrize("days", [1, 7])
def test_the_period_before_has_as_many_local_days(days):
    first = dt.date(2026, 3, 10)
    last = first + dt.timedelta(days=days - 1)
    assert dashboard.previous_days(first, last) == (first - dt.timedelta(days=days),
                                                    first - dt.timedelta(days=1))


def test_the_report_and_the_daily_figures_agree_on_an_empty_shop(sessions, program):
    ran = at(FIRST, 8)
    refresh(sessions, program, ran)
    start, end = period(program, FIRST, FIRST)
    with sessions() as session:
        kept = dashboard.kept(session, program, FIRST, FIRST, ran)
        report = build_report(session, program, start, end, ran, quota=program.allowance)
    assert kept.current == dashboard.from_report(report)


def test_a_new_dormancy_rule_in_the_program_file_counts_every_day_again(sessions, program):
    rng = random.Random(11)
    shop(sessions, program, rng, 10, 60)
    ran = at(FIRST + dt.timedelta(days=90), 8)
    refresh(sessions, program, ran)
    stricter = dataclasses.replace(program, winback_after_days=20)
    assert "all days" in refresh(sessions, stricter, ran + dt.timedelta(minutes=10))
    assert_same_as_the_report(sessions, stricter, ranges(rng, ran.date(), 3),
                              ran + dt.timedelta(minutes=11))
