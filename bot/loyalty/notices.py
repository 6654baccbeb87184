"""Notices: reminders the clock gives a member once (an expiry warning for a lot at a
horizon or for a coupon, a nudge for a crossing), and the coupons a warning shows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from bot.db import insert_new
from bot.loyalty.coupons import WITH_TERMS, CouponView, template_for
from bot.models import Coupon, Notice
from bot.program import Program


def claim_notices(session: Session, wanted: list[tuple[str, int]], now: dt.datetime
                  ) -> set[str]:
    """Claim these (notice key, member id); returns the keys not given before (nor meanwhile,
    by another clock: its row is waited for, then skipped)."""
    rows = [{"key": key, "member_id": member_id, "created_at": now} for key, member_id in wanted]
    return insert_new(session, Notice.__table__, rows, "key")


def coupon_views(session: Session, program: Program, coupon_ids: list[int]
                 ) -> dict[int, CouponView]:
    """These coupons with the terms they were issued with, by id."""
    if not coupon_ids:
        return {}
    return {coupon.id: CouponView(coupon, template_for(program, row, terms))
            for coupon, row, terms in session.execute(
                WITH_TERMS.where(Coupon.id.in_(coupon_ids)))}
