"""The shop's staff: who may verify coupons and record purchases by chat."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, bindparam, cast, exists, func, literal, select
from sqlalchemy.orm import Session

from bot.db import core
from bot.loyalty import audit
from bot.loyalty.codes import new_code, normalize_code
from bot.loyalty.coupons import find_coupon, unredeem
from bot.loyalty.errors import (
    InvalidStaffId,
    LinkNoRecordForPhone,
    LoyaltyError,
    SelfService,
    UnknownClaim,
    UnknownCode,
    UnknownMember,
    UnknownStaff,
)
from bot.loyalty.purchases import refund_order
from bot.models import AuditLog, Member, PendingAction, Purchase, Redemption, Staff, StaffInvite
from bot.outbox import WAITS_FOR
from bot.outbox.replies import note_waiting
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


# -- at the counter ----------------------------------------------------------------------------
FAILED_LIMIT, FAILED_WINDOW = 10, dt.timedelta(minutes=10)
VOID_WINDOW = dt.timedelta(minutes=15)
CONFIRM_WINDOW = dt.timedelta(minutes=10)
REPEAT_WINDOW = dt.timedelta(minutes=10)  # the same member and amount again: ask first
# refusals that say a code or phone is unknown: guessing is what the limit stops (a used
# coupon or a wrong amount is a real code, typed by a person)
GUESSES = (UnknownCode.code, UnknownMember.code, LinkNoRecordForPhone.code, UnknownClaim.code)
REFUSALS = ("staff.verify_failed", "staff.earn_failed", "staff.link_failed",
            "staff.claim_failed")


def actor(worker: Staff) -> str:
    return f"staff:{worker.id}"


def find_active_staff(session: Session, line_user_id: str) -> Staff | None:
    return session.scalar(select(Staff).where(Staff.line_user_id == line_user_id, Staff.active))


def sender(session: Session, line_user_id: str, now: dt.datetime
           ) -> tuple[Member | None, Staff | None]:
    """The sender's member record and, if they are active staff, their staff record; with
    whether anything waits to ride their reply (noted as bot.outbox.replies.member_for_reply
    does) and their recent guesses (noted for guessing()), all in one statement."""
    found = session.execute(_SENDER, {"user_id": line_user_id, "user": line_user_id,
                                      "since": now - FAILED_WINDOW}).first()
    if not found:
        return None, None
    note_waiting(session, line_user_id, found.waits)
    if found[1] is not None:
        session.info.setdefault(GUESSED, {})[found[1].id] = (now, found.guesses or 0)
    return found[0], found[1]


GUESSED = "staff.guessed"  # Session.info: staff id -> (the time asked for, guesses then)


def _guesses(actor_name: Any) -> Any:
    """Unknown codes and phones this actor typed since `since` (see guessing)."""
    return (select(func.count()).select_from(AuditLog).where(
        AuditLog.member_id.is_(None),  # as refusals are written: the (member, at) index serves
        AuditLog.action.in_(REFUSALS), AuditLog.actor == actor_name,
        AuditLog.reason.in_(GUESSES), AuditLog.at > bindparam("since")))


_SENDER = (  # built once: the webhook asks it for every staff command
    select(Member, Staff, exists().where(*WAITS_FOR).label("waits"),
           _guesses(literal("staff:") + cast(Staff.id, String)).scalar_subquery()
           .label("guesses"))
    .outerjoin(Staff, and_(Staff.line_user_id == Member.line_user_id, Staff.active))
    .where(Member.line_user_id == bindparam("user_id")))


def record_refusal(session: Session, worker: Staff, command: str, exc: LoyaltyError,
                   now: dt.datetime, **details: object) -> None:
    """A staff command refused for a rule, kept in the audit trail (and the report)."""
    session.info.get(GUESSED, {}).pop(worker.id, None)  # a guess more: count again
    audit.record(session, f"staff.{command}_failed", member_id=None, actor=actor(worker),
                 at=now, reason=exc.code, **details)


def guessing(session: Session, worker: Staff, now: dt.datetime) -> bool:
    """Unknown coupon codes, member codes and phones, counted together across commands:
    FAILED_LIMIT of them in FAILED_WINDOW pause the staff member's commands. Counted when
    the sender was read for this event (sender()), else asked now."""
    noted = session.info.get(GUESSED, {}).get(worker.id)
    if noted is not None and noted[0] == now:
        return noted[1] >= FAILED_LIMIT
    return (core(session).execute(_GUESSES, {"actor": actor(worker),
                                             "since": now - FAILED_WINDOW}).scalar()
            or 0) >= FAILED_LIMIT


_GUESSES = _guesses(bindparam("actor"))  # built once: every staff command asks it


def ask_confirmation(session: Session, worker: Staff, member: Member | None, amount: int,
                     now: dt.datetime) -> str:
    """A purchase (for a member, or None: a claim code) waiting for the staff member's
    confirm tap; returns its token."""
    token = secrets.token_urlsafe(12)
    session.add(PendingAction(token=token, staff_id=worker.id,
                              member_id=member.id if member else None,
                              amount=amount, created_at=now, expires_at=now + CONFIRM_WINDOW))
    return token


def take_confirmation(session: Session, worker: Staff, token: str, now: dt.datetime
                      ) -> PendingAction | None:
    """The staff member's pending purchase for `token`, used up; None if unknown, used or
    expired (a second tap records nothing)."""
    pending = session.scalar(select(PendingAction).where(
        PendingAction.token == token, PendingAction.staff_id == worker.id).with_for_update())
    if pending is None or pending.status != "pending" or pending.expires_at <= now:
        return None
    pending.status = "done"
    return pending


def join_with_invite(session: Session, code: str, line_user_id: str, member: Member,
                     now: dt.datetime) -> Staff | None:
    """The sender becomes (again) staff with an unused, unexpired invite code, once."""
    invite = session.scalar(select(StaffInvite).where(
        StaffInvite.code == (normalize_code(code) or ""), StaffInvite.used_by.is_(None),
        StaffInvite.expires_at > now).with_for_update())
    if invite is None:
        return None
    invite.used_by, invite.used_at = line_user_id, now
    worker = session.scalar(select(Staff).where(Staff.line_user_id == line_user_id))
    if worker is None:
        worker = Staff(line_user_id=line_user_id, name=invite.name or member.display_name,
                       created_at=now)
        session.add(worker)
    worker.active = True
    audit.record(session, "staff.join", member_id=member.id, actor=line_user_id, at=now)
    return worker


def who_redeemed(session: Session, program: Program, code: str
                 ) -> tuple[dt.datetime, str] | None:
    """When a coupon was used and the name of the staff member who took it ('' if none)."""
    view = find_coupon(session, program, code)
    used = session.scalar(select(Redemption).where(Redemption.coupon_id == view.coupon.id,
                                                      Redemption.voided_at.is_(None)))
    if used is None:
        return None
    worker = session.get(Staff, used.staff_id) if used.staff_id else None
    return used.redeemed_at, worker.name if worker else ""


@dataclass(frozen=True)
class Voided:
    purchase_amount: int | None  # the purchase undone, if one was (with or without a coupon)
    coupon_id: int | None = None  # the coupon usable again, if a redemption was undone


def void_last(session: Session, program: Program, worker: Staff, now: dt.datetime
              ) -> Voided | None:
    """Undo the staff member's last purchase or redemption of the last VOID_WINDOW: a
    redemption's coupon is usable again (with the purchase recorded with it, if any), a
    purchase is refunded in full under the refund id void:<purchase id>."""
    since = now - VOID_WINDOW
    purchase = session.scalar(select(Purchase).where(
        Purchase.staff_id == worker.id, Purchase.created_at > since,
        Purchase.refunded_amount == 0).order_by(Purchase.created_at.desc(), Purchase.id.desc()))
    redemption = session.scalar(select(Redemption).where(
        Redemption.staff_id == worker.id, Redemption.redeemed_at > since,
        Redemption.voided_at.is_(None))
        .order_by(Redemption.redeemed_at.desc(), Redemption.id.desc()))
    coupon_id = None
    if redemption and (purchase is None or redemption.redeemed_at >= purchase.created_at):
        unredeem(session, redemption, now, actor=actor(worker))
        coupon_id = redemption.coupon_id
        purchase = session.get(Purchase, redemption.purchase_id) if redemption.purchase_id \
            else None
        if purchase is None:
            return Voided(None, coupon_id)
    if purchase is None:
        return None
    left = purchase.amount - purchase.refunded_amount  # a cancelled claim code: nothing left
    if left:
        refund_order(session, program, left, now, source=purchase.source,
                     order_id=purchase.external_order_id, refund_id=f"void:{purchase.id}",
                     actor=actor(worker))
    return Voided(left, coupon_id)


def seed_staff(session: Session, people: dict[str, str], now: dt.datetime, *, actor: str
               ) -> list[Staff]:
    """Make each LINE user (id -> name) staff unless they already have a staff record,
    active or removed: seeding again never undoes a `staff remove`. Returns those added."""
    known = set(session.scalars(select(Staff.line_user_id)
                                .where(Staff.line_user_id.in_(list(people)))))
    return [add_staff(session, user_id, now, name=name, actor=actor)
            for user_id, name in people.items() if user_id not in known]
