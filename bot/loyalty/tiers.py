"""Membership tiers by spend over a rolling window, with the program's downgrade rule."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.timeutil import add_months, local_date, start_of_day
from bot.models import Coupon, CouponTemplateRow, Member, Purchase
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


def undo_refunded_tier(session: Session, program: Program, member: Member,
                       purchase: Purchase, now: dt.datetime) -> TierChange | None:
    """After a refund of `purchase`: if that purchase is what reached the member's tier (the
    tier came at or after it) and what is left of the window's spend no longer earns it,
    the member goes back to the tier the remaining spend earns, whatever the downgrade rule
    (a refund undoes the purchase, it is no lapse), and the unused birthday coupons the
    lost tier gave them are voided. Points of other purchases are not touched."""
    current = program.tier(member.tier)
    if member.tier_since < purchase.created_at:
        return None  # the tier was reached before this purchase: it did not buy it
    earned = tier_for_spend(program, window_spend(session, program, member.id, now))
    if earned.threshold >= current.threshold:
        return None
    member.tier, member.tier_since = earned.key, now
    voided = _void_tier_gifts(session, program, member, current, earned, purchase, now)
    audit.record(session, "tier.change", member_id=member.id, actor="system", at=now,
                 old=current.key, new=earned.key, reason="refund", purchase_id=purchase.id,
                 coupons_voided=voided)
    return TierChange(current, earned)


def _void_tier_gifts(session: Session, program: Program, member: Member, lost: Tier,
                     kept: Tier, purchase: Purchase, now: dt.datetime) -> list[int]:
    """The lost tier's birthday coupons given since the purchase, still unused, are void
    (unless the tier the member keeps gives the same coupon)."""
    if lost.birthday_coupon is None or lost.birthday_coupon == kept.birthday_coupon:
        return []
    template = select(CouponTemplateRow.id).where(
        CouponTemplateRow.key == lost.birthday_coupon).scalar_subquery()
    ids = list(session.scalars(select(Coupon.id).where(
        Coupon.member_id == member.id, Coupon.template_id == template,
        Coupon.reason == "birthday", Coupon.status == "issued",
        Coupon.issued_at >= purchase.created_at)))
    if ids:
        session.execute(update(Coupon).where(Coupon.id.in_(ids), Coupon.status == "issued")
                        .values(status="void").execution_options(synchronize_session=False))
    return ids


def _may_change(program: Program, member: Member, current: Tier, earned: Tier,
                now: dt.datetime) -> bool:
    if earned.threshold > current.threshold or program.downgrade == "rolling":
        return True
    if program.downgrade == "never":
        return False
    kept_until = add_months(local_date(member.tier_since, program.timezone), program.grace_months)
    return local_date(now, program.timezone) >= kept_until
