"""Win-back: a comeback coupon and double points on the next purchase, once per dormant
spell (who is due: bot.loyalty.audiences.winback_due)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from bot.models import Member

BONUS_MULTIPLIER = 2  # on the next paid purchase's points, which sets it back to 1


def begin_winback(session: Session, members: list[Member], now: dt.datetime) -> None:
    """These locked members were won back as of `now` (their spell ends with a purchase
    after it) and earn double points next time."""
    for member in members:
        member.winback_sent_at, member.bonus_multiplier = now, BONUS_MULTIPLIER
    session.flush()
