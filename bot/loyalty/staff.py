"""The shop's staff: who may verify coupons and record purchases by chat."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.codes import new_code
from bot.loyalty.errors import (
    InvalidStaffId,
    SelfService,
    UnknownStaff,
)
from bot.models import Staff, StaffInvite
from bot.program import Program

INVITE_LIFETIME = dt.timedelta(days=3)


def check_not_self(program: Program, member_id: int, own_member_id: int | None) -> None:
    """Unless the program allows it ([staff] self_service), a staff member earns nothing on
    their own membership and redeems none of their own coupons."""
    if program.staff_self_service or member_id != own_member_id:
        return
    raise SelfService()


def add_staff(session: Session, line_user_id: str, now: dt.datetime, *, name: str = "",
              actor: str) -> Staff:
    """Make a LINE user staff (again); their rights start with their next message."""
    if not (len(line_user_id) == 33 and line_user_id.startswith("U") and line_user_id.isalnum()):
        raise InvalidStaffId()
    worker = session.scalar(select(Staff).where(Staff.line_user_id == line_user_id))
    if worker is None:
        worker = Staff(line_user_id=line_user_id, name=name or line_user_id[-6:],
                       created_at=now)
        session.add(worker)
    worker.active = True
    worker.name = name or worker.name
    session.flush()
    audit.record(session, "staff.add", member_id=None, actor=actor, at=now,
                 staff_id=worker.id, name=worker.name)
    return worker


def remove_staff(session: Session, line_user_id: str, now: dt.datetime, *, actor: str
                 ) -> Staff:
    """End a staff member's rights at once (their history stays)."""
    worker = session.scalar(select(Staff).where(Staff.line_user_id == line_user_id,
                                                Staff.active))
    if worker is None:
        raise UnknownStaff()
    worker.active = False
    audit.record(session, "staff.remove", member_id=None, actor=actor, at=now,
                 staff_id=worker.id)
    return worker


def active_staff(session: Session) -> list[Staff]:
    return list(session.scalars(select(Staff).where(Staff.active).order_by(Staff.id)))


def create_invite(session: Session, now: dt.datetime, *, name: str = "", actor: str) -> str:
    """A one-time code a new staff member sends to the bot within three days."""
    code = new_code()
    invite = StaffInvite(code=code, name=name, created_at=now, expires_at=now + INVITE_LIFETIME)
    session.add(invite)
    session.flush()
    audit.record(session, "staff.invite", member_id=None, actor=actor, at=now, name=name,
                 invite_id=invite.id)
    return code
