"""The audit trail: who changed what, when and why."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from bot.models import AuditLog


def record(session: Session, action: str, *, member_id: int | None, actor: str,
           at: dt.datetime, points_delta: int = 0, reason: str = "", **details: Any) -> None:
    session.add(AuditLog(action=action, member_id=member_id, actor=actor, at=at,
                         points_delta=points_delta, reason=reason, details=details))
