"""The rewards catalog: spend points on a coupon."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.loyalty.coupons import issue_coupon, validity
from bot.loyalty.errors import RewardChanged, RewardPriceChanged, RewardUnavailable, UnknownReward
from bot.loyalty.ledger import debit, lock_member, settle_expired
from bot.loyalty.timeutil import local_date
from bot.models import Coupon, CouponTemplateRow
from bot.program import Program, Reward


def offered(program: Program, reward: Reward, now: dt.datetime) -> bool:
    """Not retired, within its own dates, and its coupon can still be issued."""
    today = local_date(now, program.timezone)
    return (not reward.retired and (reward.starts is None or reward.starts <= today)
            and (reward.ends is None or today <= reward.ends)
            and validity(program, program.coupons[reward.coupon], now)[1] > now)


def available_rewards(session: Session, program: Program, now: dt.datetime) -> list[Reward]:
    """The catalog as members see it now: offered rewards whose coupon has some left under
    its total cap."""
    listed = [r for r in program.rewards if offered(program, r, now)]
    capped = {r.coupon for r in listed if program.coupons[r.coupon].total_cap is not None}
    issued = dict(session.execute(
        select(CouponTemplateRow.key, CouponTemplateRow.issued_count)
        .where(CouponTemplateRow.key.in_(capped))).all()) if capped else {}
    return [r for r in listed if r.coupon not in capped
            or issued.get(r.coupon, 0) < (program.coupons[r.coupon].total_cap or 0)]


def within_reach(rewards: Sequence[Reward], balance: int) -> tuple[Reward, int] | None:
    """The dearest reward the balance buys (0 points missing), else the cheapest one and the
    points missing; None for an empty catalog."""
    affordable = [r for r in rewards if r.points <= balance]
    if affordable:
        return max(affordable, key=lambda r: r.points), 0  # the first of equals: max is stable
    cheapest = min(rewards, key=lambda r: r.points, default=None)
    return (cheapest, cheapest.points - balance) if cheapest else None


def offer_digest(program: Program, reward: Reward) -> str:
    """A short fingerprint of what a reward gives (its coupon's terms, not its wording): a
    confirmation carries it, and a different one is confirmed again."""
    template = dataclasses.replace(program.coupons[reward.coupon], title="", title_en="",
                                   gift_en="")
    return hashlib.sha256(repr(template).encode()).hexdigest()[:10]


def redeem_reward(session: Session, program: Program, member_id: int, key: str,
                  now: dt.datetime, *, actor: str, shown_points: int | None = None,
                  shown_offer: str | None = None) -> Coupon:
    """Exchange points for the reward's coupon; both happen or neither does. With
    `shown_points` and `shown_offer` (the price and the offer_digest the member confirmed),
    a changed price or coupon is refused, never charged."""
    reward = program.reward(key)
    if reward is None:
        raise UnknownReward()
    if not offered(program, reward, now):
        raise RewardUnavailable()
    if shown_points is not None and shown_points != reward.points:
        raise RewardPriceChanged(shown=shown_points, points=reward.points)
    if shown_offer is not None and shown_offer != offer_digest(program, reward):
        raise RewardChanged()
    member = lock_member(session, member_id)
    settle_expired(session, member, now)
    coupon = issue_coupon(session, program, member.id, reward.coupon, now, reason="reward",
                          actor=actor) if member.points_balance >= reward.points else None
    debit(session, member, reward.points, "spend", now, actor=actor, coupon_id=coupon and coupon.id,
          reason=f"reward {reward.key}: {program.coupons[reward.coupon].title}")
    return coupon
