"""The audit trail: who changed what, when and why."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from bot.models import AuditLog

_INSERT = AuditLog.__table__.insert()  # built once


def record(session: Session, action: str, *, member_id: int | None, actor: str,
           at: dt.datetime, points_delta: int = 0, reason: str = "", **details: Any) -> None:
    """One line of the trail, written at once in the caller's transaction (a savepoint
    rolled back takes it back). A Core insert, not an ORM object: nothing reads audit rows
    back as objects in the transaction that writes them, and the ORM's flush of each
    object cost a purchase more than the rest of its bookkeeping."""
    session.connection().execute(_INSERT, {
        "action": action, "member_id": member_id, "actor": actor, "at": at,
        "points_delta": points_delta, "reason": reason, "details": details})
