"""Who marketing may reach.

Win-back, nudges and issue campaigns are marketing: staff (active rows of the staff table,
matched by LINE user id) get none of them, so a shop's own people are not counted, billed
or rewarded as customers to win. Receipts, warnings about a member's own points and coupons,
tier changes and birthday gifts are not marketing: staff who are members get those like
anyone else.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, Exists, Select, exists, func, or_, select

from bot.loyalty.report import counted
from bot.models import Member, Purchase, Staff
from bot.program import Program


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
