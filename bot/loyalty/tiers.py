"""Membership tiers by spend over a rolling window, with the program's downgrade rule."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.timeutil import add_months, local_date, start_of_day
from bot.models import Member, Purchase
from bot.program import Program, Tier


@dataclass(frozen=True)
class TierChange:
    old: Tier
    new: Tier

    @property
    def upgraded(self) -> bool:
        return self.new.threshold > self.old.threshold


def window_spend(session: Session, program: Program, member_id: int, now: dt.datetime) -> int:
    """Net spend (after refunds) over the program's rolling window, up to now."""
    tz = program.timezone
    since = start_of_day(add_months(local_date(now, tz), -program.tier_window_months), tz)
    return session.scalar(
        select(func.coalesce(func.sum(Purchase.amount - Purchase.refunded_amount), 0))
        .where(Purchase.member_id == member_id, Purchase.created_at > since,
               Purchase.created_at <= now)) or 0


def tier_for_spend(program: Program, spend: int) -> Tier:
    return [t for t in program.tiers if t.threshold <= spend][-1]


def next_tier(program: Program, tier: Tier) -> Tier | None:
    higher = [t for t in program.tiers if t.threshold > tier.threshold]
    return higher[0] if higher else None


def evaluate_tier(session: Session, program: Program, member: Member, now: dt.datetime
                  ) -> TierChange | None:
    """Move a locked member to the tier their spend earns; downgrades follow the program rule."""
    current = program.tier(member.tier)
    earned = tier_for_spend(program, window_spend(session, program, member.id, now))
    if earned.threshold == current.threshold or not _may_change(program, member, current,
                                                                 earned, now):
        return None
    member.tier, member.tier_since = earned.key, now
    audit.record(session, "tier.change", member_id=member.id, actor="system", at=now,
                 old=current.key, new=earned.key)
    return TierChange(current, earned)


def _may_change(program: Program, member: Member, current: Tier, earned: Tier,
                now: dt.datetime) -> bool:
    if earned.threshold > current.threshold or program.downgrade == "rolling":
        return True
    if program.downgrade == "never":
        return False
    kept_until = add_months(local_date(member.tier_since, program.timezone), program.grace_months)
    return local_date(now, program.timezone) >= kept_until
