"""Notices: reminders the clock gives a member once (an expiry warning for a lot at a
horizon or for a coupon, a nudge for a crossing)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from bot.db import insert_new
from bot.models import Notice


def claim_notices(session: Session, wanted: list[tuple[str, int]], now: dt.datetime
                  ) -> set[str]:
    """Claim these (notice key, member id); returns the keys not given before (nor meanwhile,
    by another clock: its row is waited for, then skipped)."""
    rows = [{"key": key, "member_id": member_id, "created_at": now} for key, member_id in wanted]
    return insert_new(session, Notice.__table__, rows, "key")
