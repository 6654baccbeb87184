"""Who a message or a figure is about, defined once for the jobs, the tags and the report.

Counted purchase: any purchase but a fully refunded one. Dormant: no counted purchase in
the last N days, having joined at least N days before. Birthday: the day (Feb 29 birthdays
on Feb 28 in other years) or, in month mode, the 1st of the month.

Who marketing may reach: win-back, nudges and issue campaigns are marketing, and staff
(active rows of the staff table, matched by LINE user id) get none of them, so a shop's own
people are not counted, billed or rewarded as customers to win. Receipts, warnings about a
member's own points and coupons, tier changes and birthday gifts are not marketing: staff
who are members get those like anyone else.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, Exists, Select, exists, extract, func, or_, select
from sqlalchemy.orm import Session

from bot.models import Member, Purchase, Staff
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
            .where(Member.status == "active", Member.line_user_id.is_not(None), not_staff(),
                   _bought(Purchase.created_at <= cutoff, new_spell),
                   ~_bought(Purchase.created_at > cutoff))
            .order_by(Member.id))
