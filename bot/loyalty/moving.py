"""Move a membership to the customer's new LINE account (a lost phone, a new LINE account).

The customer follows the shop from the new account, which makes a new, near-empty member;
at the counter they show its member card, and after checking who they are the shop moves
their membership there. The membership keeps its own row (member code, tier, birthday,
phone, name, joined date, history): it takes the new account's LINE user id, and the new
account's own member is merged into it the way a POS record is linked (linking's
merge_history: its points lot by lot, stamps, coupons, tags), then closed as 'merged'; its
unused welcome coupon is void if the membership had its own welcome gift. The
old LINE user id then belongs to nobody: a message from it finds no membership, and
following the shop from it again starts an empty one.

Allowed once per new account, into a new account only: one without purchases or
coupon redemptions of its own (a welcome bonus, stamps or coupons it was given are merged);
never to or from a staff member's LINE account. The verb flushes; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from bot.loyalty import audit
from bot.loyalty.codes import format_code, normalize_code
from bot.loyalty.errors import (
    MemberBlocked,
    MoveAlreadyDone,
    MoveFromNoLine,
    MoveFromStaffAccount,
    MoveNeedsLineAccount,
    MoveTargetHasHistory,
    MoveToSelf,
    MoveToStaffAccount,
    MoveUnknownAccount,
    ReasonRequired,
)
from bot.loyalty.ledger import lock_members
from bot.loyalty.linking import Merged, fill_in, merge_history
from bot.loyalty.staff import find_active_staff
from bot.loyalty.tiers import TierChange, evaluate_tier
from bot.models import AuditLog, Claim, Coupon, Member, OutboxMessage, Purchase, Redemption
from bot.program import Program

MOVED, MERGED_AWAY = "member.moved", "member.merged"  # audit actions (the second as linking's)


@dataclass(frozen=True)
class MoveResult:
    member: Member  # the membership, now on the new LINE account
    closed: Member  # the new account's own member, merged into it
    merged: Merged  # what came over from the new account's own member
    welcome_voided: int  # its unused welcome coupon, void: the membership had its own
    tier_change: TierChange | None


def move_to_new_account(session: Session, program: Program, member_id: int, new_code: str,
                        now: dt.datetime, *, reason: str, actor: str) -> MoveResult:
    """Move member `member_id` to the LINE account whose member has the code `new_code`.

    Refused (nothing changes): no reason, an unknown code, the member's own code, a code already
    merged (a second move with the same code), a member without LINE (either side), a new
    account with purchases or redemptions of its own, a staff account (either side), a
    member that is not active."""
    if not reason.strip():
        raise ReasonRequired()
    code = normalize_code(new_code)
    new_id = code and session.scalar(select(Member.id).where(Member.member_code == code))
    if not new_id:
        raise MoveUnknownAccount(code=new_code.strip()[:20])
    if new_id == member_id:
        raise MoveToSelf()
    locked = {m.id: m for m in lock_members(session, [member_id, new_id])}
    member, new = locked[member_id], locked[new_id]
    _check(session, member, new)
    voided = _one_welcome_gift(session, member, new)
    merged = merge_history(session, program, member, new, now)
    fill_in(session, member, new, now)
    _move_claims_and_messages(session, member, new)
    line_user_id, old_line = new.line_user_id, member.line_user_id
    new.line_user_id, new.status = None, "merged"
    session.flush()  # the unique LINE user id leaves the new account's member first
    member.line_user_id, member.last_activity_at = line_user_id, now
    member.marketing_opt_out = member.marketing_opt_out or new.marketing_opt_out
    _redirect_waiting(session, member.id, old_line, line_user_id)
    audit.record(session, MERGED_AWAY, member_id=new.id, actor=actor, at=now,
                 points_delta=-merged.points, into_member_id=member.id,
                 reason=f"merged into member {member.member_code}, moved to this LINE account",
                 **merged.counts())
    audit.record(session, MOVED, member_id=member.id, actor=actor, at=now,
                 points_delta=merged.points, reason=reason, from_member_id=new.id,
                 from_member_code=new.member_code, stamps_carried=merged.stamps_carried,
                 welcome_voided=voided, **merged.counts())
    tier_change = evaluate_tier(session, program, member, now)
    session.flush()
    return MoveResult(member, new, merged, voided, tier_change)


def _one_welcome_gift(session: Session, member: Member, new: Member) -> int:
    """The new account's unused welcome coupon is void when the membership had its own: a
    customer gets one welcome gift, however many LINE accounts they move through."""
    if member.welcome_given_at is None:
        return 0
    return session.execute(update(Coupon).where(
        Coupon.member_id == new.id, Coupon.reason == "welcome", Coupon.status == "issued")
        .values(status="void").execution_options(synchronize_session=False)).rowcount


def _check(session: Session, member: Member, new: Member) -> None:
    shown = format_code(new.member_code)
    if new.status == "merged":
        raise MoveAlreadyDone(code=shown, into=_merged_into(session, new.id))
    if member.status != "active" or new.status != "active":
        raise MemberBlocked()
    if member.line_user_id is None:
        raise MoveFromNoLine()
    if new.line_user_id is None:
        raise MoveNeedsLineAccount(code=shown)
    if find_active_staff(session, new.line_user_id) is not None:
        raise MoveToStaffAccount(code=shown)
    if find_active_staff(session, member.line_user_id) is not None:
        raise MoveFromStaffAccount()
    if session.scalar(select(exists().where(Purchase.member_id == new.id))
                      ) or session.scalar(select(exists().where(Redemption.member_id == new.id))):
        raise MoveTargetHasHistory(code=shown)


def _merged_into(session: Session, member_id: int) -> str:
    """The member code a merged member went into, from its audit trail."""
    details = session.scalar(select(AuditLog.details).where(
        AuditLog.member_id == member_id, AuditLog.action == MERGED_AWAY)
        .order_by(AuditLog.id.desc()).limit(1)) or {}
    into = details.get("into_member_id")
    code = into and session.scalar(select(Member.member_code).where(Member.id == into))
    return format_code(code) if code else "?"


def _move_claims_and_messages(session: Session, member: Member, new: Member) -> None:
    """A claim code kept for the new account's member is now the membership's to take; its
    queued messages stay addressed to the new account, now the membership's."""
    for column in (Claim.reserved_for, Claim.claimed_by):
        session.execute(update(Claim).where(column == new.id).values({column: member.id})
                        .execution_options(synchronize_session=False))
    session.execute(update(OutboxMessage).where(OutboxMessage.member_id == new.id)
                    .values(member_id=member.id).execution_options(synchronize_session=False))


def _redirect_waiting(session: Session, member_id: int, old_line: str, new_line: str) -> None:
    """Messages to the lost account not yet handed to a push go to the new one instead; one
    already given its push (its retry key) stays as it is, so nothing is sent twice."""
    session.execute(update(OutboxMessage).where(
        OutboxMessage.member_id == member_id, OutboxMessage.line_user_id == old_line,
        OutboxMessage.status == "pending", OutboxMessage.push_key.is_(None),
        OutboxMessage.batch_id.is_(None)).values(line_user_id=new_line)
        .execution_options(synchronize_session=False))
