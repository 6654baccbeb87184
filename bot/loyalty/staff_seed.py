"""Staff set up ahead of time (a demo shop's counter persona): each person once, for good."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.loyalty.staff import add_staff
from bot.models import Staff


def seed_staff(session: Session, people: dict[str, str], now: dt.datetime, *, actor: str
               ) -> list[Staff]:
    """Make each LINE user (id -> name) staff unless they already have a staff record,
    active or removed: seeding again never undoes a `staff remove`. Returns those added."""
    known = set(session.scalars(select(Staff.line_user_id)
                                .where(Staff.line_user_id.in_(list(people)))))
    return [add_staff(session, user_id, now, name=name, actor=actor)
            for user_id, name in people.items() if user_id not in known]
