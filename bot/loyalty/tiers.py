"""Membership tiers by spend over a rolling window, with the program's downgrade rule."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Select, bindparam, func, select
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
    return session.scalar(SPEND, spend_params(program, member_id, now)) or 0


# window_spend as a statement, built once, to run on its own or inside another (spend_params)
SPEND: Select[tuple[int]] = (
    select(func.coalesce(func.sum(Purchase.amount - Purchase.refunded_amount), 0))
    .where(Purchase.member_id == bindparam("member_id"),
           Purchase.created_at > bindparam("window_start"),
           Purchase.created_at <= bindparam("now")))


def spend_params(program: Program, member_id: int, now: dt.datetime) -> dict:
    return {"member_id": member_id, "window_start": _window_start(program, now), "now": now}


def tier_for_spend(program: Program, spend: int) -> Tier:
    return [t for t in program.tiers if t.threshold <= spend][-1]


def next_tier(program: Program, tier: Tier) -> Tier | None:
    higher = [t for t in program.tiers if t.threshold > tier.threshold]
    return higher[0] if higher else None


def window_spends(session: Session, program: Program, member_ids: list[int],
                  now: dt.datetime) -> dict[int, int]:
    """window_spend for many members in one query (members without purchases are left out)."""
    return dict(session.execute(
        select(Purchase.member_id, func.sum(Purchase.amount - Purchase.refunded_amount))
        .where(Purchase.member_id.in_(member_ids),
               Purchase.created_at > _window_start(program, now), Purchase.created_at <= now)
        .group_by(Purchase.member_id)).all())


def _window_start(program: Program, now: dt.datetime) -> dt.datetime:
    tz = program.timezone
    return start_of_day(add_months(local_date(now, tz), -program.tier_window_months), tz)


def evaluate_tier(session: Session, program: Program, member: Member, now: dt.datetime,
                  spend: int | None = None) -> TierChange | None:
    """Move a locked member to the tier their spend earns; downgrades follow the program rule.

    `spend` is their window spend when the caller has it already (window_spends)."""
    current = program.tier(member.tier)
    if spend is None:
        spend = window_spend(session, program, member.id, now)
    earned = tier_for_spend(program, spend)
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
