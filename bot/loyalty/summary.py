"""Everything a member sees about themselves, read in one place."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from bot.db import core
from bot.loyalty.coupons import CouponView, wallet
from bot.loyalty.stamps import card_and_spend, card_rewards
from bot.loyalty.tiers import next_tier
from bot.loyalty.timeutil import local_date
from bot.models import Member, PointEntry
from bot.program import Program, Tier


@dataclass(frozen=True)
class Expiring:
    date: dt.date  # the last local day the points can be used
    points: int


@dataclass(frozen=True)
class MemberSummary:
    member: Member
    balance: int
    expiring: list[Expiring]
    tier: Tier
    next_tier: Tier | None
    spend: int
    spend_to_next: int | None
    stamps: int
    stamp_goal: int
    stamps_to_next_reward: int
    wallet: list[CouponView]
    stamps_until: dt.date | None = None  # the card's last local day; None: it never expires
    stamp_rewards: dict[int, str] | None = None  # the card's, stamps -> template (None: the
    # program's for its goal)


_LOTS = (  # built once: points left per expiry instant
    select(PointEntry.expires_at, func.sum(PointEntry.remaining))
    .where(PointEntry.member_id == bindparam("member_id"), PointEntry.remaining > 0,
           PointEntry.expires_at.is_not(None))
    .group_by(PointEntry.expires_at).order_by(PointEntry.expires_at))


def member_summary(session: Session, program: Program, member: Member, now: dt.datetime,
                   soon_days: int = 30) -> MemberSummary:
    """Balance (net of anything already past its expiry), expiring points, tier, card, wallet."""
    tz = program.timezone
    rows = core(session).execute(_LOTS, {"member_id": member.id}).all()
    lapsed = sum(points for at, points in rows if at <= now)
    horizon = now + dt.timedelta(days=soon_days)
    by_day: dict[dt.date, int] = {}
    for at, points in rows:
        if now < at <= horizon:
            day = local_date(at - dt.timedelta(microseconds=1), tz)
            by_day[day] = by_day.get(day, 0) + points
    tier = program.tier(member.tier)
    upcoming = next_tier(program, tier)
    card, spend = card_and_spend(session, program, member.id, now)
    rewards = card_rewards(program, card)
    targets = [at for at in rewards if card.stamps < at < card.goal] + [card.goal]
    return MemberSummary(
        member=member, balance=member.points_balance - lapsed,
        expiring=[Expiring(day, points) for day, points in sorted(by_day.items())],
        tier=tier, next_tier=upcoming, spend=spend,
        spend_to_next=max(0, upcoming.threshold - spend) if upcoming else None,
        stamps=card.stamps, stamp_goal=card.goal,
        stamps_to_next_reward=min(targets) - card.stamps,
        wallet=wallet(session, program, member.id, now),
        stamps_until=local_date(card.expires_at - dt.timedelta(microseconds=1), tz)
        if card.expires_at else None, stamp_rewards=rewards)
