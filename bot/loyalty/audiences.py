"""Who a message or a figure is about, defined once for the jobs, the tags and the report.

Counted purchase: any purchase but a fully refunded one. Dormant: no counted purchase in
the last N days, having joined at least N days before. Birthday: the day (Feb 29 birthdays
on Feb 28 in other years) or, in month mode, the 1st of the month.

Who marketing may reach: win-back, nudges and issue campaigns are marketing, and staff
(active rows of the staff table, matched by LINE user id) get none of them, so a shop's own
people are not counted, billed or rewarded as customers to win; nor does a member who sent
停止推播 / stop promotions (Member.marketing_opt_out), until they start them again.
Receipts, warnings about a member's own points and coupons, tier changes and birthday gifts
are not marketing: staff, and members who stopped marketing, get those like anyone else.

Due: points lots and coupons expiring within a warning's horizon, members a few stamps or
points short of a reward (nudges), members above the first tier (re-evaluated for
downgrades), dormant customers (win-back).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Exists, Row, Select, exists, extract, func, or_, select
from sqlalchemy.orm import Session

from bot.models import Coupon, Member, PointEntry, Purchase, Staff, StampCard
from bot.program import Program


def counted() -> ColumnElement[bool]:
    """A WHERE clause on Purchase: not fully refunded (a zero-amount purchase still counts)."""
    return or_(Purchase.refunded_amount == 0, Purchase.refunded_amount < Purchase.amount)


def dormant(days: int, as_of: dt.datetime) -> ColumnElement[bool]:
    """A WHERE clause on Member: joined at least `days` before `as_of` and no counted
    purchase in the `days` up to it (whether or not they ever bought)."""
    cutoff = as_of - dt.timedelta(days=days)
    recent = exists().where(Purchase.member_id == Member.id, Purchase.created_at > cutoff,
                            Purchase.created_at < as_of, counted())
    return (Member.joined_at <= cutoff) & ~recent


def birthday_members(session: Session, program: Program, day: dt.date) -> list[int]:
    """Active LINE members celebrating on `day`, by id."""
    month, dom = extract("month", Member.birthday), extract("day", Member.birthday)
    if program.birthday_when == "month":
        if day.day != 1:
            return []
        match = month == day.month
    else:
        match = (month == day.month) & (dom == day.day)
        if (day.month, day.day) == (2, 28) and not _leap(day.year):
            match = match | ((month == 2) & (dom == 29))
    return list(session.scalars(select(Member.id).where(
        match, Member.status == "active", Member.line_user_id.is_not(None))
        .order_by(Member.id)))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def not_staff() -> ColumnElement[bool]:
    """A WHERE clause on Member: not the LINE account of an active staff member."""
    return ~exists().where(Staff.active, Staff.line_user_id == Member.line_user_id)


def may_market() -> ColumnElement[bool]:
    """A WHERE clause on Member: marketing may reach them (not staff, and they have not
    sent 停止推播 / stop promotions)."""
    return not_staff() & Member.marketing_opt_out.is_(False)


def _bought(*conditions: ColumnElement[bool]) -> Exists:
    return exists().where(Purchase.member_id == Member.id, counted(), *conditions)


def winback_due(program: Program, now: dt.datetime) -> Select:
    """(member id, their last counted purchase) of the members win-back is due to, by id.

    Dormant as the report has it (no counted purchase, a fully refunded one being none, in
    `[winback] after_days`), but only for customers: at least one counted purchase, so a
    member who never bought (or only bought what was refunded) is not won "back". Once per
    dormant spell: not again until a purchase after the last win-back has lapsed too.
    """
    cutoff = now - dt.timedelta(days=program.winback_after_days)
    last = (select(func.max(Purchase.created_at))
            .where(Purchase.member_id == Member.id, counted()).scalar_subquery())
    new_spell = or_(Member.winback_sent_at.is_(None),
                    Purchase.created_at > Member.winback_sent_at)
    return (select(Member.id, last)
            .where(Member.status == "active", Member.line_user_id.is_not(None), may_market(),
                   _bought(Purchase.created_at <= cutoff, new_spell),
                   ~_bought(Purchase.created_at > cutoff))
            .order_by(Member.id))


def winback_members(session: Session, program: Program, now: dt.datetime) -> list[int]:
    """The ids of the members win-back is due to (winback_due), in id order."""
    return list(session.scalars(winback_due(program, now)))


def winback_still_due(session: Session, program: Program, now: dt.datetime,
                      member_ids: list[int]) -> dict[int, dt.datetime]:
    """Of these members, those win-back is still due to, with their last counted purchase
    (asked again under the members' locks: one may have bought meanwhile)."""
    return dict(session.execute(winback_due(program, now).where(Member.id.in_(member_ids)))
                .all())


def active_members(session: Session, member_ids: list[int]) -> dict[int, Member]:
    """Those of these members whose membership is active, by id."""
    return {m.id: m for m in session.scalars(select(Member).where(
        Member.id.in_(member_ids), Member.status == "active"))}


def points_expiring(session: Session, start: dt.datetime, end: dt.datetime
                    ) -> Sequence[Row[int, int, dt.datetime, int]]:
    """(lot id, member id, expires at, points left) of the lots with points left that
    expire after `start`, up to and including `end`."""
    return session.execute(
        select(PointEntry.id, PointEntry.member_id, PointEntry.expires_at, PointEntry.remaining)
        .where(PointEntry.remaining > 0, PointEntry.expires_at > start,
               PointEntry.expires_at <= end)).all()


def coupons_expiring(session: Session, start: dt.datetime, end: dt.datetime
                     ) -> Sequence[Row[int, int]]:
    """(coupon id, member id) of the unused coupons whose validity ends after `start`, up
    to and including `end`."""
    return session.execute(
        select(Coupon.id, Coupon.member_id).where(
            Coupon.status == "issued", Coupon.valid_until > start,
            Coupon.valid_until <= end)).all()


def cards_expiring(session: Session, start: dt.datetime, end: dt.datetime
                   ) -> Sequence[Row[int, int, dt.datetime, int, int]]:
    """(card id, member id, expires at, stamps, goal) of the active stamp cards holding
    stamps that expire after `start`, up to and including `end`."""
    return session.execute(
        select(StampCard.id, StampCard.member_id, StampCard.expires_at, StampCard.stamps,
               StampCard.goal)
        .where(StampCard.status == "active", StampCard.stamps > 0,
               StampCard.stamps < StampCard.goal, StampCard.expires_at > start,
               StampCard.expires_at <= end)).all()


def near_stamp_goal(session: Session, targets: list[int], within: int
                    ) -> Sequence[Row[int, int, int, int, Any]]:
    """(card id, member id, stamps, goal, kept rewards) of active cards 1 to `within` stamps
    short of one of the `targets` (milestones, the goal), for active members marketing may
    reach, by member."""
    return session.execute(
        select(StampCard.id, StampCard.member_id, StampCard.stamps, StampCard.goal,
               StampCard.rewards)
        .join(Member, Member.id == StampCard.member_id)
        .where(StampCard.status == "active", Member.status == "active", may_market(),
               or_(*[StampCard.stamps.between(t - within, t - 1) for t in targets]))
        .order_by(StampCard.member_id)).all()


def near_points_goal(session: Session, goals: list[int], within: int
                     ) -> Sequence[Row[int, int]]:
    """(member id, points balance) of active members marketing may reach whose balance is
    1 to `within` points short of one of the `goals` (rewards' prices), by id."""
    if not goals:
        return []
    return session.execute(select(Member.id, Member.points_balance).where(
        Member.status == "active", may_market(), or_(*[Member.points_balance.between(
            goal - within, goal - 1) for goal in goals]))
        .order_by(Member.id)).all()


def points_spend_counts(session: Session, member_ids: list[int]) -> dict[int, int]:
    """How many times each of these members has spent points (those who never did are
    left out): after each spend, nearing a reward again is a new crossing."""
    return dict(session.execute(
        select(PointEntry.member_id, func.count()).where(
            PointEntry.member_id.in_(member_ids), PointEntry.kind == "spend")
        .group_by(PointEntry.member_id)).all())


def members_to_retier(session: Session, program: Program) -> list[int]:
    """Members above the program's first tier, by id: the only ones the passing of time
    can move (down)."""
    return list(session.scalars(select(Member.id).where(Member.tier != program.tiers[0].key)
                                .order_by(Member.id)))
