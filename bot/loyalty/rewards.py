"""The rewards catalog: spend points on a coupon."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from bot.loyalty.coupons import issue_coupon
from bot.loyalty.errors import UnknownReward
from bot.loyalty.ledger import debit, lock_member, settle_expired
from bot.models import Coupon
from bot.program import Program


def redeem_reward(session: Session, program: Program, member_id: int, reward_id: int,
                  now: dt.datetime, *, actor: str) -> Coupon:
    """Exchange points for the reward's coupon; both happen or neither does."""
    reward = program.reward(reward_id)
    if reward is None:
        raise UnknownReward()
    member = lock_member(session, member_id)
    settle_expired(session, member, now)
    coupon = issue_coupon(session, program, member.id, reward.coupon, now, reason="reward",
                          actor=actor) if member.points_balance >= reward.points else None
    debit(session, member, reward.points, "spend", now, actor=actor, coupon_id=coupon and coupon.id,
          reason=f"reward #{reward.id}: {program.coupons[reward.coupon].title}")
    return coupon
