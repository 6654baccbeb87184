"""Erase: a member's personal data is removed on request; the ledger, purchases, coupons and
redemptions stay for the accounts, referencing only the member id. A member who is (or was)
staff loses their staff rights and their name and LINE id leave the staff records too. The
verb flushes; the caller commits (and unlinks a former staff member's menu after that).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import String, cast, delete, select, update
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.codes import normalize_code
from bot.loyalty.errors import UnknownMember
from bot.loyalty.ledger import lock_members
from bot.loyalty.linking import LINKED
from bot.loyalty.members import welcome_key
from bot.models import (
    AuditLog,
    Coupon,
    Member,
    MemberTag,
    OutboxBatch,
    OutboxMessage,
    PendingAction,
    PointEntry,
    Staff,
    StaffInvite,
)

ERASED = "member.erase"  # audit action
ERASED_ACTOR = "erased-member"


@dataclass(frozen=True)
class EraseResult:
    member_id: int
    member_code: str
    already_erased: bool
    records: tuple[int, ...] = ()  # imported records once merged into the member, erased too
    tags: int = 0
    pending_actions: int = 0
    outbox_deleted: int = 0  # pending pushes
    outbox_scrubbed: int = 0  # pushes already made: their recipient and content blanked
    staff: int = 0  # staff records of the person: rights ended, name and LINE id removed
    # that staff member's LINE id, for the caller to unlink their staff menu (not stored)
    unlink_menu_of: str | None = None


def find_member(session: Session, handle: int | str) -> Member:
    """A member by id (int), LINE user id or member code (any case, dashes allowed)."""
    if isinstance(handle, int) and not isinstance(handle, bool):
        found = session.get(Member, handle)
    else:
        text = str(handle).strip()
        found = text and session.scalar(select(Member).where(Member.line_user_id == text))
        code = not found and normalize_code(text)
        if code:
            found = session.scalar(select(Member).where(Member.member_code == code))
    if not found:
        raise UnknownMember()
    return found


def erase_member(session: Session, member_id_or_code: int | str, now: dt.datetime, *,
                 actor: str) -> EraseResult:
    """Remove a member's personal data on request; keep an anonymised ledger for the accounts.

    `member_id_or_code` is a member id (int), LINE user id or member code. Name, phone,
    birthday, external id and LINE user id are blanked and the member is closed (status
    'erased'), and so are the imported records
    once merged into it. Points, purchases, coupons and redemptions stay, referencing the
    member id only. Tags, pending staff actions and pending pushes are deleted; pushes
    already made lose their recipient and content; the LINE user id is replaced in audit and
    ledger actors, and birthdays in the audit trail are removed. The audit rows carry no
    personal data. Idempotent: erasing again changes nothing (by LINE user id it reports
    UnknownMember: that id is no longer stored).
    """
    person = find_member(session, member_id_or_code)
    uid = person.line_user_id
    records = tuple(sorted(
        details["record_id"] for details in session.scalars(
            select(AuditLog.details).where(AuditLog.member_id == person.id,
                                           AuditLog.action == LINKED))
        if isinstance(details, dict) and isinstance(details.get("record_id"), int)))
    locked = lock_members(session, [person.id, *records])
    already = person.status == "erased"
    totals = dict.fromkeys(("tags", "pending_actions", "outbox_deleted", "outbox_scrubbed",
                            "staff"), 0)
    for member in locked:
        counts = _erase_one(session, member)
        if not _has_audit(session, member.id, ERASED):
            merged = {"merged_into": person.id} if member.id != person.id else {}
            audit.record(session, ERASED, member_id=member.id, actor=actor, at=now, **merged,
                         **counts)
        for key, value in counts.items():
            totals[key] += value
    session.flush()
    return EraseResult(person.id, person.member_code, already, records, **totals,
                       unlink_menu_of=uid if totals["staff"] else None)


def _erase_one(session: Session, member: Member) -> dict[str, int]:
    uid = member.line_user_id
    member.display_name, member.phone, member.external_id, member.line_user_id = \
        "", None, None, None
    member.birthday = member.birthday_set_at = None
    member.status = "erased"
    counts = {
        "tags": session.execute(delete(MemberTag).where(MemberTag.member_id == member.id)
                                .execution_options(synchronize_session=False)).rowcount,
        "pending_actions": session.execute(
            delete(PendingAction).where(PendingAction.member_id == member.id)
            .execution_options(synchronize_session=False)).rowcount,
        "outbox_deleted": session.execute(
            delete(OutboxMessage).where(OutboxMessage.member_id == member.id,
                                        OutboxMessage.status == "pending")
            .execution_options(synchronize_session=False)).rowcount,
        "outbox_scrubbed": session.execute(
            update(OutboxMessage).where(OutboxMessage.member_id == member.id,
                                        OutboxMessage.line_user_id != "")
            .values(line_user_id="", payload={"messages": [], "erased": True})
            .execution_options(synchronize_session=False)).rowcount,
    }
    session.execute(update(AuditLog).where(AuditLog.member_id == member.id,
                                           AuditLog.action == "member.birthday")
                    .values(details={}).execution_options(synchronize_session=False))
    if uid:
        actors = [uid, f"line:{uid}"]
        for model in (AuditLog, PointEntry):
            session.execute(update(model).where(model.actor.in_(actors))
                            .values(actor=ERASED_ACTOR)
                            .execution_options(synchronize_session=False))
        _drop_from_batches(session, uid)
        session.execute(update(Coupon).where(Coupon.issue_key == f"welcome:{member.id}")
                        .values(issue_key=welcome_key(uid))  # a key of before welcome_key
                        .execution_options(synchronize_session=False))
        counts["staff"] = _erase_staff(session, uid)
    return counts


def _erase_staff(session: Session, uid: str) -> int:
    """A customer who is (or was) staff: their rights end, and their name and LINE id leave
    the staff list, the invites they used and the audit trail's staff entries."""
    worker = session.scalar(select(Staff).where(Staff.line_user_id == uid))
    invites = set(session.scalars(select(StaffInvite.id).where(StaffInvite.used_by == uid)))
    session.execute(update(StaffInvite).where(StaffInvite.id.in_(invites))
                    .values(used_by=ERASED_ACTOR, name="")
                    .execution_options(synchronize_session=False))
    if worker is not None:
        worker.line_user_id, worker.name, worker.active = None, "", False
    for entry in session.scalars(select(AuditLog).where(AuditLog.action.like("staff.%"))):
        details = entry.details if isinstance(entry.details, dict) else {}
        if (worker and details.get("staff_id") == worker.id
                or details.get("invite_id") in invites) and "name" in details:
            entry.details = {k: v for k, v in details.items() if k != "name"}
    return int(worker is not None)


def _drop_from_batches(session: Session, uid: str) -> None:
    """Take the user id out of multicast recipient lists: sent ones (history) and pending ones
    never attempted. A pending batch already attempted keeps its list: its retry must repeat
    the same request under the same retry key."""
    batches = session.scalars(select(OutboxBatch).where(
        cast(OutboxBatch.recipients, String).contains(uid)).with_for_update()).all()
    for batch in batches:
        recipients = list(batch.recipients.get("to", []))
        if uid not in recipients or (batch.status == "pending" and batch.attempts):
            continue
        recipients = [r for r in recipients if r != uid]
        batch.recipients = {**batch.recipients, "to": recipients}
        if batch.status == "pending" and not recipients:
            batch.status, batch.last_error = "failed", "every recipient was erased"


def _has_audit(session: Session, member_id: int, action: str) -> bool:
    return session.scalar(select(AuditLog.id).where(AuditLog.member_id == member_id,
                                                    AuditLog.action == action).limit(1)) is not None
